"""Actions that write the household/DER domain.

Every action validates with the models' own rules (`full_clean`) inside a
transaction, so a rejected request changes nothing; Django ValidationErrors
become the API's 400 body (energy_manager.api_errors). Changes that make a
home's plan stale announce it (devices.signals) after the transaction commits.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.mail import send_mail
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from energy_manager.errors import Conflict, NotFound

from . import telemetry
from .hub_credentials import hub_username, mosquitto_hash, new_secret
from .models import (
    HOME_SIGNALS, Circuit, ComfortPreference, Cycle, Device, DoNotDisturbWindow, EVSession, Home, Hub, Measurement,
    SignalSeries, Tariff, TariffKind,
)
from .models import MinimumState
from .signals import announce_plan_stale
from energy_manager import clock


# --- helpers -------------------------------------------------------------------

def full_clean(instance: models.Model, exclude: list[str] | None = None, prefix: str = "") -> None:
    """`instance.full_clean()`, with unique-together errors named after their distinguishing field.

    Django reports a violated (home, serial_number) constraint under "__all__";
    the API names "serial_number" instead. `prefix` names errors of nested objects
    ("do_not_disturb_windows[2].end_time").
    """
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        named: dict[str, list] = {}
        for field, errors in exc.error_dict.items():
            for error in errors:
                key = field
                if field == NON_FIELD_ERRORS and error.code == "unique_together":
                    key = error.params["unique_check"][-1]
                if prefix:
                    key = prefix if key == NON_FIELD_ERRORS else f"{prefix}.{key}"
                named.setdefault(key, []).append(error)
        raise ValidationError(named) from None


def _assign(instance: models.Model, data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        setattr(instance, name, value)


def _reoptimize_on_commit(home_id: int, reason: str) -> None:
    announce_plan_stale(sender=Home, home_id=home_id, reason=reason)


@transaction.atomic
def _delete_and_reoptimize(instance: models.Model, home_id: int, reason: str) -> None:
    instance.delete()
    _reoptimize_on_commit(home_id, reason)


# --- accounts ------------------------------------------------------------------

@transaction.atomic
def user_register(*, email: str, password: str, first_name: str = "", last_name: str = ""):
    """A new household account (the e-mail, lower-cased, is also the username), or None if the e-mail has one.

    Both outcomes do the same work (password validation and hashing) and the existing account's owner is
    told by e-mail, so a caller can answer both alike without revealing which addresses have accounts.
    """
    User = get_user_model()
    email = email.strip().lower()
    user = User(username=email, email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    if User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists():
        send_mail(
            "Someone tried to register with your e-mail address",
            "An account with this address already exists. If this was you, log in or reset your password; "
            "otherwise you can ignore this message.",
            None, [email], fail_silently=True,
        )
        return None
    full_clean(user, exclude=["password"])
    user.save()
    return user


# --- homes ---------------------------------------------------------------------

@transaction.atomic
def home_save(home: Home, data: Mapping[str, Any], do_not_disturb: list[Mapping[str, Any]] | None = None) -> Home:
    """Create or update a home; `do_not_disturb` (if given) replaces all its windows."""
    created = home.pk is None
    _assign(home, data)
    if created and home.tariff_id is None:
        _give_default_tariff(home, kind_given="tariff_kind" in data)
    full_clean(home)
    home.save()
    if do_not_disturb is not None:
        home_set_do_not_disturb(home, do_not_disturb)
    if not created:
        _reoptimize_on_commit(home.pk, "home_changed")
    return home


def _give_default_tariff(home: Home, *, kind_given: bool) -> None:
    """A new home starts with its country's default tariff, so it can be planned right away.

    The default of the home's tariff kind wins; when the household did not choose a kind, the
    country's default of any kind (time of use first) is taken with its kind.
    """
    defaults = Tariff.objects.filter(country=home.country, is_default=True, owner__isnull=True)
    tariff = defaults.filter(kind=home.tariff_kind).first()
    if tariff is None and not kind_given:
        tariff = defaults.order_by(models.Case(models.When(kind=TariffKind.DYNAMIC, then=1), default=0), "code").first()
    if tariff is not None:
        home.tariff, home.tariff_kind = tariff, tariff.kind


@transaction.atomic
def home_set_do_not_disturb(home: Home, windows: list[Mapping[str, Any]]) -> list[DoNotDisturbWindow]:
    home.do_not_disturb_windows.all().delete()
    out = []
    errors: dict[str, list] = {}
    for i, window in enumerate(windows):
        obj = DoNotDisturbWindow(home=home, **window)
        try:
            full_clean(obj, exclude=["home"], prefix=f"do_not_disturb_windows[{i}]")
        except ValidationError as exc:
            errors.update(exc.error_dict)
            continue
        out.append(obj)
    if errors:
        raise ValidationError(errors)
    DoNotDisturbWindow.objects.bulk_create(out)
    return out


@transaction.atomic
def home_delete(home: Home) -> None:
    Hub.objects.filter(home=home).update(home=None, online=False)
    home.delete()


# --- hubs ----------------------------------------------------------------------

@transaction.atomic
def hub_register(*, hub_id: str, home: Home | None = None, firmware_version: str = "") -> tuple[Hub, str]:
    """Operators register a hub; returns it with its MQTT secret, which is not stored and shown once."""
    secret = new_secret()
    hub = Hub(
        hub_id=hub_id, home=home, firmware_version=firmware_version,
        mqtt_username=hub_username(hub_id), mqtt_password_hash=mosquitto_hash(secret),
    )
    full_clean(hub)
    hub.save()
    return hub, secret


@transaction.atomic
def hub_reset_secret(hub: Hub) -> str:
    """A new MQTT secret for the hub (the old one stops working); shown once."""
    secret = new_secret()
    hub.mqtt_password_hash = mosquitto_hash(secret)
    hub.save(update_fields=["mqtt_password_hash", "updated_at"])
    return secret


@transaction.atomic
def hub_claim(*, hub_id: str, home: Home) -> Hub:
    """A household claims the hub printed `hub_id` for one of its homes.

    Already claimed by another home: 409, without saying whose.
    """
    hub = Hub.objects.select_for_update().filter(hub_id=hub_id).first()
    if hub is None:
        raise NotFound("No hub has this hub_id.")
    if hub.home_id is not None and hub.home_id != home.pk:
        raise Conflict("This hub is already claimed. Release it from its home first.")
    hub.home = home
    hub.save(update_fields=["home", "updated_at"])
    return hub


@transaction.atomic
def hub_release(hub: Hub) -> Hub:
    """The hub leaves its home; its devices stay in the home without a hub."""
    home_id = hub.home_id
    Device.objects.filter(hub=hub).update(hub=None)
    hub.home = None
    hub.online = False
    hub.save(update_fields=["home", "online", "updated_at"])
    if home_id:
        _reoptimize_on_commit(home_id, "hub_released")
    return hub


# --- devices -------------------------------------------------------------------

@transaction.atomic
def device_save(device: Device, data: Mapping[str, Any]) -> Device:
    _assign(device, data)
    full_clean(device)
    device.save()
    _reoptimize_on_commit(device.home_id, "device_changed")
    return device


def device_delete(device: Device) -> None:
    _delete_and_reoptimize(device, device.home_id, "device_deleted")


@transaction.atomic
def comfort_save(device: Device, data: Mapping[str, Any]) -> ComfortPreference:
    """Replace the device's comfort preference (fields not given go back to their defaults)."""
    comfort = ComfortPreference.objects.select_for_update().filter(device=device).first()
    comfort = comfort or ComfortPreference(device=device)
    for field in ("battery_reserve_pct", "temperature_min_c", "temperature_max_c"):
        setattr(comfort, field, data.get(field))
    full_clean(comfort, exclude=["device"])
    comfort.save()
    _reoptimize_on_commit(device.home_id, "comfort_changed")
    return comfort


# --- cycles and EV sessions ----------------------------------------------------

@transaction.atomic
def _full_clean_window(instance: models.Model, end_field: str, data: Mapping[str, Any]) -> None:
    """`full_clean`, and a window that is already over is refused when it is set (it could never be planned)."""
    errors: dict[str, list] = {}
    try:
        full_clean(instance)
    except ValidationError as exc:
        errors = dict(exc.error_dict)
    end = getattr(instance, end_field)
    if (instance.pk is None or end_field in data) and end is not None and end_field not in errors \
            and timezone.is_aware(end) and end <= clock.now():
        errors[end_field] = [ValidationError("Must be in the future: this window is already over.")]
    if errors:
        raise ValidationError(errors)


def cycle_save(cycle: Cycle, data: Mapping[str, Any]) -> Cycle:
    created = cycle.pk is None
    _assign(cycle, data)
    if not cycle.sequence_id:
        cycle.sequence_id = uuid.uuid4().hex[:16]
    _full_clean_window(cycle, "latest_end", data)
    cycle.save()
    _reoptimize_on_commit(cycle.device.home_id, "cycle_created" if created else "cycle_changed")
    return cycle


def cycle_delete(cycle: Cycle) -> None:
    _delete_and_reoptimize(cycle, cycle.device.home_id, "cycle_deleted")


@transaction.atomic
def ev_session_save(session: EVSession, data: Mapping[str, Any]) -> EVSession:
    _assign(session, data)
    _full_clean_window(session, "departure", data)
    session.save()
    _reoptimize_on_commit(session.device.home_id, "ev_session_changed")
    return session


def ev_session_delete(session: EVSession) -> None:
    _delete_and_reoptimize(session, session.device.home_id, "ev_session_deleted")


# --- shared circuits (issue 14, item 4) -------------------------------------------

@transaction.atomic
def circuit_save(circuit: Circuit, data: Mapping[str, Any]) -> Circuit:
    """Create or change a shared circuit; `devices` (when given) replaces its device set."""
    devices = data.get("devices")
    _assign(circuit, {k: v for k, v in data.items() if k != "devices"})
    full_clean(circuit)
    if devices is not None:
        circuit.check_devices(devices)
    circuit.save()
    if devices is not None:
        circuit.devices.set(devices)
    _reoptimize_on_commit(circuit.home_id, "circuit_changed")
    return circuit


def circuit_delete(circuit: Circuit) -> None:
    _delete_and_reoptimize(circuit, circuit.home_id, "circuit_deleted")


# --- tariffs -------------------------------------------------------------------

@transaction.atomic
def tariff_save(tariff: Tariff, data: Mapping[str, Any]) -> Tariff:
    """Create or update a tariff; the homes on it are planned again with the new prices."""
    created = tariff.pk is None
    _assign(tariff, data)
    full_clean(tariff)
    tariff.save()
    if not created:
        for home_id in tariff.homes.values_list("id", flat=True):
            _reoptimize_on_commit(home_id, "tariff_changed")
    return tariff


@transaction.atomic
def tariff_delete(tariff: Tariff) -> None:
    if tariff.homes.exists():
        raise Conflict("Homes still use this tariff; give them another one first.")
    tariff.delete()


# --- signals and telemetry -----------------------------------------------------

@transaction.atomic
def replace_signal(
    kind: str,
    start: datetime,
    resolution_minutes: int,
    values: list[float],
    *,
    area: str = "",
    home: Home | None = None,
    device: Device | None = None,
    source: str = "",
) -> SignalSeries:
    """Store a series, deleting series of the same kind and scope that overlap it.

    Scope is (area, home, device) exactly: an area-wide price never replaces a
    home-specific one. Forecast changes ask for the home to be planned again.
    """
    series = SignalSeries(
        kind=kind, start=start, resolution_minutes=resolution_minutes, values=list(values),
        area=area, home=home, device=device, source=source,
    )
    full_clean(series)
    end = series.end
    same_scope = SignalSeries.objects.select_for_update().filter(
        kind=kind, area=area, home=home, device=device, start__lt=end, start__gt=start - timedelta(days=7)
    )
    stale = [s.pk for s in same_scope.only("id", "start", "resolution_minutes", "values") if s.end > start]
    SignalSeries.objects.filter(pk__in=stale).delete()
    series.save()
    if home is not None and kind in HOME_SIGNALS:
        _reoptimize_on_commit(home.pk, f"{kind}_replaced")
    return series


MEASUREMENT_KEYS = {"home", "home_id", "device", "device_id", *telemetry.COLUMNS}


def record_measurements(rows: Iterable[Mapping[str, Any] | Measurement]) -> int:
    """Write a batch of telemetry and add it to the 15-minute roll-ups, in one transaction.

    Rows (dicts of Measurement fields or unsaved Measurement objects) need home (or home_id)
    and an aware time. Values are trusted to come from a hub of the home (hub_bridge checks
    the device serials). Returns the number of rows written. The one way to write telemetry:
    rows written any other way are missing from the roll-ups.
    """
    batch = []
    for i, row in enumerate(rows):
        if isinstance(row, Measurement):
            values = (row.home_id, row.device_id, row.time, row.power_w, row.energy_wh, row.soc_pct,
                      row.temperature_c)
        else:  # plain dicts stay plain: building a model instance per row would cost more than its write
            unknown = set(row) - MEASUREMENT_KEYS
            if unknown:
                raise ValidationError({f"rows[{i}].{sorted(unknown)[0]}": "Unknown field."})
            home, device = row.get("home"), row.get("device")
            values = (home.pk if home is not None else row.get("home_id"),
                      device.pk if device is not None else row.get("device_id"), row.get("time"),
                      row.get("power_w"), row.get("energy_wh"), row.get("soc_pct"), row.get("temperature_c"))
        if values[0] is None:
            raise ValidationError({f"rows[{i}].home": "Required."})
        if values[2] is None or timezone.is_naive(values[2]):
            raise ValidationError({f"rows[{i}].time": "Must be an aware datetime."})
        batch.append(values)
    if batch:
        with transaction.atomic():
            telemetry.write_batch(batch)
    return len(batch)


@transaction.atomic
def roll_up_telemetry_days(now: datetime | None = None, days_back: int = 1,
                           backfill_homes: int = telemetry.BACKFILL_HOMES) -> int:
    """Rebuild the daily roll-ups of each home's local today and the `days_back` days before
    (late rows included), and the day sheets of the days completed since (all days of up to
    `backfill_homes` homes without sheets). Idempotent; beat runs it every 15 minutes. Returns the rows
    written."""
    return telemetry.roll_up_days(now or clock.now(), days_back, backfill_homes)


def maintain_telemetry_storage(now: datetime | None = None) -> dict[str, list[str]]:
    """Create the partitions of the coming days and months; drop raw days past their retention and
    15-minute roll-up months past theirs (TELEMETRY_ROLLUP_RETENTION_MONTHS, 0: kept for ever).

    Daily roll-ups are not partitioned and stay. Idempotent (beat runs it hourly).
    """
    from django.conf import settings

    now = now or timezone.now()
    ahead = now + timedelta(days=settings.TELEMETRY_PARTITIONS_AHEAD_DAYS)
    dropped = telemetry.drop_partitions_before(
        telemetry.MEASUREMENTS, telemetry.MEASUREMENTS.floor(now - timedelta(days=settings.TELEMETRY_RAW_RETENTION_DAYS)))
    if settings.TELEMETRY_ROLLUP_RETENTION_MONTHS > 0:
        dropped += telemetry.drop_partitions_before(
            telemetry.ROLLUPS, telemetry.months_before(now, settings.TELEMETRY_ROLLUP_RETENTION_MONTHS))
    return {
        "created": telemetry.ensure_partitions(telemetry.MEASUREMENTS, now - timedelta(days=1), ahead)
        + telemetry.ensure_partitions(telemetry.ROLLUPS, now, ahead + timedelta(days=31)),
        "dropped": dropped,
    }


# --- minimum state at a time (issue 14) ---------------------------------------------------

@transaction.atomic
def minimum_state_save(requirement: MinimumState, data: Mapping[str, Any]) -> MinimumState:
    """Create or change a minimum state; an instant already past is refused; the home is planned again."""
    _assign(requirement, data)
    _full_clean_window(requirement, "at", data)
    requirement.save()
    _reoptimize_on_commit(requirement.device.home_id, "minimum_state_changed")
    return requirement


def minimum_state_delete(requirement: MinimumState) -> None:
    _delete_and_reoptimize(requirement, requirement.device.home_id, "minimum_state_deleted")
