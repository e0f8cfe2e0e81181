"""A cycle already running is planned around, not moved: it reaches the optimizer with `fixed_start`."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devices.models import Cycle, CycleState, Device
from flexibility.planning import problem_builder, slots
from flexibility.optimizer import problem_from_dict, solve

pytestmark = pytest.mark.django_db


def test_running_cycle_is_fixed_and_its_remaining_power_is_planned(home, now):
    start = slots.floor_to_slot(now)
    washer = Device.objects.get(home=home, serial_number="WM-1")
    dishwasher = Device.objects.get(home=home, serial_number="DW-1")
    # Washer profile: 13 min 200 W, 47 min 1000 W, 14 min 100 W; started 30 min before the horizon.
    started = start - timedelta(minutes=30)
    Cycle.objects.filter(device=washer).update(state=CycleState.RUNNING, scheduled_start=started,
                                                earliest_start=started, latest_end=started + timedelta(hours=13))
    running = Cycle.objects.get(device=washer)
    # The next washer cycle may start at once, but the machine is busy until the running one ends.
    follow_up = Cycle(device=washer, sequence_id="WM-1-2", program="quick", earliest_start=start,
                      latest_end=start + timedelta(hours=2), power_profile=[
                          {"duration_min": 30, "max_power_w": 500}])
    follow_up.full_clean()
    follow_up.save()
    for state in (CycleState.COMPLETED, CycleState.CANCELLED):
        Cycle.objects.create(device=dishwasher, sequence_id=f"DW-{state}", program=state, state=state,
                             earliest_start=start, latest_end=start + timedelta(hours=4),
                             scheduled_start=start, power_profile=[{"duration_min": 60, "expected_power_w": 2000,
                                                                    "max_power_w": 2000}])

    problem = problem_builder.build_problem(home, now=now)
    items = {c["id"]: c for c in problem["cycles"]}
    fixed = items[f"cycle-{running.pk}"]
    assert datetime.fromisoformat(fixed["fixed_start"]) == started
    assert {c["name"] for c in problem["cycles"]} == {"Washing machine standard", "Washing machine quick",
                                                      "Dishwasher standard"}, "completed/cancelled cycles excluded"
    assert all("fixed_start" not in c for cid, c in items.items() if cid != fixed["id"])

    result = solve(problem_from_dict(problem), time_limit_s=10).to_dict()
    assert result["status"] in ("OPTIMAL", "FEASIBLE"), result
    planned = result["devices"][fixed["id"]]
    # Remaining power: minutes 30-45 and 45-60 at 1000 W, then 60-74 at 100 W (14/15 of a slot), then done.
    assert planned["power_kw"][:4] == pytest.approx([1.0, 1.0, 0.1 * 14 / 15, 0.0], abs=1e-3)
    assert datetime.fromisoformat(planned["start"]) == started
    second = datetime.fromisoformat(result["devices"][f"cycle-{follow_up.pk}"]["start"])
    assert second >= started + timedelta(minutes=74), "the next cycle must wait for the running one"
    # The running cycle's power is in the net import the plan pays for.
    base = problem["site"]["base_load_kw"]
    others = sum(result["devices"][k]["power_kw"][0] for k in result["devices"]
                 if k != fixed["id"] and "power_kw" in result["devices"][k])
    assert result["net_import_kw"][0] == pytest.approx(base[0] + 1.0 + others, abs=1e-2)


def test_running_cycle_that_ended_before_the_horizon_is_left_out(home, now):
    start = slots.floor_to_slot(now)
    washer = Device.objects.get(home=home, serial_number="WM-1")
    started = start - timedelta(hours=3)  # 74-minute program: over long before now
    Cycle.objects.filter(device=washer).update(state=CycleState.RUNNING, scheduled_start=started,
                                                earliest_start=started, latest_end=started + timedelta(hours=13))
    problem = problem_builder.build_problem(home, now=now)
    assert [c["device"] for c in problem["cycles"]] == ["DW-1"]
