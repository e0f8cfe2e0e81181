"""From a stored schedule to actions: recommendations for moved cycles, hub commands for devices under
automatic management, one notification per plan; households accept or decline recommendations."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Optional

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.models import Cycle, Device
from energy_manager.errors import Conflict
from flexibility.notifications.services import notify
from hub_bridge.models import CommandKind, CommandState, HubCommand
from hub_bridge.services import enqueue_command

from ..models import OptimizationRun, Recommendation, RecommendationStatus, Schedule
from ..problem_builder import object_pk, thermal_band
from ..slots import floor_to_slot

COMMAND_SLOT_LIMIT = 96  # a command carries at most one day of 15-minute setpoints


def _cycle_saving_eur(run: OptimizationRun, cycle_item: dict, old_start: datetime, new_start: datetime) -> float:
    """Import cost of the cycle's energy at its current start minus at the recommended one."""
    p = run.problem
    prices = p["site"]["import_price_eur_per_kwh"]
    grid_start = datetime.fromisoformat(p["start"])
    res = p["resolution_min"]

    def cost(at: datetime) -> float:
        total, offset = 0.0, (at - grid_start).total_seconds() / 60
        for phase in cycle_item["phases"]:
            minute = offset
            remaining = phase["duration_min"]
            while remaining > 1e-9:
                slot = int(minute // res)
                take = min(remaining, (slot + 1) * res - minute)
                price = prices[min(max(slot, 0), len(prices) - 1)]
                total += phase["power_w"] / 1000.0 * take / 60.0 * price
                minute += take
                remaining -= take
            offset += phase["duration_min"]
        return total

    return round(cost(old_start) - cost(new_start), 4)


def act_on_schedule(run: OptimizationRun, schedule: Schedule) -> None:
    """Recommendations for moved cycles, hub commands for automatic devices, one notification."""
    home = run.home
    Recommendation.objects.filter(home=home, status=RecommendationStatus.PENDING).exclude(
        schedule=schedule).update(status=RecommendationStatus.SUPERSEDED, decided_at=timezone.now())
    cycle_items = {c["id"]: c for c in run.problem.get("cycles", [])}
    devices_by_serial = {d.serial_number: d for d in home.devices.select_related("hub")}
    changed: list[str] = []
    for result_id, planned in schedule.devices.items():
        kind, pk = object_pk(result_id)
        device = devices_by_serial.get(planned.get("device"))
        if device is None:
            continue
        if kind == "cycle" and planned.get("start"):
            cycle = Cycle.objects.filter(pk=pk, device=device).first()
            if cycle is None:
                continue
            new_start = parse_datetime(planned["start"])
            current = cycle.scheduled_start or datetime.fromisoformat(cycle_items[result_id]["earliest_start"])
            if abs((new_start - current).total_seconds()) < 60:
                continue
            rec = Recommendation.objects.create(
                schedule=schedule, home=home, device=device, cycle=cycle, current_start=cycle.scheduled_start,
                recommended_start=new_start, recommended_end=parse_datetime(planned["end"]),
                saving_eur=_cycle_saving_eur(run, cycle_items[result_id], current, new_start),
            )
            changed.append(device.name)
            if device.automatic_management:
                _accept(rec, automatic=True)
        elif kind in ("ev", "battery", "thermal") and device.automatic_management:
            _send_setpoints(run, schedule, device, kind, planned)
            changed.append(device.name)
    if changed:
        names = ", ".join(sorted(set(changed)))
        notify(home, "plan_changed", f"A new plan changes {names}; it saves about "
               f"{schedule.savings_eur:.2f} EUR against running them as planned.",
               {"run": run.pk, "schedule": schedule.pk})


def _send_setpoints(run: OptimizationRun, schedule: Schedule, device: Device, kind: str, planned: dict) -> None:
    """One hub command per block of constant planned power, from the current slot for up to a day.

    EV and battery: power_w until the block's end; thermal: heat to the top of the comfort band
    while the plan heats, hold the bottom otherwise. A re-plan sends only the setpoints that changed:
    a block whose command the hub already holds (same kind, parameters and end, still live) is skipped.
    """
    now = timezone.now()
    live = {(c.kind, c.expires_at, json.dumps(c.parameters, sort_keys=True))
            for c in HubCommand.objects.filter(device=device, expires_at__gt=now).exclude(
                state__in=[CommandState.REJECTED, CommandState.FAILED, CommandState.EXPIRED])}
    res = timedelta(minutes=schedule.resolution_minutes)
    first = max(0, int((floor_to_slot(now) - schedule.start) / res))
    power = [round(float(x), 3) for x in planned.get("power_kw", [])][first:first + COMMAND_SLOT_LIMIT]
    if kind == "thermal":
        t_min, t_max = thermal_band(device)
    t = 0
    while t < len(power):
        end = t
        while end + 1 < len(power) and power[end + 1] == power[t]:
            end += 1
        block_start = schedule.start + (first + t) * res
        block_end = schedule.start + (first + end + 1) * res
        until = block_end.isoformat()
        if kind == "ev":
            command, parameters = CommandKind.SET_EV_POWER, {"power_w": round(power[t] * 1000.0), "until": until}
        elif kind == "battery":
            command, parameters = CommandKind.SET_BATTERY_SETPOINT, {"power_w": round(power[t] * 1000.0), "until": until}
        else:
            heating = power[t] > 0
            command, parameters = CommandKind.SET_THERMAL_SETPOINT, {
                "temperature_c": t_max if heating else t_min, "mode": "comfort" if heating else "eco", "until": until}
        if (command, block_end, json.dumps(parameters, sort_keys=True)) not in live:
            _command_or_notify(device, command, parameters, not_before=max(block_start, now), expires_at=block_end,
                               run=run)
            if device.hub_id is None:
                return  # one notification is enough
        t = end + 1


def _command_or_notify(device: Device, kind: str, parameters: dict, not_before: datetime, expires_at: datetime,
                       run: Optional[OptimizationRun] = None, recommendation: Optional[Recommendation] = None) -> None:
    """Hand a command to the hub bridge; a device without a hub gets a notification instead."""
    if device.hub_id is None:
        notify(device.home, "device_without_hub", f"{device.name} has no hub, so the plan could not be sent to it: "
               f"please apply it by hand ({kind}).", {"device": device.pk, "kind": kind, "parameters": parameters})
        return
    enqueue_command(device, kind, parameters, not_before, expires_at, run=run, recommendation=recommendation)


# ------------------------------------------------------------------------ recommendations
def _accept(rec: Recommendation, automatic: bool = False) -> Recommendation:
    now = timezone.now()
    rec.status = RecommendationStatus.ACCEPTED
    rec.decided_at = now
    rec.save(update_fields=["status", "decided_at"])
    Cycle.objects.filter(pk=rec.cycle_id).update(scheduled_start=rec.recommended_start, updated_at=now)
    _command_or_notify(rec.device, CommandKind.START_CYCLE,
                       {"sequence_id": rec.cycle.sequence_id, "start": rec.recommended_start.isoformat()},
                       not_before=now, expires_at=rec.recommended_start, run=rec.schedule.run, recommendation=rec)
    return rec


def _decidable(rec_pk: int) -> Recommendation:
    rec = (Recommendation.objects.select_for_update(of=("self",))
           .select_related("device__home", "schedule__run", "cycle").get(pk=rec_pk))
    if rec.status != RecommendationStatus.PENDING:
        raise Conflict(f"The recommendation is already {rec.status}.")
    return rec


@transaction.atomic
def accept_recommendation(rec: Recommendation) -> Recommendation:
    """Move the cycle to the recommended start and send the start command to the hub."""
    return _accept(_decidable(rec.pk))


@transaction.atomic
def decline_recommendation(rec: Recommendation) -> Recommendation:
    rec = _decidable(rec.pk)
    rec.status = RecommendationStatus.DECLINED
    rec.decided_at = timezone.now()
    rec.save(update_fields=["status", "decided_at"])
    return rec
