"""Both backends agree on hand-built and random homes; an independent checker re-checks every plan."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from tests.factories.problems import HOMES, standard_home
from flexibility.optimizer import Status, baseline, problem_from_dict, solve

from .checker import check

FEATURES_ALL = ("capacity_charge", "battery_wear", "battery_taper", "min_state", "negative_prices")  # issue 14
from .gen import homes


def agree(a: float, b: float) -> bool:
    """1e-4 relative to the larger cost, floored at 1 EUR.

    The floor matters only for small homes whose import cost and export revenue
    nearly cancel: there CP-SAT's 1 W power grid alone can move the net cost by
    ~1e-4 EUR per slot of a continuous device, which is no disagreement about the plan.
    """
    return abs(a - b) <= 1e-4 * max(abs(a), abs(b), 1.0)


def both(d: dict, time_limit_s: float = 20.0, proven: tuple[str, ...] = ("milp", "cpsat")):
    """Solve with both backends; each plan is re-checked, and the backends in `proven` (by default both) must
    prove it optimal."""
    p = problem_from_dict(d)
    out = {}
    for backend in ("milp", "cpsat"):
        r = solve(p, backend=backend, time_limit_s=time_limit_s)
        # OPTIMAL = proven within the backends' 5e-5 gap; FEASIBLE at the time limit still counts when the
        # proven gap is within the 1e-4
        proved = r.status == Status.OPTIMAL or (r.status == Status.FEASIBLE and r.stats.gap is not None
                                                 and r.stats.gap <= 1e-4)
        assert proved or (backend not in proven and r.status == Status.FEASIBLE), (backend, r.status, r.stats.gap)
        cost, errs = check(d, r.to_dict())
        assert not errs, (backend, errs[:5])
        assert abs(cost - r.cost_eur) <= 1e-3 * max(1.0, abs(cost)), (backend, cost, r.cost_eur)
        out[backend] = r
    return p, out


@pytest.mark.parametrize("name", ["standard", "battery_only", "many_cycles", "thermal"])
def test_benchmark_homes_agree(name):
    d = HOMES[name]()
    p, r = both(d)
    assert agree(r["milp"].objective_value, r["cpsat"].objective_value), (
        r["milp"].objective_value, r["cpsat"].objective_value)
    assert agree(r["milp"].cost_eur, r["cpsat"].cost_eur)


def _variant(kind: str) -> dict:
    d = standard_home()
    if kind == "ecologic":
        d["objective"] = {"kind": "ecologic"}
    elif kind == "mixed":
        d["objective"] = {"kind": "mixed", "cost_weight": 0.3}
    elif kind == "soft_request":
        d["grid_request"] = {"min_net_import_kw": [None] * 96,
                             "max_net_import_kw": [None] * 72 + [1.0] * 8 + [None] * 16,
                             "penalty_eur_per_kwh": 0.5}
    elif kind == "hard_request":
        d["grid_request"] = {"min_net_import_kw": [None] * 40 + [3.0] * 4 + [None] * 52,
                             "max_net_import_kw": [None] * 72 + [2.0] * 8 + [None] * 16}
    elif kind == "negative_prices":
        d["site"]["import_price_eur_per_kwh"][44:52] = [-0.05] * 8
        d["site"]["export_price_eur_per_kwh"] = [0.3 if 60 <= t < 64 else 0.04 for t in range(96)]
    elif kind == "fixed_and_dnd":
        d["cycles"][0]["fixed_start"] = d["start"].replace("T00:00", "T00:00").replace("00:00:00", "00:10:00")
        d["cycles"][0]["earliest_start"] = None
        d["do_not_disturb"] = [{"start": d["start"].replace("00:00:00", "12:00:00"),
                                "end": d["start"].replace("00:00:00", "15:00:00")}]
    elif kind == "semicontinuous_ev_curtail":
        d["ev_sessions"][0]["current_steps_a"] = None
        d["pv"][0]["curtailable"] = True
        d["site"]["export_limit_kw"] = 0.5
    return d


@pytest.mark.parametrize("kind", ["ecologic", "mixed", "soft_request", "hard_request", "negative_prices",
                                  "fixed_and_dnd", "semicontinuous_ev_curtail"])
def test_variants_agree(kind):
    d = _variant(kind)
    # CP-SAT proves the grid-request variants in 3-13 s depending on the machine's load: the limit leaves
    # room, as the test is about agreement, not speed (bench.optimizer times the backends)
    p, r = both(d, time_limit_s=60)
    assert agree(r["milp"].objective_value, r["cpsat"].objective_value), (
        kind, r["milp"].objective_value, r["cpsat"].objective_value)


@settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(homes())
def test_random_homes(d):
    # Issue 11: the backends agree within 1e-4 wherever both prove optimality. HiGHS must prove these homes;
    # CP-SAT did not always within the limit (a 3.9e-4 gap after 10 s under load on a home it proves in
    # 2.8 s alone; a 1e-3 gap after 30 s once in a full `make test`, a home drawn there only), and its plan
    # is then held to being valid (`both` re-checks it) and no better than the proven optimum.
    p, r = both(d, time_limit_s=30, proven=("milp",))
    m, c = r["milp"], r["cpsat"]
    if c.status == Status.OPTIMAL or (c.stats.gap is not None and c.stats.gap <= 1e-4):
        assert agree(m.objective_value, c.objective_value), (m.objective_value, c.objective_value)
    else:
        assert c.objective_value >= m.objective_value - 1e-4 * max(abs(m.objective_value), 1.0), (
            m.objective_value, c.objective_value)
    bl = baseline(p)
    if bl.feasible and p.objective.kind == "economic":
        # tie-breaks are ~1e-6 EUR per slot; the baseline has no objective of its own
        assert m.cost_eur <= bl.cost_eur + 1e-4 * max(1.0, abs(bl.cost_eur)) + 1e-3
        assert m.objective_value <= bl.objective + 1e-6 + 1e-4 * abs(bl.objective)


@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(homes(max_slots=48))
def test_ev_step_stages_match_full_model(d):
    """The EV-step solve (LP branch and bound, else the staged MILP) and the staged MILP alone equal HiGHS on
    the plain full model."""
    from flexibility.optimizer.backends.milp import read_highs, solve_milp
    from flexibility.optimizer.backends.milp_model import MilpModel
    from flexibility.optimizer.compile import compile_problem

    assume(d["ev_sessions"])
    for e in d["ev_sessions"]:
        e.update(current_steps_a=[6, 8, 10, 13, 16, 20, 25, 32], phases=1, voltage_v=230)
    cp = compile_problem(problem_from_dict(d))
    staged = solve_milp(cp, 20)
    mm = MilpModel(cp, round_ev_energy=False)  # the plain model, without the whole-step energy cut
    h = mm.m.to_highs(20, mip_rel_gap=5e-5)
    h.run()
    full = read_highs(mm, h)
    assert staged.status == full.status == Status.OPTIMAL, (staged.status, full.status)
    assert agree(staged.objective, full.objective), (staged.objective, full.objective)
    without_search = solve_milp(cp, 20, lp_search=False)  # the staged MILP alone (the search's fallback)
    assert without_search.status == Status.OPTIMAL, without_search.status
    assert agree(without_search.objective, full.objective), (without_search.objective, full.objective)


@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(homes(max_slots=48))
def test_on_off_ev_search_matches_full_model(d):
    """On/off EVs (minimum power above zero) go through the LP branch and bound on their hull [0, max];
    its plan equals HiGHS on the full model with one on/off binary per EV slot."""
    from flexibility.optimizer.backends.milp import solve_milp
    from flexibility.optimizer.compile import compile_problem

    assume(d["ev_sessions"])
    for e in d["ev_sessions"]:
        e.update(min_power_kw=1.38, current_steps_a=None)
    cp = compile_problem(problem_from_dict(d))
    assume(any(em.semicontinuous and em.slots for em in cp.evs))
    searched = solve_milp(cp, 20)
    full = solve_milp(cp, 20, lp_search=False)
    assert searched.status == full.status, (searched.status, full.status)
    if full.status == Status.OPTIMAL:
        assert agree(searched.objective, full.objective), (searched.objective, full.objective)
        r = solve(problem_from_dict(d), backend="milp", time_limit_s=20)  # the same search, through solve()
        assert r.status == Status.OPTIMAL
        cost, errs = check(d, r.to_dict())  # every constraint re-checked, on/off minimum power included
        assert not errs, errs[:5]


@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(homes(max_slots=48))
def test_heating_count_cut_keeps_the_optimum(d):
    """The whole-heating-slot cut (compile.heating_count_bounds) removes no plan: HiGHS with and without
    it finds the same optimum on random homes with an on/off heater."""
    from flexibility.optimizer.backends.milp import read_highs
    from flexibility.optimizer.backends.milp_model import MilpModel
    from flexibility.optimizer.compile import compile_problem

    assume(d["thermal_storages"])
    d["thermal_storages"][0]["modulating"] = False
    cp = compile_problem(problem_from_dict(d))
    out = []
    for cuts in (True, False):
        mm = MilpModel(cp, heating_cuts=cuts)
        h = mm.m.to_highs(20, mip_rel_gap=5e-5)
        h.run()
        out.append(read_highs(mm, h))
    assert out[0].status == out[1].status
    if out[1].status == Status.OPTIMAL:
        assert agree(out[0].objective, out[1].objective), (out[0].objective, out[1].objective)


def highs_without_and_with_cycle_cuts(cp, mip_rel_gap: float = 5e-5) -> list:
    """HiGHS on the plain model (no cycle cuts, no symmetry order), then on the model with them."""
    from flexibility.optimizer.backends.milp import read_highs
    from flexibility.optimizer.backends.milp_model import MilpModel

    out = []
    for cuts in (False, True):
        mm = MilpModel(cp, symmetry=cuts, cycle_cuts=cuts)
        h = mm.m.to_highs(20, mip_rel_gap=mip_rel_gap)
        h.run()
        out.append(read_highs(mm, h))
    return out


def small_battery() -> dict:
    """A 2 kWh / 1 kW battery at half charge with a 10 % reserve: enough to shave a peak or a cheap hour."""
    return {"id": "bat", "device": "BAT", "name": "Battery", "capacity_kwh": 2.0, "initial_soc_pct": 50,
            "min_soc_pct": 10, "max_charge_kw": 1.0, "max_discharge_kw": 1.0, "charge_efficiency": 0.95,
            "discharge_efficiency": 0.95}


def assert_cuts_keep_the_optimum(cp, mip_rel_gap: float = 5e-5) -> None:
    """HiGHS without and with the cycle cuts agree (or both prove infeasibility), and CP-SAT proves the same optimum
    or at least (negative prices next to a battery, heat pumps: its weak spots) its proven bound does not pass it:
    the cuts removed no plan."""
    from flexibility.optimizer.backends.cpsat import solve_cpsat

    out = highs_without_and_with_cycle_cuts(cp, mip_rel_gap=mip_rel_gap)
    assert {r.status for r in out} in ({Status.OPTIMAL}, {Status.INFEASIBLE}), [r.status for r in out]
    if out[0].status == Status.INFEASIBLE:
        return
    best = out[0].objective
    assert agree(best, out[1].objective), [r.objective for r in out]
    c = solve_cpsat(cp, 20)
    assert (c.status == Status.OPTIMAL and agree(best, c.objective)) or c.bound <= best + 1e-4 * max(1.0, abs(best)), (
        c.status, c.objective, c.bound, best)


def _cycles_home(windows: list[tuple[int, int]], prices: list[float]) -> dict:
    """Four cycles on a 4.6 kVA connection over 24 half-hours: two identical washes on one washer (the
    windows drawn), a dishwasher and a dryer whose heating phases cannot share a slot with a wash's."""
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    iso = lambda slot: (start + timedelta(minutes=30 * slot)).isoformat()  # noqa: E731
    wash = [{"duration_min": 30, "power_w": 2600}, {"duration_min": 60, "power_w": 200}]
    progs = [("WM", wash), ("WM", wash), ("DW", [{"duration_min": 60, "power_w": 2100}]),
             ("DR", [{"duration_min": 30, "power_w": 300}, {"duration_min": 60, "power_w": 2400}])]
    wins = windows + [(0, 24), (2, 20)]
    cycles = [{"id": f"c{i}", "device": dev, "name": f"{dev} {i}", "phases": ph, "earliest_start": iso(a),
               "latest_end": iso(b)} for i, ((dev, ph), (a, b)) in enumerate(zip(progs, wins))]
    return {"version": 1, "start": start.isoformat(), "resolution_min": 30, "slots": 24, "timezone": "UTC",
            "objective": {"kind": "economic"},
            "site": {"import_limit_kw": 4.6, "export_limit_kw": 4.6, "import_price_eur_per_kwh": prices,
                     "base_load_kw": [0.4] * 24},
            "cycles": cycles}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(4, 10)), min_size=2, max_size=2),
       st.lists(st.sampled_from([-0.05, 0.08, 0.12, 0.3]), min_size=24, max_size=24))
@example([(0, 10), (4, 4)], [0.3] * 4 + [-0.05] * 6 + [0.3] * 14)  # nested windows: the wide one runs second
@example([(4, 4), (0, 10)], [0.3] * 4 + [-0.05] * 6 + [0.3] * 14)
def test_cycle_cuts_keep_the_optimum(spans, prices):
    """The power cliques and the order of interchangeable cycles (compile.power_cliques /
    interchangeable_cycles) remove no optimum: HiGHS without them, HiGHS with them and CP-SAT agree on
    homes where heavy phases compete for cheap hours, with the identical washes' windows drawn (equal,
    nested, shifted, disjoint)."""
    from flexibility.optimizer.backends.cpsat import solve_cpsat
    from flexibility.optimizer.compile import compile_problem, interchangeable_cycles, power_cliques

    windows = [(a, min(24, a + n)) for a, n in spans]
    cp = compile_problem(problem_from_dict(_cycles_home(windows, prices)))
    assert power_cliques(cp)  # the wash heats at 2.6 kW, the dryer at 2.4 kW: never together under 4.6 kVA
    sa, sb = ({o.start_min for o in cm.options} for cm in cp.cycles[:2])
    if sa == sb:
        assert len(interchangeable_cycles(cp)) == 1
    out = highs_without_and_with_cycle_cuts(cp, mip_rel_gap=1e-9)
    out.append(solve_cpsat(cp, 20, rel_gap_limit=1e-9))
    assert {r.status for r in out} in ({Status.OPTIMAL}, {Status.INFEASIBLE}), [r.status for r in out]
    if out[0].status == Status.OPTIMAL:
        assert agree(out[0].objective, out[1].objective) and agree(out[0].objective, out[2].objective), [
            r.objective for r in out]


@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(4, 10)), min_size=2, max_size=2),
       st.lists(st.sampled_from([-0.05, 0.08, 0.12, 0.3]), min_size=24, max_size=24),
       st.sampled_from([30, 60, 90]), st.sampled_from([0.0, 1.5, 3.0]), st.booleans(), st.booleans())
@example([(0, 10), (4, 4)], [0.3] * 4 + [0.08] * 6 + [0.3] * 14, 60, 0.0, False, False)
def test_capacity_floors_keep_the_optimum(spans, prices, window_min, peak_floor_kw, pv, battery):
    """The peak each cycle start forces under a capacity charge (compile.capacity_cycle_floors) removes no
    optimum: HiGHS without the cycle cuts, HiGHS with them and CP-SAT agree, with metering windows of one to
    three slots, a floor, and PV or a battery that can lower the import (and so the floors)."""
    from flexibility.optimizer.compile import capacity_cycle_floors, capacity_windows, compile_problem

    d = _cycles_home([(a, min(24, a + n)) for a, n in spans], prices)
    d["capacity_charges"] = [{"start": "2026-03-01T00:00:00+00:00", "end": "2026-04-01T00:00:00+00:00",
                              "price_eur_per_kw": 4.0, "window_min": window_min, "peak_floor_kw": peak_floor_kw}]
    if pv:
        d["pv"] = [{"id": "pv", "device": "PV", "name": "Roof", "curtailable": False,
                    "forecast_kw": [max(0.0, round(3.0 - abs(t - 12) * 0.5, 3)) for t in range(24)]}]
    if battery:
        d["batteries"] = [small_battery()]
    p = problem_from_dict(d)
    cp = compile_problem(p)
    if not (pv or battery or peak_floor_kw > 2.9):
        assert capacity_cycle_floors(cp, capacity_windows(p, p.capacity_charges[0]))  # the cut is there
    assert_cuts_keep_the_optimum(cp)


@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(4, 10)), min_size=2, max_size=2),
       st.lists(st.sampled_from([0.0, 0.08, 0.12, 0.3]), min_size=24, max_size=24),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([1.0, 3.0, 6.0]), st.booleans(), st.booleans())
@example([(10, 10), (8, 8)], [0.3] * 24, 0.5, 3.0, False, False)  # PV surplus at noon, a cycle at a time fills it
def test_cycle_cost_floor_keeps_the_optimum(spans, prices, export_share, kwp, curtailable, ecologic):
    """The grid cost by whole cycle starts (compile.cycle_cost_floors) removes no optimum: HiGHS without the
    cycle cuts, HiGHS with them and CP-SAT agree on PV homes whose surplus the cycles compete for (export at a
    share of the import price, curtailable or not, economic or ecologic)."""
    from flexibility.optimizer.backends.cpsat import solve_cpsat
    from flexibility.optimizer.compile import compile_problem, cycle_cost_floors

    d = _cycles_home([(a, min(24, a + n)) for a, n in spans], prices)
    d["site"]["export_price_eur_per_kwh"] = [round(export_share * x, 4) for x in prices]
    d["site"]["export_limit_kw"] = 1.5
    d["site"]["co2_g_per_kwh"] = [200.0 + 10 * t for t in range(24)]
    if ecologic:
        d["objective"] = {"kind": "ecologic"}
    d["pv"] = [{"id": "pv", "device": "PV", "name": "Roof", "curtailable": curtailable,
                "forecast_kw": [max(0.0, round(kwp * (1 - abs(t - 12) / 6), 3)) for t in range(24)]}]
    if not curtailable:  # what the home cannot use or export would make it infeasible
        d["pv"][0]["forecast_kw"] = [min(x, 1.9) for x in d["pv"][0]["forecast_kw"]]
    cp = compile_problem(problem_from_dict(d))
    assert cycle_cost_floors(cp) is not None
    out = highs_without_and_with_cycle_cuts(cp)
    out.append(solve_cpsat(cp, 20))
    assert {r.status for r in out} in ({Status.OPTIMAL}, {Status.INFEASIBLE}), [r.status for r in out]
    if out[0].status == Status.OPTIMAL:
        assert agree(out[0].objective, out[1].objective) and agree(out[0].objective, out[2].objective), [
            r.objective for r in out]


def _heaters_home(prices: list[float], kwp: float, limit_kw: float, min_run: bool, circuit: bool,
                  export_share: float) -> dict:
    """A winter day in 24 hourly slots: a 2.5 kW on/off water heater, a 2.55 kW on/off heat pump (with or without
    minimum run / off times), a 2.4 kW dryer cycle and PV, on a 3.45-6.9 kVA connection, maybe with the heater and
    the heat pump on one 3 kW breaker: the on-slots compete for the cheap hours and the PV surplus."""
    n = 24
    start = datetime(2026, 1, 12, tzinfo=timezone.utc)
    hp = {"id": "hp", "device": "HP", "name": "Heat pump", "max_power_kw": 2.55, "heat_capacity_kwh_per_k": 8.0,
          "heat_loss_kw_per_k": 0.15, "initial_indoor_c": 20.5,
          "outdoor_temperature_c": [3.0 - 2.0 * math.cos(2 * math.pi * (t - 5) / 24) for t in range(n)],
          "comfort_min_c": [17.0 if t < 6 or t >= 22 else 20.0 for t in range(n)], "comfort_max_c": [23.0] * n,
          "cop_curve": [[-10, 2.0], [7, 3.4]], "modulating": False}
    if min_run:
        hp.update(min_run_min=120, min_off_min=60)
    wh = {"id": "wh", "device": "WH", "name": "Water heater", "electric_power_kw": 2.5, "modulating": False,
          "cop": 1.0, "min_energy_kwh": 0.0, "max_energy_kwh": 8.0, "initial_energy_kwh": 5.0,
          "final_energy_kwh": 4.0, "standing_loss_kw": 0.05,
          "heat_demand_kw": [1.2 if t in (7, 20) else 0.04 for t in range(n)]}
    d = {"version": 1, "start": start.isoformat(), "resolution_min": 60, "slots": n, "timezone": "UTC",
         "objective": {"kind": "economic"},
         "site": {"import_limit_kw": limit_kw, "export_limit_kw": limit_kw, "import_price_eur_per_kwh": prices,
                  "export_price_eur_per_kwh": [round(export_share * x, 4) for x in prices],
                  "base_load_kw": [0.3] * n},
         "cycles": [{"id": "dry", "device": "DR", "name": "Dryer", "phases": [{"duration_min": 120, "power_w": 2400}],
                     "earliest_start": (start + timedelta(hours=8)).isoformat(),
                     "latest_end": (start + timedelta(hours=20)).isoformat()}],
         "thermal_storages": [wh], "heat_pumps": [hp],
         "pv": [{"id": "pv", "device": "PV", "name": "Roof", "curtailable": True,
                 "forecast_kw": [max(0.0, round(kwp * (1 - abs(t - 12.5) / 5), 3)) for t in range(n)]}]}
    if circuit:
        d["circuits"] = [{"id": "c", "name": "Breaker", "limit_kw": 3.0, "devices": ["WH", "HP"]}]
    return d


@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([0.08, 0.12, 0.2, 0.3]), min_size=24, max_size=24),
       st.sampled_from([0.0, 2.0, 4.0]), st.sampled_from([3.45, 4.6, 6.9]), st.booleans(), st.booleans(),
       st.sampled_from([0.0, 0.5]))
@example([0.3] * 6 + [0.12] * 12 + [0.3] * 6, 4.0, 3.45, False, False, 0.5)  # cliques and surplus floors both bind
@example([0.3] * 6 + [0.12] * 12 + [0.3] * 6, 2.0, 6.9, True, True, 0.0)  # the breaker's clique only
def test_heater_cuts_keep_the_optimum(prices, kwp, limit_kw, min_run, circuit, export_share):
    """The heater cliques and the PV-surplus slot floors (compile.heater_cliques / slot_cost_floors, MILP only)
    remove no optimum: HiGHS without the cycle cuts, HiGHS with them and CP-SAT agree on homes where an on/off
    water heater, an on/off heat pump and a cycle cannot all run at once under the connection or a shared breaker,
    and compete for a PV surplus."""
    from flexibility.optimizer.compile import compile_problem, heater_cliques, slot_cost_floors

    cp = compile_problem(problem_from_dict(_heaters_home(prices, kwp, limit_kw, min_run, circuit, export_share)))
    if limit_kw < 5 or circuit:
        assert heater_cliques(cp)
    if kwp >= 4.0:
        assert slot_cost_floors(cp)
    assert_cuts_keep_the_optimum(cp, mip_rel_gap=1e-9)


@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(4, 10)), min_size=2, max_size=2),
       st.lists(st.sampled_from([-0.05, 0.08, 0.12, 0.3]), min_size=24, max_size=24),
       st.sampled_from([30, 60, 90]), st.sampled_from([0.0, 1.5]), st.sampled_from([None, False, True]))
@example([(0, 10), (4, 4)], [0.3] * 4 + [0.08] * 6 + [0.3] * 14, 60, 0.0, None)
@example([(8, 8), (10, 6)], [0.3] * 8 + [0.08] * 8 + [0.3] * 8, 30, 0.0, True)
def test_peak_cuts_keep_the_optimum(spans, prices, window_min, peak_floor_kw, pv):
    """The peak cuts CP-SAT gets from a plan under a capacity charge (cpsat.peak_cuts: the peak a plan at least
    as good may have, the starts that cannot share a metering window under it) remove no plan at least as good:
    given the optimum itself (HiGHS, the plain model) as hint and cutoff, the tightest case, CP-SAT with the cuts
    proves the same objective. With negative prices, PV (curtailable or not) and export paid above some import
    prices (the exclusive slots whose export the objective floor bounds). Fails when the cuts are made stronger
    (the floor raised by 1 %, the room in a window lowered by 1 %). With `improve`, CP-SAT searches only below the
    hint's objective: the optimum as hint is proven by finding nothing, the household's own plan leads to the
    optimum."""
    from flexibility.optimizer.backends.cpsat import peak_rounds, solve_cpsat
    from flexibility.optimizer.baseline import baseline_schedule
    from flexibility.optimizer.compile import compile_problem
    from flexibility.optimizer.evaluate import evaluate

    d = _cycles_home([(a, min(24, a + n)) for a, n in spans], prices)
    d["capacity_charges"] = [{"start": "2026-03-01T00:00:00+00:00", "end": "2026-04-01T00:00:00+00:00",
                              "price_eur_per_kw": 4.0, "window_min": window_min, "peak_floor_kw": peak_floor_kw}]
    if pv is not None:
        d["site"]["export_price_eur_per_kwh"] = [0.1] * 24
        d["pv"] = [{"id": "pv", "device": "PV", "name": "Roof", "curtailable": pv,
                    "forecast_kw": [max(0.0, round(2.5 - abs(t - 12) * 0.5, 3)) for t in range(24)]}]
    p = problem_from_dict(d)
    cp = compile_problem(p)
    assert peak_rounds(cp)
    opt = highs_without_and_with_cycle_cuts(cp, mip_rel_gap=1e-9)[0]
    assume(opt.status == Status.OPTIMAL)
    cutoff = evaluate(p, opt.schedule, cp).objective
    c = solve_cpsat(cp, 20, hint=opt.schedule, cutoff=cutoff)
    assert "peak_cliques" in c.detail
    assert c.status == Status.OPTIMAL and agree(c.objective, opt.objective), (c.status, c.objective, opt.objective)
    # only plans below the hint (the portfolio's second round): from the optimum none, which proves it, and the
    # bound is one (never above the optimum); from the household's own plan, the optimum
    c = solve_cpsat(cp, 20, hint=opt.schedule, cutoff=cutoff, improve=True)
    # (the completed hint may curtail PV worse than HiGHS did: then CP-SAT finds the same starts, completed better)
    assert "improve_below" in c.detail
    assert (c.detail.get("proof") == "no plan below the hint") == (c.schedule is opt.schedule)
    slack = 1e-5 * max(1.0, abs(opt.objective))  # CP-SAT's loads in whole power units: its model is exact to ~1e-7
    assert c.status == Status.OPTIMAL and agree(c.objective, opt.objective), (c.status, c.objective, opt.objective)
    assert c.bound <= opt.objective + slack, (c.bound, opt.objective)
    own = baseline_schedule(p, cp)
    ev = evaluate(p, own, cp)
    assume(ev.feasible)
    c = solve_cpsat(cp, 20, hint=own, cutoff=ev.objective, improve=True)
    assert agree(c.objective, opt.objective), (c.status, c.objective, opt.objective)
    # proven within the gap limit of the plan found when that is at least a quarter of the plan it started below
    assert c.status == Status.OPTIMAL or abs(ev.objective) > 4 * max(1.0, abs(opt.objective)), (c.status, ev.objective)
    assert "improve_below" in c.detail and c.bound <= opt.objective + slack


@pytest.mark.parametrize("efficiency", [0.942, 0.9, 0.95])
def test_car_that_must_leave_full_is_feasible_for_both(efficiency):
    """A car whose need is its whole room (target 100 %): CP-SAT's floored charging cannot hit a room that is not a
    whole number of its units (held-out home `full-370`: it called the home infeasible while HiGHS proved it)."""
    n = 24
    d = {"version": 1, "start": "2026-03-02T00:00:00+00:00", "resolution_min": 60, "slots": n,
         "site": {"import_limit_kw": 9.0, "import_price_eur_per_kwh": [0.40 if 17 <= t < 22 else 0.10 for t in range(n)],
                  "base_load_kw": [1.0] * n},
         "ev_sessions": [{"id": "ev-1", "device": "EVC-1", "name": "Car", "arrival": "2026-03-02T17:00:00+00:00",
                          "departure": "2026-03-03T00:00:00+00:00", "capacity_kwh": 58.0, "initial_soc_pct": 58.0,
                          "target_soc_pct": 100.0, "max_power_kw": 7.4, "efficiency": efficiency}]}
    _, r = both(d, time_limit_s=10)
    for res in r.values():
        assert sum(res.to_dict()["devices"]["ev-1"]["power_kw"]) * efficiency == pytest.approx(0.42 * 58.0, abs=1e-3)
    assert agree(r["milp"].objective_value, r["cpsat"].objective_value)


@pytest.mark.parametrize("resolution_min", [5, 15, 60])
def test_car_on_steps_that_must_leave_full_leaves_as_full_as_whole_steps_make_it(resolution_min):
    """Target 100 % on 6-32 A steps: whole steps deliver multiples of q, none of which is exactly the room (held-out
    homes `ev-781`, `full-1150` were infeasible by 0.03-0.04 kWh); the car leaves less than q short of full."""
    n = 24 * 60 // resolution_min
    d = {"version": 1, "start": "2026-03-02T00:00:00+00:00", "resolution_min": resolution_min, "slots": n,
         "site": {"import_limit_kw": 13.8, "import_price_eur_per_kwh": [0.40 if t * resolution_min < 1020 else 0.10
                                                                         for t in range(n)],
                  "base_load_kw": [0.5] * n},
         "ev_sessions": [{"id": "ev-1", "device": "EVC-1", "name": "Car", "arrival": "2026-03-02T17:00:00+00:00",
                          "departure": "2026-03-03T00:00:00+00:00", "capacity_kwh": 58.0, "initial_soc_pct": 41.2,
                          "target_soc_pct": 100.0, "max_power_kw": 11.04, "phases": 3, "voltage_v": 230,
                          "current_steps_a": [6, 8, 10, 13, 16, 20, 25, 32], "efficiency": 0.93}]}
    room, q = 0.588 * 58.0, 0.93 * resolution_min / 60 * 0.69
    _, r = both(d, time_limit_s=10)
    for res in r.values():
        got = sum(res.to_dict()["devices"]["ev-1"]["power_kw"]) * resolution_min / 60 * 0.93
        assert room - q < got <= room + 1e-3
    assert agree(r["milp"].objective_value, r["cpsat"].objective_value)


@pytest.mark.parametrize("name, force", [("battery-1292", ()), ("full-628", FEATURES_ALL)])
def test_battery_taper_homes_agree_within_the_gap(name, force):
    """A taper binds the charge slot by slot and CP-SAT rounded every slot to its unit: on held-out homes both
    backends proved OPTIMAL 1.07-1.55e-4 apart until the unit got finer with a taper (`power_units_per_kw`)."""
    from tests.factories.random_homes import random_home, strip_meta

    kind, seed = name.rsplit("-", 1)
    _, r = both(strip_meta(random_home(int(seed), kind, force)), time_limit_s=10)
    assert agree(r["milp"].objective_value, r["cpsat"].objective_value), (r["milp"].objective_value,
                                                                          r["cpsat"].objective_value)
