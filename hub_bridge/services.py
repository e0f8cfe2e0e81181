"""Actions on the command outbox and on what hubs report.

The relay (tasks.hub.relay_commands) sends what is queued here; the listener
(management command hub_listener) calls the `apply_*`/`record_*` functions with
messages already validated against the protocol schemas.
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from devices.hub_credentials import hub_username, mosquitto_hash, new_secret
from devices.models import Cycle, Device, Hub
from devices.services import record_measurements
from devices.signals import announce_plan_stale
from energy_manager.celery import app
from energy_manager import metrics

from . import protocol, signals
from .models import CommandKind, CommandState, HubCommand, RejectedMessageCount
from energy_manager import clock

log = logging.getLogger(__name__)

PRE_ACK_STATES = [CommandState.QUEUED, CommandState.SENT]
ACK_TARGET = {
    "accepted": (CommandState.ACKNOWLEDGED, PRE_ACK_STATES),
    "executed": (CommandState.EXECUTED, PRE_ACK_STATES + [CommandState.ACKNOWLEDGED]),
    "rejected": (CommandState.REJECTED, PRE_ACK_STATES + [CommandState.ACKNOWLEDGED]),
    "failed": (CommandState.FAILED, PRE_ACK_STATES + [CommandState.ACKNOWLEDGED]),
}


def _jsonable(parameters: dict) -> dict:
    return {k: protocol.iso(v) if isinstance(v, datetime) else v for k, v in parameters.items()}


def command_row(
    device: Device,
    kind: str,
    parameters: dict,
    not_before: datetime,
    expires_at: datetime,
    run=None,
    recommendation=None,
) -> HubCommand:
    """A validated, unsaved command for the device's hub (`enqueue_commands` records it).

    `parameters` follow PROTOCOL.md for `kind` (datetimes may be given as aware datetimes);
    they are validated against the same schema the hub uses, so a bad command fails here.
    """
    if kind not in CommandKind.values:
        raise ValueError(f"Unknown command kind '{kind}'")
    if device.hub_id is None:
        raise ValueError(f"Device {device.serial_number} has no hub")
    if expires_at <= not_before:
        raise ValueError("expires_at must be after not_before")
    parameters = _jsonable(parameters or {})
    try:
        protocol.validate("command", {
            "version": protocol.VERSION, "command_id": "00000000-0000-4000-8000-000000000000", "kind": kind,
            "device_serial": device.serial_number, "parameters": parameters, "not_before": protocol.iso(not_before),
            "expires_at": protocol.iso(expires_at), "issued_at": protocol.iso(clock.now()),
        })
    except protocol.ProtocolError as exc:
        raise ValueError(f"Invalid {kind} command: {exc.detail}") from None
    return HubCommand(hub_id=device.hub_id, device=device, kind=kind, parameters=parameters,
                      not_before=not_before, expires_at=expires_at, run=run, recommendation=recommendation)


def enqueue_commands(commands: list[HubCommand]) -> list[HubCommand]:
    """Record commands made by `command_row` with one INSERT; relayed after the transaction commits."""
    if commands:
        HubCommand.objects.bulk_create(commands)
        transaction.on_commit(kick_relay)
    return commands


def enqueue_command(*args, **kwargs) -> HubCommand:
    """Record one command for the device's hub (the arguments of `command_row`); relayed after commit."""
    return enqueue_commands([command_row(*args, **kwargs)])[0]


# --- relay scheduling -----------------------------------------------------------------
_redis_client = None


def _broker_url() -> str:
    return app.conf.broker_url or ""


def _redis():
    """Flags live on the Celery broker's Redis (the one the relay tasks go through)."""
    global _redis_client
    url = _broker_url()
    if _redis_client is None or _redis_client[0] != url:
        _redis_client = (url, redis.Redis.from_url(url, socket_timeout=2))
    return _redis_client[1]


def _use_flags() -> bool:
    return _broker_url().startswith(("redis://", "rediss://"))


def _key(name: str) -> str:
    return f"hub_bridge:{settings.MQTT_TOPIC_PREFIX}:{name}"


def kick_relay() -> None:
    """Ask for a relay pass soon. At most one pass is pending at a time (a Redis flag that
    the pass clears before it reads the outbox), so a burst of commands is one task."""
    if not settings.MQTT_URL:
        log.debug("MQTT_URL is not set: commands stay queued")
        return
    if _use_flags():
        try:
            if not _redis().set(_key("kick"), "1", nx=True, ex=10):
                return
        except Exception:  # Redis hiccup: sending a spare task is harmless
            log.warning("relay kick flag unavailable; sending the task anyway", exc_info=True)
    signals.relay_requested.send(sender=HubCommand, countdown_s=None)


def hold_relay_kick() -> bool:
    """Keep the kick flag set while a relay task is polling (commits then send no task); False when
    there are no flags (no Redis broker), i.e. nothing to linger for."""
    if not _use_flags():
        return False
    try:
        _redis().set(_key("kick"), "1", ex=10)
        return True
    except Exception:
        log.warning("could not hold the relay kick flag", exc_info=True)
        return False


def clear_relay_kick() -> None:
    if _use_flags():
        try:
            _redis().delete(_key("kick"))
        except Exception:
            log.warning("could not clear the relay kick flag", exc_info=True)


def schedule_relay_check(delay_s: float) -> None:
    """A later pass for resends and expiry; at most one is scheduled at a time."""
    if delay_s <= 0:
        kick_relay()
        return
    if _use_flags():
        try:
            if not _redis().set(_key("check"), "1", nx=True, px=max(1, int(delay_s * 1000))):
                return
        except Exception:
            log.warning("relay check flag unavailable", exc_info=True)
    signals.relay_requested.send(sender=HubCommand, countdown_s=delay_s)


def expire_overdue_commands() -> int:
    """Commands that never reached their hub in time: expired, and the household told (one
    announcement per home: hub_bridge.signals.commands_expired)."""
    now = clock.now()
    with transaction.atomic():
        overdue = list(
            HubCommand.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state__in=PRE_ACK_STATES, expires_at__lte=now)
            .select_related("device__home")
        )
        if not overdue:
            return 0
        HubCommand.objects.filter(id__in=[c.id for c in overdue]).update(
            state=CommandState.EXPIRED, finished_at=now, message="Expired before the hub acknowledged it.",
        )
        by_home = defaultdict(list)
        for c in overdue:
            by_home[c.device.home].append(c)
        for home, commands in by_home.items():
            signals.commands_expired.send(sender=HubCommand, home=home, commands=commands)
    return len(overdue)


def fail_unreported_commands() -> int:
    """Commands a hub accepted but never reported as executed (or failed) by their expiry plus
    MQTT_EXECUTION_GRACE_S: failed, with the reason, so they do not stay open forever."""
    cutoff = clock.now() - timedelta(seconds=settings.MQTT_EXECUTION_GRACE_S)
    return HubCommand.objects.filter(state=CommandState.ACKNOWLEDGED, expires_at__lt=cutoff).update(
        state=CommandState.FAILED, finished_at=timezone.now(),
        message="The hub accepted the command but never reported its execution.",
    )


# --- what hubs report -----------------------------------------------------------------
def hubs_by_id(hub_ids) -> dict[str, Hub]:
    return {h.hub_id: h for h in Hub.objects.filter(hub_id__any=set(hub_ids))}


def apply_acknowledgements(acks: list[tuple[Hub, dict]]) -> int:
    """Move commands forward from hub acknowledgements; one UPDATE per status in the batch.

    An acknowledgement for another hub's command, or one that would move a command
    backwards, changes nothing.
    """
    if not acks:
        return 0
    now = timezone.now()
    known = list(HubCommand.objects.filter(command_id__in=[a["command_id"] for _, a in acks]).values_list(
        "command_id", "hub_id", "state", "kind", "created_at"))
    owner = {cid: hub_pk for cid, hub_pk, *_ in known}
    first_ack = {cid: (kind, created) for cid, _, state, kind, created in known if state in PRE_ACK_STATES}
    by_status: dict[str, list] = defaultdict(list)
    messages: list[tuple[str, dict]] = []
    for hub, ack in acks:
        cid = uuid.UUID(ack["command_id"])
        if owner.get(cid) != hub.pk:
            log.warning("ack from %s for a command it does not own: %s", hub.hub_id, cid)
            continue
        by_status[ack["status"]].append(cid)
        if ack["status"] in ("rejected", "failed") and ack.get("message"):
            messages.append((ack["status"], ack))
    changed = 0
    with transaction.atomic():
        for status in ("accepted", "executed", "rejected", "failed"):  # in protocol order
            ids = by_status.get(status)
            if not ids:
                continue
            state, allowed = ACK_TARGET[status]
            fields = {"state": state, "acknowledged_at": Coalesce("acknowledged_at", now)}
            if state != CommandState.ACKNOWLEDGED:
                fields["finished_at"] = now
            moved = HubCommand.objects.filter(command_id__in=ids, state__in=allowed).update(**fields)
            changed += moved
            if moved:
                signals.commands_acknowledged.send(sender=HubCommand, command_ids=ids, status=status)
        for status, ack in messages:
            HubCommand.objects.filter(command_id=ack["command_id"], state=ACK_TARGET[status][0]).update(
                message=ack["message"][:1000])
        acked = {cid for ids in by_status.values() for cid in ids} & first_ack.keys()
        latencies = [((now - first_ack[cid][1]).total_seconds(), first_ack[cid][0]) for cid in acked]
        transaction.on_commit(lambda: metrics.observe_command_acks(latencies))
    return changed


def telemetry_rows_of(messages: list[tuple[Hub, dict]]) -> tuple[list[dict], list[tuple[Hub, dict, ValidationError]]]:
    """Measurements of a batch of telemetry messages (plain dicts for `record_measurements`: a model
    instance per row would cost more than its write), their device serials resolved with one query.

    Returns (rows, refused): a message naming a device its hub's home does not have, or from a hub
    without a home, is refused whole with its reason; the others' rows are returned.
    """
    wanted = {(hub.home_id, m.get("device_serial")) for hub, message in messages if hub.home_id is not None
              for m in message["measurements"] if m.get("device_serial") is not None}
    devices: dict[tuple[int, str], int] = {}
    if wanted:
        candidates = Device.objects.filter(home_id__any={h for h, _ in wanted})  # a few devices per home
        devices = {(home_id, serial): pk for pk, home_id, serial in
                   candidates.values_list("id", "home_id", "serial_number") if (home_id, serial) in wanted}
    rows, refused = [], []
    for hub, message in messages:
        if hub.home_id is None:
            refused.append((hub, message, ValidationError("The hub is not attached to a home.")))
            continue
        serials = {m.get("device_serial") for m in message["measurements"]} - {None}
        unknown = {s for s in serials if (hub.home_id, s) not in devices}
        if unknown:
            refused.append((hub, message, ValidationError(f"Unknown device serial(s): {sorted(unknown)[:5]}")))
            continue
        rows += [
            {"home_id": hub.home_id, "device_id": devices.get((hub.home_id, m.get("device_serial"))),
             "time": protocol.parse_time(m["time"]), "power_w": m.get("power_w"), "energy_wh": m.get("energy_wh"),
             "soc_pct": m.get("soc_pct"), "temperature_c": m.get("temperature_c")}
            for m in message["measurements"]
        ]
    return rows, refused


def record_telemetry(rows: list[dict]) -> int:
    """Write measurements in bulk (devices.services.record_measurements)."""
    if not rows:
        return 0
    record_measurements(rows)
    return len(rows)


PLANNING_FIELDS = ("earliest_start", "latest_end", "power_profile", "program", "state")


def apply_cycle_report(hub: Hub, report: dict) -> tuple[Cycle, bool]:
    """Create or update the cycle (device + sequence_id); returns (cycle, needs re-planning).

    Validated with full_clean inside a savepoint: an invalid report writes nothing.
    Re-optimization is requested on commit for a new cycle or a changed window, profile,
    program or state — not for a moved scheduled_start (that is the hub following us).
    """
    with transaction.atomic():
        try:
            device = Device.objects.get(home_id=hub.home_id, serial_number=report["device_serial"])
        except Device.DoesNotExist:
            raise ValidationError(f"Unknown device serial {report['device_serial']!r}") from None
        cycle = Cycle.objects.select_for_update().filter(device=device, sequence_id=report["sequence_id"]).first()
        created = cycle is None
        if created:
            cycle = Cycle(device=device, sequence_id=report["sequence_id"])
        before = {f: getattr(cycle, f) for f in PLANNING_FIELDS} if not created else None
        cycle.program = report.get("program", cycle.program or "")
        cycle.state = report["state"]
        cycle.earliest_start = protocol.parse_time(report["earliest_start"])
        cycle.latest_end = protocol.parse_time(report["latest_end"])
        start = report.get("scheduled_start")
        cycle.scheduled_start = protocol.parse_time(start) if start else None
        cycle.power_profile = report["power_profile"]
        cycle.full_clean()
        changed = created or any(getattr(cycle, f) != before[f] for f in PLANNING_FIELDS)
        cycle.save()
        if changed:
            home_id = hub.home_id
            reason = f"cycle {cycle.sequence_id} of {device.serial_number} {'reported' if created else 'changed'}"
            # Re-planning is best effort: the report itself is stored whatever a subscriber does.
            announce_plan_stale(sender=Hub, home_id=home_id, reason=reason, robust=True)
    return cycle, changed


def apply_registry(hub: Hub, registry: dict) -> list[str]:
    """Attach the home's devices the hub reports; returns serials the home does not have."""
    serials = [d["device_serial"] for d in registry["devices"]]
    with transaction.atomic():
        if registry.get("firmware_version") and registry["firmware_version"] != hub.firmware_version:
            Hub.objects.filter(pk=hub.pk).update(firmware_version=registry["firmware_version"])
        known = set()
        if hub.home_id is not None:
            known = set(Device.objects.filter(home_id=hub.home_id, serial_number__in=serials)
                        .values_list("serial_number", flat=True))
            Device.objects.filter(home_id=hub.home_id, serial_number__in=known).filter(
                Q(hub__isnull=True) | ~Q(hub=hub)).update(hub=hub)
    return [s for s in serials if s not in known]


def apply_status(hub: Hub, online: bool) -> bool:
    """Record the hub's online state; coming online sends its waiting commands."""
    now = timezone.now()
    with transaction.atomic():
        came_online = online and Hub.objects.filter(pk=hub.pk, online=False).exists()
        Hub.objects.filter(pk=hub.pk).update(online=online, last_seen_at=now)
        if came_online and HubCommand.objects.filter(hub=hub, state__in=PRE_ACK_STATES).exists():
            transaction.on_commit(kick_relay)
    return came_online


class Rejection(NamedTuple):
    hub_id: str
    reason: str
    topic: str
    detail: str


def count_rejections(rejections: list[Rejection]) -> None:
    """Add refused messages to the per-(hub, reason) counters, one upsert per pair (listeners
    running side by side add to the same rows)."""
    grouped: dict[tuple[str, str], list[Rejection]] = defaultdict(list)
    for r in rejections:
        grouped[(protocol.printable(r.hub_id, 64), r.reason[:32])].append(r)
    now = clock.now()
    table = RejectedMessageCount._meta.db_table
    sql = (f"INSERT INTO {table} (hub_id, reason, count, first_at, last_at, last_topic, last_detail) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (hub_id, reason) DO UPDATE SET "
           f"count = {table}.count + EXCLUDED.count, last_at = EXCLUDED.last_at, "
           "last_topic = EXCLUDED.last_topic, last_detail = EXCLUDED.last_detail")
    params = [(hub_id, reason, len(group), now, now, protocol.printable(group[-1].topic, 255),
               protocol.printable(group[-1].detail, 1000)) for (hub_id, reason), group in grouped.items()]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def touch_hubs(hub_pks) -> None:
    if hub_pks:
        Hub.objects.filter(pk__any=set(hub_pks)).update(last_seen_at=clock.now())


def issue_hub_credentials(hub: Hub) -> str:
    """Give the hub its own MQTT account; returns the secret, which is shown once and not stored."""
    secret = new_secret()
    hub.mqtt_username = hub_username(hub.hub_id)
    hub.mqtt_password_hash = mosquitto_hash(secret)
    hub.save(update_fields=["mqtt_username", "mqtt_password_hash", "updated_at"])
    return secret
