"""The relay: publishes the command outbox to hubs over one persistent MQTT connection.

Runs inside the Celery worker of the `hub` queue (tasks.hub.relay_commands). Each pass
expires overdue commands, publishes every due command in bulk (QoS 1), waits for the
broker's PUBACKs and marks them `sent` with one UPDATE. Sending is at-least-once; the
hub deduplicates by command_id.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, F, Min, Q, Value, When

from . import protocol
from .models import CommandState, HubCommand
from .mqtt import Connection, parse_url
from .services import expire_overdue_commands
from energy_manager import clock

log = logging.getLogger(__name__)

MAX_CHECK_DELAY_S = 300.0
_lock = threading.Lock()
_connection: Connection | None = None
_connection_pid: int | None = None


def connection() -> Connection:
    """This process's relay connection (made after fork, once per worker process)."""
    global _connection, _connection_pid
    with _lock:
        if _connection is None or _connection_pid != os.getpid():
            address = parse_url(settings.MQTT_URL)
            client_id = f"relay-{socket.gethostname()}-{os.getpid()}"
            _connection = Connection(address, client_id=client_id, clean_session=True).start(wait_s=None)
            _connection_pid = os.getpid()
        return _connection


@dataclass
class RelayPass:
    expired: int = 0
    published: int = 0
    unconfirmed: int = 0
    next_check_s: float | None = None  # when another pass is needed (resend / expiry), if at all


def relay_pass(conn: Connection | None = None) -> RelayPass:
    """One pass over the outbox; returns what it did and when the next pass is due."""
    result = RelayPass(expired=expire_overdue_commands())
    now = clock.now()
    resend_before = now - timedelta(seconds=settings.MQTT_COMMAND_RESEND_S)
    due = (
        HubCommand.objects.filter(hub__online=True, expires_at__gt=now)
        .filter(Q(state=CommandState.QUEUED) | Q(state=CommandState.SENT, sent_at__lt=resend_before))
        .order_by("created_at", "id")
        .values_list("id", "command_id", "kind", "parameters", "not_before", "expires_at", "created_at",
                     "hub__hub_id", "device__serial_number")[: settings.MQTT_RELAY_BATCH]
    )
    rows = list(due)
    if rows:
        conn = conn or connection()
        if not conn.connected.wait(settings.MQTT_PUBACK_TIMEOUT_S):
            # Publishing now would only queue inside paho; try again shortly instead.
            result.unconfirmed = len(rows)
            result.next_check_s = 1.0
            return result
        prefix = settings.MQTT_TOPIC_PREFIX
        messages = []
        for pk, command_id, kind, parameters, not_before, expires_at, created_at, hub_id, serial in rows:
            payload = {
                "version": protocol.VERSION, "command_id": str(command_id), "kind": kind,
                "device_serial": serial, "parameters": parameters, "not_before": protocol.iso(not_before),
                "expires_at": protocol.iso(expires_at), "issued_at": protocol.iso(created_at),
            }
            # Parameters were validated against the schema by enqueue_command and the envelope is ours:
            # plain dumps keeps the single relay process fast; the hub validates on receipt.
            messages.append((protocol.topic(prefix, hub_id, protocol.COMMANDS),
                             json.dumps(payload, separators=(",", ":")).encode(),
                             protocol.QOS[protocol.COMMANDS], False))
        confirmed = conn.publish_many(messages, timeout_s=settings.MQTT_PUBACK_TIMEOUT_S)
        sent_ids = [row[0] for row, ok in zip(rows, confirmed) if ok]
        result.published = len(sent_ids)
        result.unconfirmed = len(rows) - len(sent_ids)
        if sent_ids:
            mark_sent(sent_ids)
        if len(rows) == settings.MQTT_RELAY_BATCH or result.unconfirmed:
            result.next_check_s = 0.0 if not result.unconfirmed else 1.0
    if result.next_check_s is None:
        result.next_check_s = _next_check_s()
    return result


def mark_sent(ids: list[int]) -> int:
    """The broker has the commands: queued -> sent (later states are kept), one UPDATE."""
    now = clock.now()
    return HubCommand.objects.filter(id__in=ids).update(
        state=Case(When(state=CommandState.QUEUED, then=Value(CommandState.SENT)), default=F("state")),
        sent_at=now,
        send_count=F("send_count") + 1,
    )


def _next_check_s() -> float | None:
    """Seconds until a resend or an expiry is due, or None when nothing is outstanding."""
    now = clock.now()
    pending = HubCommand.objects.filter(state__in=[CommandState.QUEUED, CommandState.SENT])
    agg = pending.aggregate(
        first_expiry=Min("expires_at"),
        first_sent=Min("sent_at", filter=Q(state=CommandState.SENT, hub__online=True)),
    )
    candidates = []
    if agg["first_expiry"] is not None:
        candidates.append((agg["first_expiry"] - now).total_seconds())
    if agg["first_sent"] is not None:
        candidates.append((agg["first_sent"] - now).total_seconds() + settings.MQTT_COMMAND_RESEND_S)
    if not candidates:
        return None
    # Capped: a Celery countdown far beyond the broker's visibility timeout would be redelivered.
    return min(MAX_CHECK_DELAY_S, max(0.2, min(candidates)))

