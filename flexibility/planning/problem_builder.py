"""Database rows -> optimizer problem dict (flexibility/optimizer/FORMAT.md).

The one place that decides what the optimizer is told about a home. Nothing is
made up: a missing tariff, price, CO2 or forecast series for the horizon, or a
cycle that can no longer run, raises `MissingData` naming what is missing (the
API answers 422 before anything is queued).

The rows are read first (`load_inputs`, a fixed number of queries for any number of homes),
then each problem is assembled in Python: one home and a day-ahead chunk of hundreds take
the same path and the same queries.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Iterable, Optional

from django.db import connection

from devices.models import (
    SHIFTABLE_TYPES, THERMAL_TYPES, Cycle, CycleState, Device, DeviceType, DoNotDisturbWindow, EVSession, ExportKind,
    Home, Measurement, Objective, SignalKind, SignalSeries, TariffKind,
)
from devices.models import Circuit, MeasurementRollup, MinimumState
from devices.selectors import MAX_SERIES_SPAN
from devices.power_profiles import profile_duration_minutes
from devices.tariffs import price_series, tariff_export_prices, tariff_import_prices
from devices import telemetry
from energy_manager.errors import Unprocessable

from .slots import MAX_HORIZON_H, RESOLUTION_MIN, default_horizon, floor_to_slot
from energy_manager import clock

WATER_KWH_PER_LITRE_KELVIN = 4.186 / 3600.0  # specific heat of water: 4.186 kJ/(kg K), 1 kWh = 3600 kJ


class MissingData(Unprocessable):
    """The stored data cannot describe the home over the horizon.

    `fields` maps what is missing (e.g. "load_forecast", "devices[12].pv_forecast", "tariff") to messages
    naming the exact uncovered spans; `missing` is the flat list of those messages.
    """

    def __init__(self, fields: dict[str, list[str]]):
        fields = {name: list(messages) for name, messages in fields.items()}
        self.missing = [m for messages in fields.values() for m in messages]
        super().__init__("Missing data for the optimization: " + "; ".join(self.missing) + ".", fields=fields)


def input_hash(problem: dict, backend: str, time_limit_s: float) -> str:
    """Stable digest of what a run solves: same hash = same answer."""
    canonical = json.dumps({"problem": problem, "backend": backend, "time_limit_s": float(time_limit_s)},
                           sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ----------------------------------------------------------------------------- signals
def slot_values(series: list[SignalSeries], start: datetime, slots: int, res_min: int) -> list[Optional[float]]:
    """Per slot: the mean of the newest series that covers the whole slot, or None."""
    out: list[Optional[float]] = [None] * slots
    step = timedelta(minutes=res_min)
    for s in series:  # newest first: the first series that covers a slot wins
        s_res = timedelta(minutes=s.resolution_minutes)
        first = max(0, -((start - s.start) // step))  # the first slot starting at or after the series' start
        last = min(slots, (s.end - start) // step)  # slots ending at or before the series' end
        if s_res == step and (s.start - start) % step == timedelta(0):  # same grid: values map one to one
            shift = (s.start - start) // step
            for t in range(first, last):
                if out[t] is None:
                    out[t] = float(s.values[t - shift])
            continue
        for t in range(first, last):
            if out[t] is not None:
                continue
            a, b = start + t * step, start + (t + 1) * step
            # Value-weighted mean over the sub-intervals of the slot (handles finer and coarser series).
            i0 = int((a - s.start) / s_res)
            i1 = int(((b - s.start) - timedelta(microseconds=1)) / s_res)
            total = 0.0
            for i in range(i0, i1 + 1):
                lo = max(a, s.start + i * s_res)
                hi = min(b, s.start + (i + 1) * s_res)
                total += float(s.values[i]) * (hi - lo).total_seconds()
            out[t] = total / step.total_seconds()
    return out


FORECAST_KINDS = (SignalKind.LOAD_FORECAST, SignalKind.PV_FORECAST, SignalKind.HEAT_DEMAND)


def _series(kind: str, start: datetime, end: datetime, **scope: Any) -> list[SignalSeries]:
    qs = SignalSeries.objects.filter(kind=kind, start__lt=end, **scope).order_by("-created_at", "-id")
    return [s for s in qs if s.end > start]


def with_replacements(signals: list[SignalSeries], stored: list[SignalSeries]) -> list[SignalSeries]:
    """A home's signal rows (newest first) after `stored` replaced the series of their scope they overlap,
    as `devices.signal_ingest.store_series` does in the database: the rows a new read would give."""
    if not stored:
        return signals
    spans: dict[tuple, list[tuple[datetime, datetime]]] = {}
    for s in stored:
        spans.setdefault((s.kind, s.area, s.home_id, s.device_id), []).append((s.start, s.end))
    kept = [old for old in signals
            if not any(old.start < b and a < old.end for a, b in spans.get((old.kind, old.area, old.home_id,
                                                                             old.device_id), ()))]
    return sorted(stored, key=lambda s: (s.created_at, s.pk), reverse=True) + kept


def _overlapping(series: Iterable[SignalSeries], kind: str, start: datetime, end: datetime) -> list[SignalSeries]:
    return [s for s in series if s.kind == kind and s.start < end and s.end > start]


def signal_slots(home: Home, kind: str, start: datetime, slots: int, res_min: int = RESOLUTION_MIN,
                 device: Optional[Device] = None, scope: str = "home_then_area",
                 area: Optional[str] = None, inputs: Optional["HomeInputs"] = None) -> list[Optional[float]]:
    """Per-slot values of a signal for a home; None where no series covers the slot.

    Prices and CO2: a home-specific series wins over the area (`area`, default the home's country)
    series; `scope` "home" or "area" reads only one of them. Forecasts: a device-specific series
    wins over the home-level one. With `inputs` (rows read by `load_inputs`), no query is made.
    """
    end = start + timedelta(minutes=res_min * slots)
    area = area or home.country
    layers: list[list[SignalSeries]] = []
    if inputs is not None:  # the same layers, picked from the rows already read (newest first)
        if kind in FORECAST_KINDS:
            if device is not None:
                layers.append([s for s in inputs.signals if s.device_id == device.pk])
            layers.append([s for s in inputs.signals if s.device_id is None])
        else:
            if scope != "area":
                layers.append(inputs.signals)
            if scope != "home":
                layers.append(inputs.area_signals.get(area, []))
        layers = [_overlapping(layer, kind, start, end) for layer in layers]
        if kind not in FORECAST_KINDS and scope != "home" and not (scope != "area" and layers[0]):
            # Only the area's series: the same for every home of the area and horizon (computed once).
            key = ("area", kind, area, start, slots, res_min)
            if key not in inputs.shared:
                inputs.shared[key] = slot_values(layers[-1], start, slots, res_min)
            return list(inputs.shared[key])
    elif kind in FORECAST_KINDS:
        if device is not None:
            layers.append(_series(kind, start, end, home=home, device=device))
        layers.append(_series(kind, start, end, home=home, device__isnull=True))
    else:
        if scope != "area":
            layers.append(_series(kind, start, end, home=home))
        if scope != "home":
            layers.append(_series(kind, start, end, home__isnull=True, area=area))
    return slot_values([s for layer in layers for s in layer], start, slots, res_min)


def signal_for_home(home: Home, kind: str, start: datetime, slots: int, res_min: int = RESOLUTION_MIN,
                    device: Optional[Device] = None, scope: str = "home_then_area",
                    area: Optional[str] = None, inputs: Optional["HomeInputs"] = None) -> Optional[list[float]]:
    """Per-slot values of a signal for a home (see `signal_slots`), or None when any slot is uncovered."""
    values = signal_slots(home, kind, start, slots, res_min, device, scope, area, inputs)
    return None if any(v is None for v in values) else [float(v) for v in values]


def uncovered_spans(values: list[Optional[float]], start: datetime,
                    res_min: int = RESOLUTION_MIN) -> list[tuple[datetime, datetime]]:
    """The runs of consecutive uncovered slots, as [from, to) instants."""
    step = timedelta(minutes=res_min)
    spans: list[tuple[datetime, datetime]] = []
    for t, value in enumerate(values):
        if value is not None:
            continue
        a = start + t * step
        if spans and spans[-1][1] == a:
            spans[-1] = (spans[-1][0], a + step)
        else:
            spans.append((a, a + step))
    return spans


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def _required_signal(home: Home, kind: str, start: datetime, slots: int, what: str, field: str,
                     missing: dict[str, list[str]], **where: Any) -> Optional[list[float]]:
    """The signal over the horizon (`where`: device, scope, area, inputs as for `signal_slots`); else None,
    and `missing[field]` names exactly which spans lack it."""
    values = signal_slots(home, kind, start, slots, **where)
    spans = uncovered_spans(values, start)
    if not spans:
        return [float(v) for v in values]
    horizon = timedelta(minutes=RESOLUTION_MIN * slots)
    gaps = ", ".join(f"{a.isoformat()} to {b.isoformat()}" for a, b in spans)
    lacking = sum((b - a for a, b in spans), timedelta())
    missing.setdefault(field, []).append(
        f"{what} ({kind}) for {home} is missing from {gaps} ({_hours(lacking)} of the {_hours(horizon)} horizon)")
    return None


# ----------------------------------------------------------------------------- inputs
@dataclass
class HomeInputs:
    """The rows a home's problem is made of, read for many homes at once by `load_inputs`."""

    home: Home
    devices: list[Device] = field(default_factory=list)  # allow_hems, by id, comfort joined
    do_not_disturb: list[DoNotDisturbWindow] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)  # scheduled or running, by earliest start and id
    ev_sessions: list[EVSession] = field(default_factory=list)  # by arrival
    signals: list[SignalSeries] = field(default_factory=list)  # the home's own, newest first
    area_signals: dict[str, list[SignalSeries]] = field(default_factory=dict)  # area -> its series, newest first
    latest: dict[tuple[int, str], float] = field(default_factory=dict)  # (device id, field) -> last reading
    minimum_states: list[MinimumState] = field(default_factory=list)  # inside [start, end], by instant
    circuits: list[Circuit] = field(default_factory=list)  # by id, their devices prefetched
    # What the homes of one `load_inputs` share, computed once (area signals per slot, tariff prices):
    # one dict for all of them.
    shared: dict = field(default_factory=dict)


def load_inputs(homes: Iterable[Home], start: datetime, end: datetime) -> dict[int, HomeInputs]:
    """Everything the problems of `homes` over [start, end) need, in ten queries whatever their number.

    Each home's own horizon must lie inside [start, end); the builder keeps the rows overlapping it.
    The homes should come with `select_related("tariff")` (a dynamic tariff names its spot area).
    """
    out = {h.pk: HomeInputs(h) for h in homes}
    if not out:
        return out
    ids = list(out)
    devices: dict[int, Device] = {}
    for d in Device.objects.filter(home_id__in=ids, allow_hems=True).select_related("comfort").order_by("id"):
        out[d.home_id].devices.append(d)
        devices[d.pk] = d
    for w in DoNotDisturbWindow.objects.filter(home_id__in=ids).order_by("id"):
        out[w.home_id].do_not_disturb.append(w)
    shiftable = [pk for pk, d in devices.items() if d.device_type in SHIFTABLE_TYPES]
    if shiftable:  # a running cycle ends by its latest_end (clean() keeps it inside its window)
        for c in Cycle.objects.filter(device_id__in=shiftable, state__in=[CycleState.SCHEDULED, CycleState.RUNNING],
                                      latest_end__gt=start, earliest_start__lt=end).order_by("earliest_start", "id"):
            out[devices[c.device_id].home_id].cycles.append(c)
    chargers = [pk for pk, d in devices.items() if d.device_type == DeviceType.EV_CHARGER]
    if chargers:
        for e in EVSession.objects.filter(device_id__in=chargers, departure__gt=start,
                                          arrival__lt=end).order_by("arrival"):
            out[devices[e.device_id].home_id].ev_sessions.append(e)
    recent = dict(start__lt=end, start__gt=start - MAX_SERIES_SPAN)  # a series spans at most a week
    for sig in SignalSeries.objects.filter(home_id__in=ids, **recent).order_by("-created_at", "-id"):
        out[sig.home_id].signals.append(sig)
    areas = {i.home.country for i in out.values()}
    areas |= {i.home.tariff.spot_area for i in out.values() if i.home.tariff is not None and i.home.tariff.spot_area}
    area_rows: dict[str, list[SignalSeries]] = {}
    for sig in SignalSeries.objects.filter(home__isnull=True, area__in=areas, **recent).order_by("-created_at", "-id"):
        area_rows.setdefault(sig.area, []).append(sig)
    shared: dict = {}
    for inputs in out.values():
        inputs.area_signals = area_rows
        inputs.shared = shared
    for m in MinimumState.objects.filter(device_id__in=list(devices), at__gt=start, at__lte=end).order_by("at", "id"):
        out[devices[m.device_id].home_id].minimum_states.append(m)
    for c in Circuit.objects.filter(home_id__in=ids).prefetch_related("devices").order_by("id"):
        out[c.home_id].circuits.append(c)
    stateful = {pk: ("soc_pct" if d.device_type == DeviceType.BATTERY else "temperature_c")
                for pk, d in devices.items()
                if d.device_type == DeviceType.BATTERY or d.device_type in THERMAL_TYPES
                or d.device_type == DeviceType.SPACE_HEATING}
    for device_id, value_field, value in latest_readings(stateful):
        out[devices[device_id].home_id].latest[(device_id, value_field)] = value
    return out


RECENT_READING = timedelta(days=2)  # looked for first: one or two day partitions instead of all of them


def latest_readings(fields: dict[int, str]) -> list[tuple[int, str, float]]:
    """The last non-null reading of `fields[device]` for each device (one query, two when a device has
    not reported for RECENT_READING)."""
    if not fields:
        return []
    if connection.vendor != "postgresql":  # the SQLite demo: one query per device
        rows = []
        for pk, name in fields.items():
            value = (Measurement.objects.filter(device_id=pk, **{f"{name}__isnull": False})
                     .order_by("-time").values_list(name, flat=True).first())
            if value is not None:
                rows.append((pk, name, float(value)))
        return rows
    found = _latest_readings_since(fields, clock.now() - RECENT_READING)
    older = {pk: name for pk, name in fields.items() if pk not in {row[0] for row in found}}
    return found + (_latest_readings_since(older, None) if older else [])


def _latest_readings_since(fields: dict[int, str], since: Optional[datetime]) -> list[tuple[int, str, float]]:
    value = "CASE d.field WHEN 'soc_pct' THEN m.soc_pct ELSE m.temperature_c END"
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT d.id, d.field, r.value
                  FROM unnest(%s::bigint[], %s::text[]) AS d(id, field)
                  CROSS JOIN LATERAL (
                      SELECT {value} AS value FROM devices_measurement m
                       WHERE m.device_id = d.id {"AND m.time > %s" if since is not None else ""}
                         AND {value} IS NOT NULL
                       ORDER BY m.time DESC LIMIT 1) r""",
            [list(fields), list(fields.values())] + ([since] if since is not None else []))
        return [(pk, name, float(v)) for pk, name, v in cur.fetchall()]


# ----------------------------------------------------------------------------- builder
def build_problem(
    home: Home,
    start: Optional[datetime] = None,
    end: Optional[datetime] = None,
    objective: Optional[str] = None,
    grid_request: Optional[dict] = None,
    now: Optional[datetime] = None,
    inputs: Optional[HomeInputs] = None,
) -> dict:
    """The optimizer problem for `home` over [start, end) in absolute 15-minute slots.

    `grid_request` (FORMAT.md "grid_request") is passed through for grid-flexibility re-plans.
    `inputs`: the home's rows when the caller read many homes at once (`load_inputs`).
    Raises MissingData listing every gap found (not just the first).
    """
    now = now or clock.now()
    if start is None or end is None:
        d_start, d_end = default_horizon(now)
        start, end = start or d_start, end or d_end
    start, end = floor_to_slot(start), end
    minutes = (end - start).total_seconds() / 60
    if minutes <= 0 or minutes % RESOLUTION_MIN:
        raise ValueError("The horizon must be a positive whole number of 15-minute slots.")
    if minutes > MAX_HORIZON_H * 60:
        raise ValueError(f"The horizon must not exceed {MAX_HORIZON_H} h.")
    slots = int(minutes // RESOLUTION_MIN)
    missing: dict[str, list[str]] = {}
    kind = objective or home.objective
    inputs = inputs or load_inputs([home], start, end)[home.pk]

    prices = _import_prices(home, start, slots, missing, inputs)
    export = _export_prices(home, start, slots, missing, inputs)
    if kind == Objective.ECONOMIC:
        co2 = signal_for_home(home, SignalKind.CO2_INTENSITY, start, slots, inputs=inputs)
    else:
        co2 = _required_signal(home, SignalKind.CO2_INTENSITY, start, slots,
                               f"CO2 intensity for the {kind} objective", "co2_intensity", missing, inputs=inputs)
    load = _required_signal(home, SignalKind.LOAD_FORECAST, start, slots, "base load forecast", "load_forecast",
                            missing, inputs=inputs)

    devices = inputs.devices
    problem: dict[str, Any] = {
        "version": 1,
        "start": start.isoformat(),
        "resolution_min": RESOLUTION_MIN,
        "slots": slots,
        "timezone": home.timezone,
        "objective": {"kind": kind, "cost_weight": float(home.objective_cost_weight)},
        "site": {
            "import_limit_kw": float(home.import_limit_kw),
            "export_limit_kw": float(home.export_limit_kw),
            "import_price_eur_per_kwh": prices,
            "export_price_eur_per_kwh": export,
            "base_load_kw": [round(w / 1000.0, 4) for w in load] if load else None,
        },
        "do_not_disturb": do_not_disturb_intervals(home, start, end, inputs.do_not_disturb),
        "cycles": _cycles(inputs, start, end, missing),
        "ev_sessions": _ev_sessions(inputs, start, end, float(home.import_limit_kw), load),
        "batteries": [_battery(d, inputs) for d in devices if d.device_type == DeviceType.BATTERY],
        "pv": _pv(inputs, start, slots, missing),
        "thermal_storages": _thermal(inputs, start, slots, missing),
    }
    _add_minimum_states(problem, inputs, start, end)
    _add_capacity_charges(problem, home, start, end)
    heat_pumps = _space_heating(inputs, start, slots, missing)  # issue 14 item 5
    if heat_pumps:
        problem["heat_pumps"] = heat_pumps
    circuits = _circuits(inputs, problem)  # issue 14 item 4
    if circuits:
        problem["circuits"] = circuits
    if co2 is not None:
        problem["site"]["co2_g_per_kwh"] = co2
    if grid_request is not None:
        problem["grid_request"] = grid_request
    if missing:
        raise MissingData(missing)
    return problem


def _spot(home: Home, start: datetime, slots: int, what: str, missing: dict[str, list[str]],
          inputs: Optional[HomeInputs] = None) -> Optional[list[float]]:
    """The area spot price a dynamic tariff follows (the tariff's area, else the home's country)."""
    return _required_signal(home, SignalKind.IMPORT_PRICE, start, slots, what, "import_price", missing,
                            scope="area", area=home.tariff.spot_area or None, inputs=inputs)


def _import_prices(home: Home, start: datetime, slots: int, missing: dict[str, list[str]],
                   inputs: Optional[HomeInputs] = None) -> Optional[list[float]]:
    """Retail import prices: a home's own price series first; else a dynamic tariff applied to the
    area spot price; else (dynamic, no tariff) the area price as it is; else the time-of-use calendar."""
    if home.tariff_kind == TariffKind.DYNAMIC:
        own = signal_for_home(home, SignalKind.IMPORT_PRICE, start, slots, scope="home", inputs=inputs)
        if own is not None:
            return own
        if home.tariff is None:
            return _required_signal(home, SignalKind.IMPORT_PRICE, start, slots, "dynamic import (spot) prices",
                                    "import_price", missing, scope="area", inputs=inputs)
        spot = _spot(home, start, slots, "dynamic import (spot) prices", missing, inputs)
        return None if spot is None else tariff_import_prices(
            home.tariff, start, slots, RESOLUTION_MIN, home.timezone, spot)
    if home.tariff is None:
        missing.setdefault("tariff", []).append(f"{home} has no {home.tariff_kind} tariff assigned")
        return None
    if inputs is None:
        return price_series(home.tariff.periods, start, slots, RESOLUTION_MIN, home.timezone)
    # The homes of a chunk share a few tariffs: each calendar is evaluated once per horizon and zone.
    key = ("tariff", home.tariff.pk, repr(home.tariff.periods), start, slots, home.timezone)
    if key not in inputs.shared:
        inputs.shared[key] = price_series(home.tariff.periods, start, slots, RESOLUTION_MIN, home.timezone)
    return list(inputs.shared[key])


def site_prices(home: Home, start: datetime, slots: int) -> tuple[Optional[list[float]], Optional[list[float]]]:
    """The household's import and export price per slot, as the planner sees them; None when a price
    is unknown somewhere in the span (a missing dynamic or spot series)."""
    export_missing: dict[str, list[str]] = {}
    imports = _import_prices(home, start, slots, {})
    exports = _export_prices(home, start, slots, export_missing)
    return imports, (None if export_missing else exports)


def _export_prices(home: Home, start: datetime, slots: int, missing: dict[str, list[str]],
                   inputs: Optional[HomeInputs] = None) -> list[float]:
    """An export price series (home, then area) first; else the tariff's flat or spot-indexed price."""
    series = signal_for_home(home, SignalKind.EXPORT_PRICE, start, slots, inputs=inputs)
    if series is not None:
        return series
    if home.tariff is None:
        return [0.0] * slots
    spot = None
    if home.tariff.export_kind == ExportKind.SPOT:
        spot = _spot(home, start, slots, "spot prices for the export tariff", missing, inputs)
        if spot is None:
            return [0.0] * slots
    return tariff_export_prices(home.tariff, slots, spot)


def do_not_disturb_intervals(home: Home, start: datetime, end: datetime,
                             windows: Optional[list[DoNotDisturbWindow]] = None) -> list[dict]:
    """Weekly local-time windows -> absolute intervals overlapping [start, end) (DST-aware)."""
    zone = home.tzinfo
    windows = list(home.do_not_disturb_windows.all()) if windows is None else windows
    out: list[dict] = []
    day = start.astimezone(zone).date() - timedelta(days=1)  # a window from the day before may run past midnight
    last = end.astimezone(zone).date()
    while day <= last:
        for w in windows:
            if w.weekday != day.weekday():
                continue
            a = datetime.combine(day, w.start_time, tzinfo=zone)
            end_day = day if w.end_time > w.start_time else day + timedelta(days=1)
            b = datetime.combine(end_day, w.end_time, tzinfo=zone)
            a_utc, b_utc = max(a.astimezone(dt_timezone.utc), start), min(b.astimezone(dt_timezone.utc), end)
            if a_utc < b_utc:
                out.append({"start": a_utc.isoformat(), "end": b_utc.isoformat()})
        day += timedelta(days=1)
    out.sort(key=lambda x: x["start"])
    return out


def _cycles(inputs: HomeInputs, start: datetime, end: datetime, missing: dict[str, list[str]]) -> list[dict]:
    shiftable = {d.pk: d for d in inputs.devices if d.device_type in SHIFTABLE_TYPES}
    out = []
    for c in (c for c in inputs.cycles if c.latest_end > start and c.earliest_start < end):
        device = shiftable[c.device_id]
        duration = timedelta(minutes=profile_duration_minutes(c.power_profile))
        if c.state == CycleState.RUNNING:
            item = _running_cycle(c, device, duration, start, end)
            if item is not None:
                out.append(item)
            continue
        if c.latest_end - duration < start:
            missing.setdefault(f"cycles[{c.pk}]", []).append(
                f"cycle {c.pk} ({device.name} {c.program or c.sequence_id}): its window "
                f"{c.earliest_start.isoformat()} to {c.latest_end.isoformat()} has already passed")
            continue
        earliest = max(c.earliest_start, start)
        latest = min(c.latest_end, end)
        if earliest + duration > latest:
            continue  # cannot finish inside this horizon: a later horizon plans it
        item = {
            "id": f"cycle-{c.pk}",
            "device": device.serial_number,
            "name": f"{device.name} {c.program}".strip(),
            "phases": _phases(c),
            "earliest_start": earliest.isoformat(),
            "latest_end": latest.isoformat(),
            "respect_do_not_disturb": True,
        }
        if c.scheduled_start and earliest <= c.scheduled_start and c.scheduled_start + duration <= latest:
            item["scheduled_start"] = c.scheduled_start.isoformat()
        out.append(item)
    return out


def _phases(c: Cycle) -> list[dict]:
    return [{"duration_min": p["duration_min"], "power_w": p["expected_power_w"], "max_power_w": p["max_power_w"]}
            for p in c.power_profile]


def _running_cycle(c: Cycle, device: Device, duration: timedelta, start: datetime, end: datetime) -> Optional[dict]:
    """A cycle already running since its scheduled start: its start is fixed, so the plan counts the
    power of its remaining phases (None when it does not overlap the horizon or its start is unknown)."""
    if c.scheduled_start is None or c.scheduled_start + duration <= start or c.scheduled_start >= end:
        return None
    return {
        "id": f"cycle-{c.pk}", "device": device.serial_number, "name": f"{device.name} {c.program}".strip(),
        "phases": _phases(c), "earliest_start": c.scheduled_start.isoformat(),
        "latest_end": (c.scheduled_start + duration).isoformat(), "scheduled_start": c.scheduled_start.isoformat(),
        "fixed_start": c.scheduled_start.isoformat(), "respect_do_not_disturb": False,
    }


def _ev_sessions(inputs: HomeInputs, start: datetime, end: datetime, import_limit_kw: float,
                 base_load_w: Optional[list[float]]) -> list[dict]:
    chargers = {d.pk: d for d in inputs.devices if d.device_type == DeviceType.EV_CHARGER}
    out = []
    for s in (s for s in inputs.ev_sessions if s.departure > start and s.arrival < end):
        d = chargers[s.device_id]
        p = d.parameters
        need = float(s.required_energy_kwh)
        if s.arrival < start:  # a re-plan during the session: what the car already received is not asked again
            charged_kwh = telemetry.energy_wh([d.pk], floor_to_slot(s.arrival), start).get(d.pk, 0.0) / 1000.0
            need = max(need - charged_kwh * float(p.get("efficiency", 1.0)), 0.0)
        if s.departure > end:
            need = _share_in_horizon_kwh(need, s, p, start, end, import_limit_kw, base_load_w)
        item = {
            "id": f"ev-{s.pk}", "device": d.serial_number, "name": s.vehicle_name or d.name,
            "arrival": max(s.arrival, start).isoformat(), "departure": min(s.departure, end).isoformat(),
            "energy_kwh": round(need, 4),
            "min_power_kw": float(p.get("min_power_kw", 0.0)), "max_power_kw": float(p["max_power_kw"]),
            "phases": int(p.get("phases", 1)), "voltage_v": float(p.get("voltage_v", 230)),
            "efficiency": float(p.get("efficiency", 1.0)),
        }
        if p.get("current_steps_a"):
            item["current_steps_a"] = list(p["current_steps_a"])
        if s.vehicle_capacity_kwh and s.initial_soc_pct is not None:  # never more than fits (negative prices)
            item["capacity_kwh"], item["initial_soc_pct"] = float(s.vehicle_capacity_kwh), float(s.initial_soc_pct)
        item.update(_v2g(s, p))
        out.append(item)
    return out


# Of what the import limit leaves beside the base load forecast in a car's slots, the most its share may ask: the
# cycles and heaters planned beside it need room too.
SHARE_ROOM_FRACTION = 0.9


def _share_in_horizon_kwh(need_kwh: float, s: EVSession, p: dict, start: datetime, end: datetime,
                          import_limit_kw: float, base_load_w: Optional[list[float]]) -> float:
    """What a car that leaves after the horizon is asked by the horizon's end: the share of `need_kwh` its time in
    the horizon bears (the plan after this one asks the rest), but no more than the charger can give in the horizon
    beside the home's forecast load (an evening's base load under a 6.9 kVA limit leaves a 7.4 kW charger less than
    its full power: the share alone made the plan infeasible), and never less than what would not fit after the
    horizon at full power."""
    begin = max(s.arrival, start)
    efficiency = float(p.get("efficiency", 1.0))
    max_kw = float(p["max_power_kw"])
    share = need_kwh * ((end - begin) / (s.departure - begin))
    after_h = (s.departure - end).total_seconds() / 3600
    must_now = need_kwh - max_kw * efficiency * after_h
    if base_load_w is not None:
        dt_h = RESOLUTION_MIN / 60
        first = int((begin - start).total_seconds() // (RESOLUTION_MIN * 60))
        room_kwh = sum(min(max_kw, max(0.0, import_limit_kw - w / 1000.0)) for w in base_load_w[first:]) * dt_h
        share = min(share, SHARE_ROOM_FRACTION * room_kwh * efficiency)
    return max(share, must_now, 0.0)


def _v2g(s: EVSession, p: dict) -> dict:
    """Issue 14 item 3: a session that may discharge, on a bidirectional charger, with the car's SoC."""
    if not (s.may_discharge and float(p.get("max_discharge_kw", 0) or 0) > 0
            and s.vehicle_capacity_kwh is not None and s.initial_soc_pct is not None):
        return {}
    out = {"capacity_kwh": float(s.vehicle_capacity_kwh), "initial_soc_pct": float(s.initial_soc_pct),
           "max_discharge_kw": float(p["max_discharge_kw"]),
           "discharge_efficiency": float(p.get("discharge_efficiency", 1.0)), "export_allowed": s.export_allowed}
    if s.min_soc_pct is not None:
        out["min_soc_pct"] = float(s.min_soc_pct)
    return out


def _battery(d: Device, inputs: HomeInputs) -> dict:
    p = d.parameters
    comfort = getattr(d, "comfort", None)
    reserve = comfort.battery_reserve_pct if comfort and comfort.battery_reserve_pct is not None else 0.0
    measured = inputs.latest.get((d.pk, "soc_pct"))
    initial = float(measured if measured is not None else p["initial_soc_pct"])
    min_soc = max(float(p.get("min_soc_pct", 0.0)), float(reserve))
    # A battery measured below its reserve may not be forced above it at once; the reserve applies from there.
    min_soc = min(min_soc, initial)
    return {
        "id": f"battery-{d.pk}", "device": d.serial_number, "name": d.name,
        "capacity_kwh": float(p["capacity_kwh"]), "initial_soc_pct": initial, "min_soc_pct": min_soc,
        "final_soc_pct": initial,  # do not plan to end the horizon with less than we started with
        "max_charge_kw": float(p["max_charge_kw"]), "max_discharge_kw": float(p["max_discharge_kw"]),
        "charge_efficiency": float(p.get("charge_efficiency", 1.0)),
        "discharge_efficiency": float(p.get("discharge_efficiency", 1.0)),
        **{k: float(p[k]) for k in BATTERY_WEAR_PARAMETERS if p.get(k) is not None},
    }


# issue 14: device parameters the optimizer reads as they are (FORMAT.md "Battery wear and taper")
BATTERY_WEAR_PARAMETERS = ("wear_cost_eur_per_kwh", "max_cycles_per_day", "charge_taper_above_soc_pct",
                           "charge_kw_at_full", "discharge_taper_below_soc_pct", "discharge_kw_at_empty")


def _pv(inputs: HomeInputs, start: datetime, slots: int, missing: dict[str, list[str]]) -> list[dict]:
    out = []
    for d in inputs.devices:
        if d.device_type != DeviceType.PV:
            continue
        forecast = _required_signal(inputs.home, SignalKind.PV_FORECAST, start, slots, f"PV forecast of {d.name}",
                                    f"devices[{d.pk}].pv_forecast", missing, device=d, inputs=inputs)
        if forecast is None:
            continue
        out.append({"id": f"pv-{d.pk}", "device": d.serial_number, "name": d.name,
                    "forecast_kw": [round(w / 1000.0, 4) for w in forecast],
                    "curtailable": bool(d.parameters.get("curtailable", False))})
    return out


def thermal_energy_kwh(volume_l: float, temperature_c: float, temperature_min_c: float) -> float:
    """Heat stored above the band's floor: E = V * 4.186/3600 * (T - T_min) kWh (1 l water = 1 kg)."""
    return volume_l * WATER_KWH_PER_LITRE_KELVIN * (temperature_c - temperature_min_c)


def thermal_band(d: Device) -> tuple[float, float]:
    """The comfort temperature band (deg C) of a water heater / heat pump: preference, else parameters."""
    p = d.parameters
    comfort = getattr(d, "comfort", None)
    if comfort is not None and comfort.temperature_min_c is not None:
        return float(comfort.temperature_min_c), float(comfort.temperature_max_c)
    return float(p["temperature_min_c"]), float(p["temperature_max_c"])


DRAW_KWH, DRAW_MIN = 2.5, 30  # one long shower's heat, drawn within half an hour


def thermal_reserve_kwh(d: Device) -> float:
    """Heat a tank keeps above its band's floor: one shower (DRAW_KWH in DRAW_MIN) less what the heater makes
    meanwhile, at most half the band. Hot-water draws come at uncertain times; a plan that lets the tank sit
    at its floor leaves the first one it did not forecast below the band. Dispatch holds this as the eco
    setpoint, so the tank recovers it by itself after a draw."""
    p = d.parameters
    t_min, t_max = thermal_band(d)
    heater_kwh = float(p["electric_power_kw"]) * float(p.get("cop", 1.0)) * DRAW_MIN / 60
    band_kwh = thermal_energy_kwh(float(p["tank_volume_l"]), t_max, t_min)
    return min(max(DRAW_KWH - heater_kwh, 0.0), band_kwh / 2)


def _thermal(inputs: HomeInputs, start: datetime, slots: int, missing: dict[str, list[str]]) -> list[dict]:
    out = []
    for d in inputs.devices:
        if d.device_type not in THERMAL_TYPES:
            continue
        p = d.parameters
        t_min, t_max = thermal_band(d)
        measured = inputs.latest.get((d.pk, "temperature_c"))
        t_now = float(measured if measured is not None else p["initial_temperature_c"])
        volume = float(p["tank_volume_l"])
        max_kwh = thermal_energy_kwh(volume, t_max, t_min)
        initial = min(max(thermal_energy_kwh(volume, t_now, t_min), 0.0), max_kwh)
        demand = _required_signal(inputs.home, SignalKind.HEAT_DEMAND, start, slots,
                                  f"heat demand forecast of {d.name}", f"devices[{d.pk}].heat_demand", missing,
                                  device=d, inputs=inputs)
        if demand is None:
            continue
        modulating = bool(p.get("modulating", False))
        # End with at least the heat we start with, but an on/off heater moves in whole slot-steps of heat:
        # the end must leave one step of room below the top, or a full tank could never end "full" exactly.
        step_kwh = 0.0 if modulating else float(p["electric_power_kw"]) * float(p.get("cop", 1.0)) * RESOLUTION_MIN / 60
        final = min(initial, max(max_kwh - step_kwh, 0.0))
        out.append({
            "id": f"thermal-{d.pk}", "device": d.serial_number, "name": d.name,
            "electric_power_kw": float(p["electric_power_kw"]), "modulating": modulating,
            "cop": float(p.get("cop", 1.0)), "min_energy_kwh": round(min(thermal_reserve_kwh(d), initial), 4),
            "max_energy_kwh": round(max_kwh, 4),
            "initial_energy_kwh": round(initial, 4), "final_energy_kwh": round(final, 4),
            "standing_loss_kw": float(p.get("standing_loss_kw", 0.0)),
            "heat_demand_kw": [round(w / 1000.0, 4) for w in demand],
        })
    return out


def _add_minimum_states(problem: dict, inputs: HomeInputs, start: datetime, end: datetime) -> None:
    """Minimum states inside the horizon, to their battery, or to the EV session plugged in at that instant
    (FORMAT.md "Minimum state at a time")."""
    by_serial = {d.pk: d.serial_number for d in inputs.devices}
    for m in inputs.minimum_states:
        if not (start < m.at <= end) or m.device_id not in by_serial:
            continue
        item = {"at": m.at.isoformat(), "energy_kwh": float(m.energy_kwh)}
        for b in problem["batteries"]:
            if b["id"] == f"battery-{m.device_id}":
                b.setdefault("min_energy_at", []).append(
                    {**item, "energy_kwh": min(item["energy_kwh"], b["capacity_kwh"])})
        for e in problem["ev_sessions"]:
            if e["device"] == by_serial[m.device_id] and \
                    datetime.fromisoformat(e["arrival"]) < m.at <= datetime.fromisoformat(e["departure"]):
                e.setdefault("min_energy_at", []).append(item)


def _add_capacity_charges(problem: dict, home: Home, start: datetime, end: datetime) -> None:
    """The tariff's capacity charge for each local month the horizon overlaps (FORMAT.md "Capacity charge");
    the current month's floor is its highest window average import so far, from the grid meter's roll-ups."""
    tariff = home.tariff
    if tariff is None or not tariff.capacity_price_eur_per_kw_month:
        return
    zone, window = home.tzinfo, int(tariff.capacity_window_min)
    local = start.astimezone(zone)
    month = datetime(local.year, local.month, 1, tzinfo=zone)
    charges = []
    while month < end:
        nxt = (month.replace(tzinfo=None) + timedelta(days=32)).replace(day=1).replace(tzinfo=zone)
        charges.append({"start": month.isoformat(), "end": nxt.isoformat(),
                        "price_eur_per_kw": float(tariff.capacity_price_eur_per_kw_month), "window_min": window,
                        "peak_floor_kw": round(_peak_so_far_kw(home, month, start, window), 3) if month <= start else 0.0})
        month = nxt
    problem["capacity_charges"] = charges


def _peak_so_far_kw(home: Home, since: datetime, until: datetime, window_min: int) -> float:
    """The highest average import (kW) over a metering window in [since, until), from 15-minute roll-ups."""
    rows = MeasurementRollup.objects.filter(home=home, device__isnull=True, slot_start__gte=since,
                                            slot_start__lt=until, power_samples__gt=0)
    windows: dict[int, list[float]] = {}
    for slot_start, total, count in rows.values_list("slot_start", "power_w_sum", "power_samples"):
        key = int((slot_start - since).total_seconds() // 60 // window_min)
        windows.setdefault(key, []).append(total / count)
    return max([max(0.0, sum(v) / len(v)) / 1000.0 for v in windows.values()] + [0.0])


def _space_heating(inputs: HomeInputs, start: datetime, slots: int, missing: dict[str, list[str]]) -> list[dict]:
    """Heat pumps heating the house: the building model from the device's parameters, the comfort band per slot
    with the night setback (local time of the slot's start), the outdoor temperature forecast (required) and the
    solar irradiance forecast (optional: no solar gain without it)."""
    home, out = inputs.home, []
    for d in inputs.devices:
        if d.device_type != DeviceType.SPACE_HEATING:
            continue
        p = d.parameters
        outdoor = _required_signal(home, SignalKind.OUTDOOR_TEMPERATURE, start, slots,
                                   f"outdoor temperature forecast for {d.name}", "outdoor_temperature", missing,
                                   inputs=inputs)
        if outdoor is None:
            continue
        sun = signal_for_home(home, SignalKind.SOLAR_IRRADIANCE, start, slots, inputs=inputs)
        measured = inputs.latest.get((d.pk, "temperature_c"))
        lo, hi = [], []
        for t in range(slots):
            local = (start + timedelta(minutes=RESOLUTION_MIN * t)).astimezone(home.tzinfo).strftime("%H:%M")
            a, b = p["setback_start"], p["setback_end"]
            night = (a <= local or local < b) if a > b else (a <= local < b)
            lo.append(float(p["setback_min_c"]) if night and p.get("setback_min_c") is not None
                      else float(p["comfort_min_c"]))
            hi.append(float(p["comfort_max_c"]))
        item = {
            "id": f"space_heating-{d.pk}", "device": d.serial_number, "name": d.name,
            "max_power_kw": float(p["max_power_kw"]), "heat_capacity_kwh_per_k": float(p["heat_capacity_kwh_per_k"]),
            "heat_loss_kw_per_k": float(p["heat_loss_kw_per_k"]),
            "initial_indoor_c": float(measured if measured is not None else p["initial_indoor_c"]),
            "outdoor_temperature_c": [round(x, 3) for x in outdoor], "comfort_min_c": lo, "comfort_max_c": hi,
            "cop_curve": [[float(x), float(y)] for x, y in p["cop_curve"]],
            "solar_gain_factor_m2": float(p.get("solar_gain_factor_m2", 0.0)), "modulating": bool(p["modulating"]),
            "min_run_min": float(p.get("min_run_min", 0)), "min_off_min": float(p.get("min_off_min", 0)),
        }
        if sun is not None:
            item["solar_irradiance_kw_per_m2"] = [round(max(0.0, w) / 1000.0, 4) for w in sun]
        out.append(item)
    return out


def _circuits(inputs: HomeInputs, problem: dict) -> list[dict]:
    """The home's shared circuits, over the devices the problem plans (a device the HEMS may not plan, or with
    nothing to plan in the horizon, is left out: its draw is in the base load forecast)."""
    planned = {x["device"] for key in ("cycles", "ev_sessions", "batteries", "pv", "thermal_storages", "heat_pumps")
               for x in problem.get(key, [])}
    out = []
    for c in inputs.circuits:
        names = [d.serial_number for d in c.devices.all() if d.serial_number in planned]
        if names:
            out.append({"id": f"circuit-{c.pk}", "name": c.name, "limit_kw": float(c.limit_kw), "devices": names})
    return out


def object_pk(problem_id: str) -> tuple[str, int]:
    """'cycle-17' -> ('cycle', 17): map a result device id back to its row."""
    prefix, _, pk = problem_id.rpartition("-")
    return prefix, int(pk)
