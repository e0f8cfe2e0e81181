"""A stored schedule as people and apps read it: per-slot times, prices and CO2 beside the powers,
devices named by their API ids and display names, and the reasons in plain words."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Optional

from devices.models import Device
from flexibility.optimizer import ProblemError, problem_from_dict
from flexibility.optimizer.evaluate import capacity_view
from flexibility.optimizer.reasons import plan_reasons

from .models import RunStatus, Schedule
from .slots import local_day_horizon


# Issue 14: what a plan item shows of its physics (minimum states to hold, battery wear).
# issue 14: what a device item carries where planned (minimum states, battery wear, V2G charge / discharge,
# space heating's indoor temperature against its band)
DEVICE_KEYS = ("start", "end", "soc_kwh", "energy_kwh", "min_energy_at", "throughput_kwh", "wear_eur", "charge_kw",
               "discharge_kw", "indoor_temperature_c", "comfort_min_c", "comfort_max_c", "outdoor_temperature_c")


def schedule_reasons(schedule: Schedule, devices_by_serial: Optional[dict[str, Device]] = None) -> dict[str, Any]:
    """Reasons and the baseline's net import of a schedule: stored with it, or (older schedules) worked out
    again from its run's problem."""
    if schedule.reasons:
        return {"reasons": schedule.reasons, "baseline_net_import_kw": schedule.baseline_net_import_kw}
    problem = schedule.run.problem
    if devices_by_serial is None:
        devices_by_serial = {d.serial_number: d for d in Device.objects.filter(home_id=schedule.home_id)}
    names = {serial: d.name for serial, d in devices_by_serial.items()}
    try:
        return plan_reasons(problem, {"net_import_kw": schedule.net_import_kw, "devices": schedule.devices},
                            timezone=problem.get("timezone"), device_names=names)
    except ProblemError:  # a run without a readable problem (never written by the runs service): no reasons
        return {"reasons": [], "baseline_net_import_kw": []}


def schedule_view(schedule: Schedule) -> dict[str, Any]:
    """The schedule with its slots' start times, prices and CO2, and one entry per planned device item."""
    problem = schedule.run.problem
    site = problem.get("site", {})
    n = schedule.slots
    step = timedelta(minutes=schedule.resolution_minutes)
    devices_by_serial = {d.serial_number: d for d in Device.objects.filter(home_id=schedule.home_id)}
    explained = schedule_reasons(schedule, devices_by_serial)
    reason_of = {r["item"]: r for r in explained["reasons"]}
    items = []
    for item_id, planned in schedule.devices.items():
        device = devices_by_serial.get(planned.get("device"))
        reason = reason_of.get(item_id, {})
        items.append({
            "item": item_id,
            "device": device.pk if device else None,
            "serial_number": planned.get("device"),
            "name": device.name if device else planned.get("name", item_id),
            "device_type": device.device_type if device else None,
            "kind": planned.get("kind"),
            "label": planned.get("name", item_id),
            "power_kw": planned.get("power_kw", []),
            **{k: planned[k] for k in DEVICE_KEYS if k in planned},
            "saving_eur": reason.get("saving_eur"),
            "reason": reason.get("text"),
        })
    return {
        "id": schedule.pk, "run": schedule.run_id, "home": schedule.home_id, "created_at": schedule.created_at,
        "timezone": problem.get("timezone", "UTC"), "start": schedule.start, "end": schedule.start + n * step,
        "resolution_minutes": schedule.resolution_minutes, "slots": n,
        "slot_starts": [(schedule.start + t * step).isoformat() for t in range(n)],
        "import_price_eur_per_kwh": site.get("import_price_eur_per_kwh") or [],
        "export_price_eur_per_kwh": site.get("export_price_eur_per_kwh") or [0.0] * n,
        "co2_g_per_kwh": site.get("co2_g_per_kwh"),
        "net_import_kw": schedule.net_import_kw,
        "baseline_net_import_kw": explained["baseline_net_import_kw"],
        "cost_eur": schedule.cost_eur, "baseline_cost_eur": schedule.baseline_cost_eur,
        "savings_eur": schedule.savings_eur, "co2_kg": schedule.co2_kg, "baseline_co2_kg": schedule.baseline_co2_kg,
        "devices": items,
        "reasons": [r["text"] for r in explained["reasons"]],
        "circuits": circuit_loads(problem, schedule.devices, n),
        "capacity_charges": planned_capacity_charges(problem, schedule.net_import_kw),
    }


def planned_capacity_charges(problem: dict, net_import_kw: list[float]) -> list[dict]:
    """Issue 14: per billing period, the plan's peak and what the capacity charge comes to with it."""
    if not problem.get("capacity_charges"):
        return []
    return capacity_view(problem_from_dict(problem), list(net_import_kw))


def circuit_loads(problem: dict[str, Any], devices: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Issue 14 item 4: per shared circuit, the planned summed power of its devices (kW per slot)."""
    out = []
    for ci in problem.get("circuits") or []:
        on = set(ci["devices"])
        power = [round(sum(d["power_kw"][t] for d in devices.values() if d.get("device") in on), 4)
                 for t in range(n)]
        out.append({"id": ci["id"], "name": ci.get("name", ci["id"]), "limit_kw": ci["limit_kw"],
                    "devices": ci["devices"], "power_kw": power})
    return out


def schedule_for_day(home, day) -> Optional[Schedule]:
    """The newest schedule of a succeeded run of `home` that plans part of its local `day`."""
    start, end = local_day_horizon(home, day)
    return (Schedule.objects.filter(home=home, run__status=RunStatus.SUCCEEDED, run__horizon_start__lt=end,
                                    run__horizon_end__gt=start)
            .select_related("run").order_by("-created_at", "-id").first())


def day_slots(schedule: Schedule, home, day) -> tuple[int, int]:
    """[first, last) slot indexes of the schedule that fall in the home's local `day`."""
    start, end = local_day_horizon(home, day)
    res = timedelta(minutes=schedule.resolution_minutes)
    first = max(0, int((start - schedule.start) / res))
    last = min(schedule.slots, max(0, int((end - schedule.start) / res)))
    return first, last
