"""EV steps under a capacity charge: the peak whole steps force (compile.capacity_ev_peak_floor) and the step
rounding that keeps each metering window under the relaxed peak (milp_search._rounded_steps, `peak_caps`)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from flexibility.optimizer import Status, problem_from_dict, solve
from flexibility.optimizer.backends.cpsat import solve_cpsat
from flexibility.optimizer.backends.milp import solve_milp
from flexibility.optimizer.compile import (capacity_ev_peak_floor, capacity_ev_window_cuts, capacity_windows,
                                          compile_problem)

from .checker import check
from .gen import homes
from .test_backends import agree, highs_without_and_with_cycle_cuts, small_battery

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def _ev_home(slots: int, res_min: int, base_kw: list[float], prices: list[float], steps_a: list[int] | None,
             energy_kwh: float, window_min: int, peak_floor_kw: float = 0.0) -> dict:
    """One EV plugged in all horizon long (current steps, or on/off at 1.4-3.7 kW) under a monthly capacity charge."""
    iso = lambda m: (START + timedelta(minutes=m)).isoformat()  # noqa: E731
    ev = {"id": "ev", "device": "EVC", "name": "Car", "arrival": iso(0), "departure": iso(slots * res_min),
          "phases": 1, "voltage_v": 230, "efficiency": 0.9, "energy_kwh": energy_kwh, "max_power_kw": 3.7}
    if steps_a:
        ev["current_steps_a"] = steps_a
    else:
        ev["min_power_kw"] = 1.4
    return {"version": 1, "start": START.isoformat(), "resolution_min": res_min, "slots": slots, "timezone": "UTC",
            "objective": {"kind": "economic"},
            "site": {"import_limit_kw": 6.9, "export_limit_kw": 3.0, "import_price_eur_per_kwh": prices,
                     "base_load_kw": base_kw},
            "ev_sessions": [ev],
            "capacity_charges": [{"start": "2026-03-01T00:00:00+00:00", "end": "2026-04-01T00:00:00+00:00",
                                  "price_eur_per_kw": 4.0, "window_min": window_min, "peak_floor_kw": peak_floor_kw}]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([0.1, 0.2, 0.35, 0.8]), min_size=8, max_size=8),
       st.sampled_from([[6, 10, 16], [6, 8, 10], [10, 16]]), st.sampled_from([15, 30, 45]),
       st.floats(0.5, 4.0))
@example([0.2] * 8, [6, 8, 10], 30, 1.0)
def test_ev_peak_floor_is_the_least_peak_of_whole_steps(base_kw, steps_a, window_min, energy_kwh):
    """Enumerating every step pattern of 8 quarter-hours: no pattern that delivers the energy has a peak below
    the floor (it is valid), and without PV or a battery the best one has it exactly (it is as tight as it can be);
    no pattern breaks a window cut (compile.capacity_ev_window_cuts) at its own peak."""
    d = _ev_home(8, 15, base_kw, [0.2] * 8, steps_a, round(energy_kwh, 2), window_min)
    p = problem_from_dict(d)
    cp = compile_problem(p)
    (em,) = cp.evs
    windows = capacity_windows(p, p.capacity_charges[0])
    floor = capacity_ev_peak_floor(cp, windows)
    patterns = np.array(list(itertools.product((0.0,) + em.levels_kw, repeat=8)))
    enough = 0.9 * patterns.sum(axis=1) * 0.25 >= em.need_kwh - 1e-9
    load = patterns[enough] + np.asarray(base_kw)
    peaks = np.max([load[:, ts].mean(axis=1) for ts in windows], axis=0)
    least = float(peaks.min()) if len(peaks) else None
    if least is None:  # the steps cannot deliver it: nothing to compare
        return
    assert floor <= least + 1e-9
    assert floor >= least - 1e-6, (floor, least)
    # the window cuts above the floor keep every pattern at its own peak (or the floor, if higher)
    every = patterns + np.asarray(base_kw)
    peak = np.maximum(floor, np.max([every[:, ts].mean(axis=1) for ts in windows], axis=0))
    for _i, slots, a0, slope in capacity_ev_window_cuts(cp, windows, floor):
        assert np.all(patterns[:, slots].sum(axis=1) <= a0 + slope * (peak - floor) + 1e-9), (slots, a0, slope)


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([0.1, 0.3, 0.6, 1.2]), min_size=24, max_size=24),
       st.lists(st.sampled_from([-0.02, 0.08, 0.12, 0.3]), min_size=24, max_size=24),
       st.sampled_from([[6, 8, 10, 12, 14, 16], [6, 16], None]), st.sampled_from([15, 30, 60]),
       st.sampled_from([0.0, 1.0]), st.booleans(), st.booleans())
@example([0.2] * 24, [0.1] * 24, [6, 8, 10, 12, 14, 16], 30, 0.0, False, False)  # ev-241 in small
def test_ev_peak_floor_keeps_the_optimum(base_kw, prices, steps_a, window_min, peak_floor_kw, pv, battery):
    """With the floor and the window-capped rounding, HiGHS (plain MIP and the LP search) and CP-SAT agree with
    HiGHS on the model without any cut, on 24 quarter-hours with PV or a battery that can lower the import (a
    backend that stops unproven must not claim a bound above the optimum, nor serve a plan below it)."""
    d = _ev_home(24, 15, base_kw, prices, steps_a, 5.0, window_min, peak_floor_kw)
    d["cycles"] = [{"id": "c0", "device": "DW", "name": "Dishwasher", "earliest_start": START.isoformat(),
                    "latest_end": (START + timedelta(hours=6)).isoformat(),
                    "phases": [{"duration_min": 30, "power_w": 2000}, {"duration_min": 30, "power_w": 150}]}]
    roof = {"id": "pv", "device": "PV", "name": "Roof", "curtailable": True,
            "forecast_kw": [max(0.0, round(2.5 - abs(t - 12) * 0.4, 3)) for t in range(24)]}
    d.update(pv=[roof] if pv else [], batteries=[small_battery()] if battery else [])
    p = problem_from_dict(d)
    cp = compile_problem(p)
    plain, cut = highs_without_and_with_cycle_cuts(cp)
    assert plain.status == cut.status == Status.OPTIMAL, (plain.status, cut.status)
    best = plain.objective
    assert agree(best, cut.objective), (best, cut.objective)
    r = solve(p, backend="milp", time_limit_s=20)  # the LP search and the capped rounding: never below the optimum
    cost, errs = check(d, r.to_dict())
    assert not errs, errs
    assert r.objective_value >= best - 1e-4 * max(1.0, abs(best)), (r.objective_value, best)
    c = solve_cpsat(cp, 5)  # proven and agreeing, or its bound (if any) not above the optimum: the cut removed no plan
    assert (c.status == Status.OPTIMAL and agree(best, c.objective)) or c.bound is None or (
        c.bound <= best + 1e-4 * max(1.0, abs(best))), (c.status, c.objective, c.bound, best)
    assert c.objective is None or c.objective >= best - 1e-4 * max(1.0, abs(best)), (c.objective, best)
    assert r.status != Status.OPTIMAL or agree(best, r.objective_value), (r.status, r.objective_value, best)


def test_ev_steps_under_a_capacity_charge_are_proven_by_the_lp_search():
    """`ev-241` in small: 6-16 A steps over a night of flat prices under a capacity charge. The LP relaxation spreads
    a fraction of the lowest step over every slot; with the floor its bound is the optimum, and the rounding that
    keeps each window under that peak finds a plan there, so the LP search proves it without a MIP."""
    d = _ev_home(32, 5, [0.2, 0.1, 0.15, 0.1] * 8, [0.1] * 32, [6, 8, 10, 12, 14, 16], 1.5, 15)
    cp = compile_problem(problem_from_dict(d))
    r = solve_milp(cp, 20)
    assert r.status == Status.OPTIMAL and r.detail.get("proof") == "LP branch and bound", (r.status, r.detail)
    plain, _cut = highs_without_and_with_cycle_cuts(cp)
    assert agree(plain.objective, r.objective)


@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(homes(max_slots=48), st.booleans(), st.booleans())
def test_v2g_lp_search_matches_full_model(d, steps, export_allowed):
    """A V2G car with current steps or on/off charging goes through the LP search, its charge-or-discharge binaries
    relaxed in the nodes and fixed at the leaves (milp_search._v2g_modes); the plan equals HiGHS on the full model."""
    from flexibility.optimizer.backends.milp import read_highs
    from flexibility.optimizer.backends.milp_model import MilpModel

    assume(d["ev_sessions"])
    d.update(batteries=[], thermal_storages=[])  # their binaries would keep the search out
    for e in d["ev_sessions"]:
        e.update(capacity_kwh=40.0, initial_soc_pct=30.0, energy_kwh=min(e["energy_kwh"], 20.0), max_power_kw=7.4,
                 max_discharge_kw=3.68, discharge_efficiency=0.9, export_allowed=export_allowed,
                 current_steps_a=[6, 10, 16, 32] if steps else None, min_power_kw=0.0 if steps else 1.38)
    cp = compile_problem(problem_from_dict(d))
    assume(any(em.ev.v2g and em.slots for em in cp.evs))
    searched = solve_milp(cp, 20)
    mm = MilpModel(cp)
    h = mm.m.to_highs(20, mip_rel_gap=5e-5)
    h.run()
    full = read_highs(mm, h)
    assert searched.status == full.status, (searched.status, full.status)
    if full.status == Status.OPTIMAL:
        assert agree(searched.objective, full.objective), (searched.objective, full.objective, searched.detail)
        r = solve(problem_from_dict(d), backend="milp", time_limit_s=20)  # the same search, through solve()
        cost, errs = check(d, r.to_dict())
        assert not errs, errs[:5]
        for eid, out in r.schedule.ev_discharge_kw.items():  # steps / on-off: never charging while discharging
            assert not any(c > 1e-6 and x > 1e-6 for c, x in zip(r.schedule.ev_kw[eid], out)), eid


def test_a_random_v2g_home_is_proven_by_the_lp_search():
    """Random home `ev-283` (a V2G car with on/off charging, a cycle): the LP search proves it (it gave up at once
    before, for the car's charge-or-discharge binaries), at HiGHS' optimum on the full model."""
    from flexibility.optimizer.backends.milp import read_highs
    from flexibility.optimizer.backends.milp_model import MilpModel
    from tests.factories.random_homes import random_home, strip_meta

    cp = compile_problem(problem_from_dict(strip_meta(random_home(283, "ev"))))
    assert any(em.ev.v2g and em.semicontinuous for em in cp.evs)
    searched = solve_milp(cp, 20)
    assert searched.status == Status.OPTIMAL and searched.detail.get("proof") == "LP branch and bound", searched.detail
    mm = MilpModel(cp)
    h = mm.m.to_highs(20, mip_rel_gap=5e-5)
    h.run()
    full = read_highs(mm, h)
    assert full.status == Status.OPTIMAL and agree(searched.objective, full.objective)
