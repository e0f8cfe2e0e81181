"""When a home has left its plan (rolling re-planning triggers)."""
from __future__ import annotations

import pytest

from flexibility.planning.mpc import Expected, Measured, Thresholds, replan_reasons


def test_on_plan_gives_no_reason():
    expected = Expected(battery_soc_pct={"BAT": 50.0}, cycle_states={1: "scheduled", 2: "running"},
                        active_ev_sessions=frozenset({7}), base_load_w=400.0)
    measured = Measured(battery_soc_pct={"BAT": 58.0}, cycle_states={1: "scheduled", 2: "running"},
                        active_ev_sessions=frozenset({7}), base_load_w=700.0)
    assert replan_reasons(expected, measured) == []


@pytest.mark.parametrize("soc, replan", [(39.9, True), (40.0, False), (60.0, False), (60.1, True)])
def test_battery_soc_off_by_more_than_the_threshold(soc, replan):
    reasons = replan_reasons(Expected(battery_soc_pct={"BAT": 50.0}), Measured(battery_soc_pct={"BAT": soc}))
    assert bool(reasons) is replan
    assert not replan_reasons(Expected(battery_soc_pct={"BAT": 50.0}), Measured(battery_soc_pct={"BAT": soc}),
                              Thresholds(soc_pct=20))


@pytest.mark.parametrize("kwh, replan", [(1.9, True), (2.0, False), (3.5, False), (4.1, True)])
def test_hot_water_tank_off_the_plan_by_more_than_the_threshold(kwh, replan):
    reasons = replan_reasons(Expected(tank_kwh={"WH": 3.0}), Measured(tank_kwh={"WH": kwh}))
    assert bool(reasons) is replan
    assert not replan_reasons(Expected(tank_kwh={"WH": 3.0}), Measured(tank_kwh={"WH": kwh}), Thresholds(tank_kwh=1.5))
    assert replan_reasons(Expected(tank_kwh={"WH": 3.0}), Measured()) == []


def test_unmeasured_battery_is_no_reason():
    assert replan_reasons(Expected(battery_soc_pct={"BAT": 50.0}), Measured()) == []


def test_cycles_starting_or_finishing_off_plan():
    expected = Expected(cycle_states={1: "scheduled", 2: "running", 3: "scheduled"})
    measured = Measured(cycle_states={1: "running", 2: "done", 3: "scheduled"})
    assert replan_reasons(expected, measured) == ["cycle 1 started", "cycle 2 finished"]
    # As planned: started when the plan said it runs, or done when it was planned done.
    assert replan_reasons(Expected(cycle_states={4: "running", 5: "done"}),
                          Measured(cycle_states={4: "running", 5: "done"})) == []


def test_ev_plugged_in_or_out():
    assert replan_reasons(Expected(active_ev_sessions=frozenset({1})), Measured(active_ev_sessions=frozenset({2}))) == [
        "EV session 2 plugged in", "EV session 1 unplugged"]


def test_open_requests_newer_than_the_latest_run_and_not_in_the_plan():
    expected = Expected(cycle_states={1: "scheduled"}, ev_sessions=frozenset({7}))
    measured = Measured(new_cycles=frozenset({1, 2}), new_ev_sessions=frozenset({7, 8}))
    assert replan_reasons(expected, measured) == ["cycle 2 is not in the plan", "EV session 8 is not in the plan"]


def _load(forecast_w: float, last_w: float | None, before_w: float | None) -> list[str]:
    return replan_reasons(Expected(base_load_w=forecast_w, base_load_before_w=forecast_w),
                          Measured(base_load_w=last_w, base_load_before_w=before_w))


@pytest.mark.parametrize("measured, replan", [
    (900.0, False),   # +500 W: not more than the absolute threshold
    (901.0, True),
    (200.0, False),   # -200 W
    (None, False),    # nothing measured
])
def test_load_far_from_forecast(measured, replan):
    assert bool(_load(400.0, measured, measured)) is replan


def test_large_homes_need_a_relative_gap_too():
    # 3 kW forecast, 3.6 kW measured: 600 W off but only 20 %: no re-plan.
    assert _load(3000.0, 3600.0, 3600.0) == []
    assert _load(3000.0, 4600.0, 4600.0) != []


@pytest.mark.parametrize("forecast_w, last_w, before_w, replan", [
    (400.0, 2000.0, 400.0, False),    # one hour off (a kettle, an oven): the forecast a re-plan uses would not change
    (400.0, 400.0, 2000.0, False),    # it was off, it is back
    (400.0, 2000.0, 1600.0, True),    # off for two hours: a change of level
    (400.0, 2000.0, None, False),     # the hour before unknown: not known to last
    (1500.0, 0.0, 2500.0, False),     # off in opposite directions: noise, not a level
])
def test_load_must_stay_off_its_forecast_for_two_hours(forecast_w, last_w, before_w, replan):
    assert bool(_load(forecast_w, last_w, before_w)) is replan
