"""Rolling re-planning: every tick, find the homes whose measured state left their plan and re-plan them.

A tick lists the homes whose latest schedule covers now and announces them in chunks
(`signals.rolling_chunk_due`); each chunk (a task, so workers share a tick and none holds more
than ROLLING_CHUNK_SIZE homes) reads what the plans expected and what was measured with a few
set-based queries, applies the rules of `planning.mpc` and asks the debounced re-planning for
at most ROLLING_MAX_REPLANS_PER_CHUNK homes. The re-plan starts at the current slot with running
cycles fixed (problem_builder) and sends only the setpoints that changed (dispatch).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable, Optional

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Max
from django.db.models.expressions import RawSQL

from devices import telemetry
from devices.models import THERMAL_TYPES, Cycle, CycleState, Device, DeviceType, EVSession, SignalKind, SignalSeries

from .. import selectors, signals
from ..models import OptimizationRun, Schedule
from ..mpc import Expected, Measured, Thresholds, replan_reasons
from ..problem_builder import object_pk, slot_values, thermal_band, thermal_energy_kwh
from ..slots import MAX_HORIZON_H, RESOLUTION_MIN, SLOT, floor_to_slot
from .replanning import replans_in_progress, schedule_reoptimization
from energy_manager import clock

log = logging.getLogger(__name__)
CYCLE_DONE = {CycleState.COMPLETED, CycleState.CANCELLED}
SOC_FRESH = timedelta(minutes=30)  # a SoC reading older than this says nothing about now
LOAD_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class ChunkResult:
    homes: int
    replans: int
    reasons: dict[int, list[str]]


def thresholds() -> Thresholds:
    return Thresholds(soc_pct=settings.ROLLING_SOC_THRESHOLD_PCT, tank_kwh=settings.ROLLING_TANK_THRESHOLD_KWH,
                      load_abs_w=settings.ROLLING_LOAD_THRESHOLD_W,
                      load_rel=settings.ROLLING_LOAD_THRESHOLD_SHARE)


def homes_with_current_plan(now: datetime) -> list[int]:
    """Homes whose latest schedule covers `now` (one row per home: PostgreSQL DISTINCT ON)."""
    rows = (Schedule.objects.filter(start__lte=now, start__gt=now - timedelta(hours=72))
            .order_by("home_id", "-created_at").distinct("home_id")
            .values_list("home_id", "start", "resolution_minutes", "slots"))
    return [home_id for home_id, start, res, slots in rows if start + timedelta(minutes=res * slots) > now]


def start_tick(now: Optional[datetime] = None, chunk_size: Optional[int] = None) -> int:
    """Announce the chunks of this tick; returns how many homes they hold."""
    now = now or clock.now()
    chunk_size = chunk_size or settings.ROLLING_CHUNK_SIZE
    home_ids = homes_with_current_plan(now)
    for i in range(0, len(home_ids), chunk_size):
        chunk = home_ids[i:i + chunk_size]
        transaction.on_commit(lambda chunk=chunk: signals.rolling_chunk_due.send(
            sender=Schedule, home_ids=chunk, now=now.isoformat()))
    return len(home_ids)


def _slot(schedule_start: datetime, res_min: int, when: datetime) -> int:
    return int((when - schedule_start) / timedelta(minutes=res_min))


def _expected(plan: dict, now: datetime) -> Expected:
    start, res, problem, devices = plan["start"], plan["resolution_minutes"], plan["problem"], plan["devices"]
    t = _slot(start, res, now)
    capacity = {b["id"]: float(b["capacity_kwh"]) for b in problem.get("batteries") or []}
    soc = {}
    for result_id, planned in devices.items():
        trajectory = planned.get("soc_kwh") or []
        if result_id in capacity and 0 <= t < len(trajectory) and capacity[result_id] > 0:
            soc[planned.get("device", result_id)] = 100.0 * float(trajectory[t]) / capacity[result_id]
    tanks = {}
    for item in problem.get("thermal_storages") or []:
        trajectory = devices.get(item["id"], {}).get("soc_kwh") or []
        if 0 <= t < len(trajectory):
            tanks[item["device"]] = float(trajectory[t])
    cycles = {}
    for item in problem.get("cycles") or []:
        _, pk = object_pk(item["id"])
        planned = devices.get(item["id"], {})
        begin = datetime.fromisoformat(planned["start"]) if planned.get("start") else None
        end = datetime.fromisoformat(planned["end"]) if planned.get("end") else None
        if begin is None or now < begin:
            cycles[pk] = "scheduled"
        elif end is not None and end <= now:
            cycles[pk] = "done"
        else:
            cycles[pk] = "running"
    known = {object_pk(s["id"])[1]: s for s in problem.get("ev_sessions") or []}
    sessions = frozenset(pk for pk, s in known.items()
                         if datetime.fromisoformat(s["arrival"]) <= now < datetime.fromisoformat(s["departure"]))
    return Expected(battery_soc_pct=soc, tank_kwh=tanks, cycle_states=cycles, active_ev_sessions=sessions,
                    ev_sessions=frozenset(known))


def _forecast_base_load_w(home_ids: list[int], until: datetime) -> dict[int, tuple[Optional[float], Optional[float]]]:
    """Per home: the base-load forecast's means over the hour before `until` and the hour before that (None
    where a slot is not forecast), from the stored forecasts (one query): a plan made less than two hours ago
    does not reach back that far, the forecast it was made with does."""
    since = until - 2 * LOAD_WINDOW
    per_home: dict[int, list[SignalSeries]] = {h: [] for h in home_ids}
    reaches = RawSQL("start + jsonb_array_length(\"values\") * resolution_minutes * interval '1 minute' > %s",
                     [since], output_field=BooleanField())  # only the series over the window
    for series in (SignalSeries.objects.filter(kind=SignalKind.LOAD_FORECAST, home_id__in=home_ids,
                                               device__isnull=True, start__lt=until,
                                               start__gte=since - timedelta(hours=MAX_HORIZON_H))
                   .alias(reaches=reaches).filter(reaches=True)
                   .order_by("-created_at", "-id")):  # newest first: the newest forecast of a slot wins
        per_home[series.home_id].append(series)
    half = int(LOAD_WINDOW / SLOT)
    out = {}
    for home_id, series in per_home.items():
        values = slot_values(series, since, 2 * half, RESOLUTION_MIN)
        out[home_id] = tuple(None if any(v is None for v in part) else sum(part) / len(part)
                             for part in (values[:half], values[half:]))
    return out


def _unplanned_requests(home_ids: list[int], now: datetime) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """Per home: open cycles and EV sessions recorded after its latest run or the start of the re-plan in
    progress (one query each)."""
    last_run = dict(OptimizationRun.objects.filter(home_id__in=home_ids).values("home_id")
                    .annotate(at=Max("queued_at")).values_list("home_id", "at"))
    for home_id, started in replans_in_progress(home_ids).items():  # its run is not stored yet
        if home_id in last_run:
            last_run[home_id] = max(last_run[home_id], started)
    cycles: dict[int, set[int]] = {h: set() for h in home_ids}
    sessions: dict[int, set[int]] = {h: set() for h in home_ids}
    waiting = selectors.open_cycles(home_ids, now, states=(CycleState.SCHEDULED,))
    for pk, home_id, created in waiting.values_list("pk", "device__home_id", "created_at"):
        if home_id in last_run and created > last_run[home_id]:
            cycles[home_id].add(pk)
    for pk, home_id, created in selectors.open_ev_sessions(home_ids, now).values_list(
            "pk", "device__home_id", "created_at"):
        if home_id in last_run and created > last_run[home_id]:
            sessions[home_id].add(pk)
    return cycles, sessions


def _measured(home_ids: list[int], planned_cycles: set[int], now: datetime) -> dict[int, Measured]:
    """What the homes measured, from the telemetry roll-ups: last SoC, the last hour's mean powers."""
    devices = {d.pk: d for d in Device.objects.filter(home_id__in=home_ids).select_related("comfort")}
    kinds = {pk: d.device_type for pk, d in devices.items()}
    serials = {pk: d.serial_number for pk, d in devices.items()}
    homes = {pk: d.home_id for pk, d in devices.items()}
    soc: dict[int, dict[str, float]] = {h: {} for h in home_ids}
    batteries = [pk for pk, kind in kinds.items() if kind == DeviceType.BATTERY]
    for device_id, value in telemetry.last_soc_pct(batteries, now - SOC_FRESH, now).items():
        soc[homes[device_id]][serials[device_id]] = value
    cycles: dict[int, dict[int, str]] = {h: {} for h in home_ids}
    for pk, home_id, state in Cycle.objects.filter(pk__in=planned_cycles).values_list("pk", "device__home_id", "state"):
        cycles[home_id][pk] = "done" if state in CYCLE_DONE else state
    sessions: dict[int, set[int]] = {h: set() for h in home_ids}
    for pk, home_id in EVSession.objects.filter(device__home_id__in=home_ids, arrival__lte=now,
                                                departure__gt=now).values_list("pk", "device__home_id"):
        sessions[home_id].add(pk)
    tanks: dict[int, dict[str, float]] = {h: {} for h in home_ids}
    until = floor_to_slot(now)  # whole slots before the current one
    for (home_id, device_id), (_, temperature) in telemetry.window_means(home_ids, until - SLOT, until).items():
        device = devices.get(device_id)
        if temperature is not None and device is not None and device.device_type in THERMAL_TYPES:
            t_min, _ = thermal_band(device)
            tanks[home_id][device.serial_number] = thermal_energy_kwh(
                float(device.parameters["tank_volume_l"]), temperature, t_min)
    base = {end: _base_load_w(home_ids, kinds, end - LOAD_WINDOW, end) for end in (until, until - LOAD_WINDOW)}
    new_cycles, new_sessions = _unplanned_requests(home_ids, now)
    return {h: Measured(battery_soc_pct=soc[h], tank_kwh=tanks[h], cycle_states=cycles[h], active_ev_sessions=frozenset(sessions[h]),
                        base_load_w=base[until].get(h), base_load_before_w=base[until - LOAD_WINDOW].get(h),
                        new_cycles=frozenset(new_cycles[h]), new_ev_sessions=frozenset(new_sessions[h]))
            for h in home_ids}


def _base_load_w(home_ids: list[int], kinds: dict[int, str], start: datetime, end: datetime) -> dict[int, float]:
    """Per home with a meter reading: its mean base load over [start, end), the meter minus the devices."""
    meter: dict[int, float] = {}
    devices_w: dict[int, float] = {h: 0.0 for h in home_ids}
    for (home_id, device_id), (power, _) in telemetry.window_means(home_ids, start, end).items():
        if power is None:
            continue
        if device_id is None:
            meter[home_id] = float(power)
        elif kinds.get(device_id) == DeviceType.PV:
            devices_w[home_id] -= abs(float(power))
        else:
            devices_w[home_id] += float(power)
    return {h: max(meter[h] - devices_w[h], 0.0) for h in meter}


def check_chunk(home_ids: Iterable[int], now: Optional[datetime] = None,
                max_replans: Optional[int] = None) -> ChunkResult:
    """Re-plan (debounced) the homes of the chunk that left their plan; at most `max_replans` of them."""
    now = now or clock.now()
    max_replans = settings.ROLLING_MAX_REPLANS_PER_CHUNK if max_replans is None else max_replans
    home_ids = list(home_ids)
    latest = (Schedule.objects.filter(home_id__in=home_ids, start__lte=now).order_by("home_id", "-created_at")
              .distinct("home_id").values("home_id", "start", "resolution_minutes", "slots", "devices", "run__problem"))
    plans = {row["home_id"]: {**row, "problem": row["run__problem"]} for row in latest
             if row["start"] + timedelta(minutes=row["resolution_minutes"] * row["slots"]) > now}
    forecast = _forecast_base_load_w(list(plans), floor_to_slot(now))
    expected = {home_id: replace(_expected(plan, now), base_load_w=forecast[home_id][1],
                                 base_load_before_w=forecast[home_id][0]) for home_id, plan in plans.items()}
    measured = _measured(list(plans), {pk for e in expected.values() for pk in e.cycle_states}, now)
    rules = thresholds()
    reasons = {}
    for home_id in plans:
        why = replan_reasons(expected[home_id], measured[home_id], rules)
        if why:
            reasons[home_id] = why
    asked = 0
    for home_id in sorted(reasons)[:max_replans]:
        schedule_reoptimization(home_id, "; ".join(reasons[home_id])[:200])
        log.info("rolling re-plan of home %s: %s", home_id, "; ".join(reasons[home_id]))
        asked += 1
    return ChunkResult(homes=len(plans), replans=asked, reasons=reasons)
