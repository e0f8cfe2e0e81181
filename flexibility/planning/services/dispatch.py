"""From stored schedules to actions: recommendations for moved cycles, hub commands for devices under
automatic management, one notification per plan; households accept or decline recommendations.

Actions are collected first and written with one statement per kind, so a chunk of fifty plans
costs about as many queries as one."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.models import Cycle, Device
from energy_manager.errors import Conflict
from flexibility.notifications.services import notify_many
from hub_bridge.models import CommandKind, CommandState, HubCommand
from hub_bridge.services import command_row, enqueue_commands

from ..models import OptimizationRun, Recommendation, RecommendationStatus, Schedule
from ..problem_builder import object_pk, thermal_band, thermal_energy_kwh, thermal_reserve_kwh
from ..slots import floor_to_slot
from energy_manager import clock

COMMAND_SLOT_LIMIT = 96  # a command carries at most one day of 15-minute setpoints


class Actions:
    """What stored schedules change, collected for a few bulk writes (`write`)."""

    def __init__(self):
        self.recommendations: list[Recommendation] = []
        self.commands: list[tuple] = []  # command_row arguments
        self.notes: list[tuple] = []  # notify_many items
        self.cycle_starts: dict[int, datetime] = {}

    def command_or_notify(self, device: Device, kind: str, parameters: dict, not_before: datetime,
                          expires_at: datetime, run: Optional[OptimizationRun] = None,
                          recommendation: Optional[Recommendation] = None) -> None:
        """A command for the device's hub; a device without a hub gets a notification instead."""
        if device.hub_id is None:
            self.notes.append((device.home, "device_without_hub",
                               f"{device.name} has no hub, so the plan could not be sent to it: please apply it "
                               f"by hand ({kind}).", {"device": device.pk, "kind": kind, "parameters": parameters}))
            return
        self.commands.append((device, kind, parameters, not_before, expires_at, run, recommendation))

    def write(self) -> None:
        """New recommendations, moved cycles, hub commands, notifications: one statement each."""
        Recommendation.objects.bulk_create([r for r in self.recommendations if r.pk is None])
        if self.cycle_starts:
            now = timezone.now()
            cycles = list(Cycle.objects.filter(pk__in=self.cycle_starts))
            for cycle in cycles:
                cycle.scheduled_start, cycle.updated_at = self.cycle_starts[cycle.pk], now
            Cycle.objects.bulk_update(cycles, ["scheduled_start", "updated_at"])
        enqueue_commands([command_row(*c) for c in self.commands])
        notify_many(self.notes)


def act_on_schedules(schedules: list[Schedule]) -> None:
    """Recommendations for moved cycles, hub commands for automatic devices, one notification per
    plan; for any number of stored schedules with a fixed number of queries."""
    if not schedules:
        return
    home_ids = [s.run.home_id for s in schedules]
    Recommendation.objects.filter(home_id__in=home_ids, status=RecommendationStatus.PENDING).update(
        status=RecommendationStatus.SUPERSEDED, decided_at=timezone.now())
    devices: dict[int, dict[str, Device]] = {}
    for d in Device.objects.filter(home_id__in=home_ids).select_related("home", "comfort"):
        devices.setdefault(d.home_id, {})[d.serial_number] = d
    cycle_pks = [object_pk(k)[1] for s in schedules for k in s.devices if object_pk(k)[0] == "cycle"]
    cycles = {c.pk: c for c in Cycle.objects.filter(pk__in=cycle_pks)}
    live: dict[int, list[HeldSetpoint]] = {}  # setpoints the hubs hold, oldest first: a re-plan sends what changed
    for device_id, kind, not_before, expires_at, parameters in HubCommand.objects.filter(
            device__home_id__in=home_ids, expires_at__gt=clock.now()).exclude(
            state__in=[CommandState.REJECTED, CommandState.FAILED, CommandState.EXPIRED]).order_by("pk").values_list(
            "device_id", "kind", "not_before", "expires_at", "parameters"):
        live.setdefault(device_id, []).append(HeldSetpoint(kind, not_before, expires_at, _setting(parameters)))
    actions = Actions()
    for schedule in schedules:
        _plan_actions(schedule.run, schedule, devices.get(schedule.run.home_id, {}), cycles, live, actions)
    actions.write()


@dataclass(frozen=True)
class HeldSetpoint:
    """A setpoint command a hub holds (or will): `setting` is its parameters without `until`."""

    kind: str
    not_before: datetime
    expires_at: datetime
    setting: str


def _setting(parameters: dict) -> str:
    return json.dumps({k: v for k, v in parameters.items() if k != "until"}, sort_keys=True)


def hub_holds(held: list[HeldSetpoint], kind: str, parameters: dict, block_start: datetime, end: datetime,
              step: timedelta, now: datetime) -> bool:
    """Does the hub already apply this setting over [start, end)? Where setpoints overlap the one issued
    last wins (PROTOCOL.md), so each step of the block must be won by a command of the same setting: a
    command the hub holds but a later one overrides does not count (skipping the block for it left the
    later one in force: an EV charged at an old plan's lower power and left short)."""
    setting, slot = _setting(parameters), block_start
    while slot < end:
        t = max(slot, now)  # each step of the block from now on
        winner = next((h for h in reversed(held) if h.not_before <= t < h.expires_at), None)
        if t < end and (winner is None or winner.kind != kind or winner.setting != setting):
            return False
        slot += step
    return True


def _plan_actions(run: OptimizationRun, schedule: Schedule, devices_by_serial: dict[str, Device],
                  cycles: dict[int, Cycle], live: dict[int, list[HeldSetpoint]], actions: Actions) -> None:
    home = run.home
    cycle_items = {c["id"]: c for c in run.problem.get("cycles", [])}
    saving = {r["item"]: r["saving_eur"] for r in schedule.reasons}  # each device's own, not the plan's
    changed: dict[Device, float] = {}
    for result_id, planned in schedule.devices.items():
        kind, pk = object_pk(result_id)
        device = devices_by_serial.get(planned.get("device"))
        if device is None:
            continue
        if kind == "cycle" and planned.get("start"):
            cycle = cycles.get(pk)
            if cycle is None or cycle.device_id != device.pk:
                continue
            new_start = parse_datetime(planned["start"])
            current = cycle.scheduled_start or datetime.fromisoformat(cycle_items[result_id]["earliest_start"])
            if abs((new_start - current).total_seconds()) < 60:
                continue
            rec = Recommendation(
                schedule=schedule, home=home, device=device, cycle=cycle, current_start=cycle.scheduled_start,
                recommended_start=new_start, recommended_end=parse_datetime(planned["end"]),
                saving_eur=saving.get(result_id, 0.0),
            )
            actions.recommendations.append(rec)
            changed[device] = changed.get(device, 0.0) + saving.get(result_id, 0.0)
            if device.automatic_management:
                _accept(rec, actions)
        elif kind in ("ev", "battery", "thermal", "space_heating") and device.automatic_management:
            _send_setpoints(run, schedule, device, kind, planned, live.get(device.pk, []), actions)
            changed[device] = changed.get(device, 0.0) + saving.get(result_id, 0.0)
    if changed:
        actions.notes.append((home, "plan_changed", plan_changed_message(changed),
                              {"run": run.pk, "schedule": schedule.pk,
                               "savings_eur": {str(d.pk): round(eur, 2) for d, eur in changed.items()}}))


def plan_changed_message(changed: dict[Device, float]) -> str:
    """'A new plan changes Washing machine (saves 0.24 EUR) and EV charger (saves 2.15 EUR).'"""
    parts = []
    for device, eur in sorted(changed.items(), key=lambda kv: kv[0].name):
        effect = f"saves {eur:.2f} EUR" if eur >= 0.005 else f"costs {-eur:.2f} EUR more" if eur <= -0.005 \
            else "no saving"
        parts.append(f"{device.name} ({effect})")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"A new plan changes {listed}."


def _send_setpoints(run: OptimizationRun, schedule: Schedule, device: Device, kind: str, planned: dict,
                    live: list[HeldSetpoint], actions: Actions) -> None:
    """One hub command per block of constant planned power, from the current slot for up to a day.

    EV and battery: power_w until the block's end; thermal: heat to the top of the comfort band
    while the plan heats, hold the floor plus the tank's reserve otherwise; space heating (a heat pump's
    integration takes a room setpoint, PROTOCOL.md): while the plan heats, the indoor temperature it plans
    at the block's end with the planned power as the limit, otherwise the comfort floor (blocks also end
    where the floor changes: night setback). A re-plan sends only the setpoints that changed: a block the
    hub already applies (`hub_holds` over `live`, read for all the homes at once) is skipped.
    """
    now = clock.now()
    res = timedelta(minutes=schedule.resolution_minutes)
    first = max(0, int((floor_to_slot(now) - schedule.start) / res))
    power = [round(float(x), 3) for x in planned.get("power_kw", [])][first:first + COMMAND_SLOT_LIMIT]
    if kind == "thermal":
        t_min, t_max = thermal_band(device)
        # between heating blocks the tank holds its reserve (problem_builder.thermal_reserve_kwh), not the floor
        eco_c = math.ceil(10 * (t_min + thermal_reserve_kwh(device) / thermal_energy_kwh(
            float(device.parameters["tank_volume_l"]), t_min + 1.0, t_min))) / 10
    key: list = power
    if kind == "space_heating":
        floor_c = [float(x) for x in planned["comfort_min_c"]][first:first + COMMAND_SLOT_LIMIT]
        indoor_c = [float(x) for x in planned["indoor_temperature_c"]][first:first + COMMAND_SLOT_LIMIT + 1]
        key = list(zip(power, floor_c))
    t = 0
    while t < len(power):
        end = t
        while end + 1 < len(power) and key[end + 1] == key[t]:
            end += 1
        block_start = schedule.start + (first + t) * res
        block_end = schedule.start + (first + end + 1) * res
        until = block_end.isoformat()
        if kind == "ev":
            command, parameters = CommandKind.SET_EV_POWER, {"power_w": round(power[t] * 1000.0), "until": until}
        elif kind == "battery":
            command, parameters = CommandKind.SET_BATTERY_SETPOINT, {"power_w": round(power[t] * 1000.0), "until": until}
        elif kind == "space_heating":
            command, parameters = CommandKind.SET_HEAT_PUMP_SETPOINT, {"indoor_temperature_c": floor_c[end], "until": until}
            if power[t] > 0:
                ceiling_c = float(planned["comfort_max_c"][first + end])
                parameters["indoor_temperature_c"] = min(max(math.ceil(10 * indoor_c[end + 1]) / 10, floor_c[end]),
                                                         ceiling_c)
                parameters["power_w"] = round(power[t] * 1000.0)
        else:
            heating = power[t] > 0
            command, parameters = CommandKind.SET_THERMAL_SETPOINT, {
                "temperature_c": t_max if heating else eco_c, "mode": "comfort" if heating else "eco", "until": until}
        not_before = max(block_start, now)
        if not hub_holds(live, command, parameters, block_start, block_end, res, now):
            actions.command_or_notify(device, command, parameters, not_before=not_before,
                                      expires_at=block_end, run=run)
            if device.hub_id is None:
                return  # one notification is enough
        t = end + 1


# ------------------------------------------------------------------------ recommendations
def _accept(rec: Recommendation, actions: Actions) -> Recommendation:
    """Accept: the cycle moves to the recommended start and the hub is told to start it then
    (written by `actions.write()`, together with the recommendation when it is new)."""
    now = clock.now()
    rec.status = RecommendationStatus.ACCEPTED
    rec.decided_at = now
    actions.cycle_starts[rec.cycle_id] = rec.recommended_start
    actions.command_or_notify(rec.device, CommandKind.START_CYCLE,
                              {"sequence_id": rec.cycle.sequence_id, "start": rec.recommended_start.isoformat()},
                              not_before=now, expires_at=rec.recommended_start, run=rec.schedule.run,
                              recommendation=rec)
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
    actions = Actions()
    rec = _accept(_decidable(rec.pk), actions)
    rec.save(update_fields=["status", "decided_at"])
    actions.write()
    return rec


@transaction.atomic
def decline_recommendation(rec: Recommendation) -> Recommendation:
    rec = _decidable(rec.pk)
    rec.status = RecommendationStatus.DECLINED
    rec.decided_at = timezone.now()
    rec.save(update_fields=["status", "decided_at"])
    return rec
