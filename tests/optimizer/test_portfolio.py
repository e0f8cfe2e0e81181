"""The `auto` portfolio: fallbacks between the two backends, the plan it serves and the gap it reports.

Fault injection wraps the real backends (a real solve whose answer is turned into what a time-out would
have returned), so the portfolio's control flow is exercised on real plans and real bounds.
"""
from __future__ import annotations

import dataclasses

import pytest

from flexibility.optimizer import Status, problem_from_dict, solve
from flexibility.optimizer.backends.common import BackendResult
from flexibility.optimizer.compile import compile_problem
from flexibility.optimizer.evaluate import evaluate
from flexibility.optimizer.portfolio import portfolio_runner, solve_portfolio
from tests.factories.problems import many_cycles_home, standard_home

from .checker import check


class Recorder:
    """Runs the real backend, then applies `faults[backend]` to its answer; records every call."""

    def __init__(self, **faults):
        self.faults = faults
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, cp, backend, time_limit_s, threads, start):
        self.calls.append((backend, start is not None))
        res = portfolio_runner(cp, backend, time_limit_s, threads, start)
        fault = self.faults.get(backend)
        return fault(res) if fault else res


def nothing(res: BackendResult) -> BackendResult:
    """A time-out before any plan."""
    return BackendResult(Status.NO_SOLUTION_IN_TIME, None, build_ms=res.build_ms, solve_ms=res.solve_ms)


def unproven(res: BackendResult) -> BackendResult:
    """A time-out with a plan but a weak bound (10 % below)."""
    if res.schedule is None:
        return res
    return dataclasses.replace(res, status=Status.FEASIBLE, bound=res.objective - 0.1 * abs(res.objective),
                               gap=0.1)


def test_first_backend_finds_nothing_second_proves():
    cp = compile_problem(problem_from_dict(standard_home()))
    run = Recorder(milp=nothing)
    res, served_by = solve_portfolio(cp, 20, first="milp", runner=run)
    assert run.calls == [("milp", False), ("cpsat", False)]
    assert served_by == "cpsat" and res.status == Status.OPTIMAL
    assert [e["status"] for e in res.detail["portfolio"]] == ["NO_SOLUTION_IN_TIME", "OPTIMAL"]
    assert not evaluate(cp.problem, res.schedule, cp).violations


def test_first_backend_times_out_with_a_plan_second_starts_from_it():
    cp = compile_problem(problem_from_dict(many_cycles_home()))
    run = Recorder(milp=unproven)
    res, served_by = solve_portfolio(cp, 20, first="milp", runner=run)
    assert run.calls == [("milp", False), ("cpsat", True)]  # CP-SAT got HiGHS' plan as a hint
    assert res.status == Status.OPTIMAL and res.detail["portfolio"][1]["started_from_plan"]
    first = res.detail["portfolio"][0]["objective"]
    assert res.objective <= first + 1e-9  # never worse than the plan it started from


def test_both_find_plans_neither_proves_best_plan_served_with_its_gap():
    cp = compile_problem(problem_from_dict(standard_home()))
    run = Recorder(milp=unproven, cpsat=unproven)
    res, served_by = solve_portfolio(cp, 20, first="milp", runner=run)
    assert run.calls == [("milp", False), ("cpsat", True)]  # no third round: a restart would not resume
    assert [e["started_from_plan"] for e in res.detail["portfolio"]] == [False, True]
    assert res.status == Status.FEASIBLE
    plans = [e["objective"] for e in res.detail["portfolio"] if e["objective"] is not None]
    assert len(plans) == 2
    assert res.objective <= min(plans) + 1e-6  # evaluated objective of the best plan either backend found
    bounds = [e["bound"] for e in res.detail["portfolio"]]
    # the home has a battery and an EV: CP-SAT's bound is its restricted model's, the float bound is HiGHS'
    assert res.bound == bounds[0] and res.detail["cpsat_model_bound"] == bounds[1]
    assert res.gap == (res.objective - res.bound) / abs(res.objective)
    assert 0.09 < res.gap < 0.11


def test_on_a_cycles_home_cpsat_bound_is_the_float_bound():
    """Cycle starts are exact in CP-SAT's model: its bound counts as the float problem's."""
    from flexibility.optimizer.portfolio import cpsat_restricts as restricts

    cp = compile_problem(problem_from_dict(many_cycles_home()))
    assert not restricts(cp) and restricts(compile_problem(problem_from_dict(standard_home())))
    run = Recorder(milp=unproven, cpsat=unproven)
    res, _ = solve_portfolio(cp, 20, first="milp", runner=run)
    assert res.bound == max(e["bound"] for e in res.detail["portfolio"]) and "cpsat_model_bound" not in res.detail


def _ev_109():
    """`ev-109`: a continuous EV (33.6 kWh over 50 slots) under a capacity charge of 3.73 EUR/kW. CP-SAT's powers in
    whole W (1 W of peak = 3.7 mEUR) put its proven optimum 3.3e-5 of the objective above HiGHS' float optimum: its
    bound (rounding of the objective already taken off) is above a plan of the float problem (README "The
    portfolio's gap")."""
    from tests.factories.random_homes import random_home, strip_meta

    return compile_problem(problem_from_dict(strip_meta(random_home(109, "ev"))))


def test_cpsat_bound_above_a_float_plan_does_not_prove_it():
    """CP-SAT unproven with a bound above HiGHS' plan: that bound is its restricted model's, so HiGHS' plan is
    served FEASIBLE with the gap to HiGHS' own bound (it was called OPTIMAL on CP-SAT's bound)."""
    cp = _ev_109()

    def bound_only(res: BackendResult) -> BackendResult:
        return dataclasses.replace(res, status=Status.FEASIBLE)

    run = Recorder(milp=unproven, cpsat=bound_only)
    res, served_by = solve_portfolio(cp, 20, first="milp", runner=run)
    log = res.detail["portfolio"]
    assert [e["backend"] for e in log] == ["milp", "cpsat"]
    assert served_by == "milp" and log[1]["bound"] > res.objective  # the restriction shows
    assert res.status == Status.FEASIBLE and res.bound == log[0]["bound"] and 0.09 < res.gap < 0.11
    assert res.detail["cpsat_model_bound"] == log[1]["bound"]


def test_cpsat_proving_its_model_serves_optimal_with_an_honest_gap():
    """CP-SAT proves its own model's optimum (the tests' 1e-4 agreement rule): the better float plan of HiGHS is
    served OPTIMAL (`proof`: cpsat_model), but its bound and gap are the float problem's, never above the plan."""
    cp = _ev_109()
    run = Recorder(milp=unproven)
    res, served_by = solve_portfolio(cp, 20, first="milp", runner=run)
    log = res.detail["portfolio"]
    assert log[1]["backend"] == "cpsat" and log[1]["status"] == "OPTIMAL"
    assert res.status == Status.OPTIMAL and res.detail["proof"] == "cpsat_model"
    assert served_by == "milp" and res.detail["cpsat_model_bound"] > res.objective
    assert res.bound == log[0]["bound"] <= res.objective and 0.09 < res.gap < 0.11


def test_cpsat_first_unproven_highs_second_starts_from_scratch():
    cp = compile_problem(problem_from_dict(many_cycles_home()))
    run = Recorder(cpsat=unproven)
    res, served_by = solve_portfolio(cp, 20, first="cpsat", runner=run)
    assert [b for b, _ in run.calls] == ["cpsat", "milp"]
    assert [e["started_from_plan"] for e in res.detail["portfolio"]] == [False, False]  # HiGHS takes no start
    assert res.status == Status.OPTIMAL and served_by in ("cpsat", "milp")
    assert not evaluate(cp.problem, res.schedule, cp).violations


def test_infeasible_is_final():
    d = standard_home()
    for c in d["cycles"][:2]:  # two washer programs (75 + 117 min) inside one 3 h window
        c["earliest_start"] = c["earliest_start"].replace("06:00", "10:00")
        c["latest_end"] = c["latest_end"].replace("23:00", "13:00")
    cp = compile_problem(problem_from_dict(d))
    run = Recorder()
    res, _ = solve_portfolio(cp, 20, first="milp", runner=run)
    assert res.status == Status.INFEASIBLE and run.calls == [("milp", False)]
    # CP-SAT's rounded model (battery, EV) proves only itself infeasible: HiGHS has the last word
    run = Recorder()
    res, _ = solve_portfolio(cp, 20, first="cpsat", runner=run)
    assert res.status == Status.INFEASIBLE and run.calls == [("cpsat", False), ("milp", False)]
    assert res.detail["portfolio"][0]["proves"] == "its own model only"


def infeasible(res: BackendResult) -> BackendResult:
    """What CP-SAT's rounded model answered on held-out home `full-370` (a car that must leave full)."""
    return BackendResult(Status.INFEASIBLE, None, build_ms=res.build_ms, solve_ms=res.solve_ms)


@pytest.mark.parametrize("first", ["cpsat", "milp"])
def test_cpsat_infeasible_rounded_model_does_not_hide_a_plan(first):
    cp = compile_problem(problem_from_dict(standard_home()))
    run = Recorder(cpsat=infeasible, milp=unproven if first == "milp" else None)
    res, served_by = solve_portfolio(cp, 20, first=first, runner=run)
    assert served_by == "milp" and res.schedule is not None
    assert res.status == (Status.OPTIMAL if first == "cpsat" else Status.FEASIBLE)
    assert [e["backend"] for e in res.detail["portfolio"]] == ([first, "milp"] if first == "cpsat" else ["milp", "cpsat"])
    assert not evaluate(cp.problem, res.schedule, cp).violations


def test_real_time_out_of_the_first_slice():
    """A first slice far too short for the first backend: the other one gets its turn and proves."""
    d = many_cycles_home()
    cp = compile_problem(problem_from_dict(d))
    res, served_by = solve_portfolio(cp, 30, first="milp", first_slice_s=0.001)
    log = res.detail["portfolio"]
    assert log[0]["backend"] == "milp" and log[0]["status"] != "OPTIMAL"
    assert len(log) >= 2 and res.status == Status.OPTIMAL
    full = solve(problem_from_dict(d), backend="cpsat", time_limit_s=30)
    assert abs(res.objective - full.objective_value) <= 1e-4 * max(1.0, abs(full.objective_value))


def test_auto_reports_the_portfolio():
    d = standard_home()
    r = solve(problem_from_dict(d), backend="auto", time_limit_s=20)
    assert r.status == Status.OPTIMAL and r.backend.startswith("auto:")
    out = r.to_dict()
    assert out["stats"]["portfolio"] and out["stats"]["served_by"] in ("milp", "cpsat")
    cost, errs = check(d, out)
    assert not errs and abs(cost - r.cost_eur) < 1e-3


def test_auto_takes_no_single_backend_options():
    """A backend's own option (here CP-SAT's symmetry switch) is refused with auto instead of silently
    turning the portfolio into one backend."""
    with pytest.raises(ValueError, match="symmetry: options of one backend, not of auto"):
        solve(problem_from_dict(standard_home()), backend="auto", symmetry=False)


def test_highs_second_gets_the_plan_as_a_cutoff():
    """CP-SAT first and unproven: HiGHS gets its plan's objective (lowered by half the gap) as a cutoff, and
    the portfolio proves the best plan within the gap."""
    cp = compile_problem(problem_from_dict(many_cycles_home()))
    run = Recorder(cpsat=unproven)
    res, served_by = solve_portfolio(cp, 20, first="cpsat", runner=run)
    log = res.detail["portfolio"]
    first = log[0]["objective"]
    assert [e["backend"] for e in log] == ["cpsat", "milp"]
    assert log[1]["cutoff"] == pytest.approx(first - 2.5e-5 * abs(first), rel=1e-9)
    assert res.status == Status.OPTIMAL and res.objective <= first + 1e-9
    assert not evaluate(cp.problem, res.schedule, cp).violations


def test_a_cutoff_below_the_optimum_is_a_bound_not_infeasibility():
    """HiGHS with a cutoff it cannot beat finds no plan: that proves the bound, it does not make the home
    infeasible; with a cutoff above the optimum it finds the optimum."""
    from flexibility.optimizer.backends.milp import solve_milp

    cp = compile_problem(problem_from_dict(many_cycles_home()))
    opt = solve_milp(cp, 20)
    assert opt.status == Status.OPTIMAL
    below = opt.objective - 1e-3 * abs(opt.objective)
    r = solve_milp(cp, 20, cutoff=below)
    assert r.status == Status.NO_SOLUTION_IN_TIME and r.schedule is None and r.bound == below
    r = solve_milp(cp, 20, cutoff=opt.objective + 1e-3 * abs(opt.objective))
    assert r.status == Status.OPTIMAL and abs(r.objective - opt.objective) <= 1e-4 * max(1.0, abs(opt.objective))


@pytest.mark.parametrize("home, first, share", [
    ("thermal-237", "cpsat", "HEATER_SHARE"),  # on/off water heater over 576 slots: CP-SAT's short look first
    ("thermal-51", "cpsat", "HEATER_SHARE"),  # ... over 120 slots, with two cycles
    ("thermal-9", "milp", "FIRST_SHARE"),  # a modulating heater over 288 slots and a cycle: HiGHS, as before
    ("thermal-21", "milp", "HIGHS_SHARE"),  # an on/off heat pump: HiGHS keeps most of the budget
    ("battery-152", "milp", "HIGHS_SHARE"),  # ... and so next to a battery (sixth round)
    ("ev-223", "milp", "HIGHS_SHARE"),  # ... or an EV
    ("ev-271", "milp", "HIGHS_SHARE"),  # ... an on/off heat pump next to an EV
])
def test_backend_rule_for_heaters(home, first, share):
    """The order and first slice `auto` gives homes with heaters (README "Choosing a backend", fourth round)."""
    from flexibility.optimizer import portfolio
    from tests.factories.random_homes import random_home, strip_meta

    kind, seed = home.rsplit("-", 1)
    cp = compile_problem(problem_from_dict(strip_meta(random_home(int(seed), kind))))
    assert portfolio.choose_backend(cp) == first
    assert portfolio.first_share(cp, first) == getattr(portfolio, share)


def test_cycle_homes_search_and_second_round():
    """Homes whose only decisions are cycle starts: CP-SAT's default search even with exclusive import-or-export
    slots (`many_cycles_4k6-173`: quick restarts left it unproven), and under a capacity charge CP-SAT again as the
    second round, from the first plan with its peak cuts (`many_cycles_4k6-233`); with a battery, as before."""
    from flexibility.optimizer import portfolio
    from flexibility.optimizer.backends.cpsat import CpsatModel, peak_rounds, restart_search
    from tests.factories.random_homes import random_home, strip_meta

    homes = {h: compile_problem(problem_from_dict(strip_meta(random_home(int(h.rsplit("-", 1)[1]), h.rsplit("-", 1)[0]))))
             for h in ("many_cycles_4k6-173", "many_cycles_4k6-233", "many_cycles_4k6-149", "battery-122")}
    assert CpsatModel(homes["many_cycles_4k6-173"]).exclusive and not restart_search(homes["many_cycles_4k6-173"])
    assert restart_search(homes["battery-122"])
    assert peak_rounds(homes["many_cycles_4k6-233"]) and portfolio.second_backend(homes["many_cycles_4k6-233"], "cpsat") == "cpsat"
    assert not peak_rounds(homes["many_cycles_4k6-149"])  # ecologic: the capacity charge costs nothing there
    assert portfolio.second_backend(homes["many_cycles_4k6-149"], "cpsat") == "milp"
    assert portfolio.second_backend(homes["battery-122"], "milp") == "cpsat"


def test_second_cpsat_round_with_peak_cuts():
    """A cycle home under a capacity charge: CP-SAT first and unproven, then CP-SAT again below its plan with the
    plan's peak cuts, which proves the optimum HiGHS proves alone; with no first plan, HiGHS gets the second turn."""
    from flexibility.optimizer.backends.milp import solve_milp

    from .test_backends import _cycles_home

    d = _cycles_home([(0, 10), (4, 8)], [0.3] * 4 + [0.08] * 6 + [0.3] * 14)
    d["capacity_charges"] = [{"start": "2026-03-01T00:00:00+00:00", "end": "2026-04-01T00:00:00+00:00",
                              "price_eur_per_kw": 4.0, "window_min": 60}]
    cp = compile_problem(problem_from_dict(d))
    for fault, second in ((unproven, ("cpsat", True)), (nothing, ("milp", False))):
        calls = []

        def run(cp, backend, time_limit_s, threads, start):
            res = portfolio_runner(cp, backend, time_limit_s, threads, start)
            calls.append((backend, start is not None, res.detail.get("peak_cliques"), res.detail.get("improve_below")))
            return fault(res) if len(calls) == 1 else res

        res, _ = solve_portfolio(cp, 20, first="cpsat", runner=run)
        assert [c[:2] for c in calls] == [("cpsat", False), second]
        assert (calls[1][2] is not None) == (second[0] == "cpsat")  # the cuts were added
        assert (calls[1][3] is not None) == (second[0] == "cpsat")  # ... and only plans below the first one count
        opt = solve_milp(cp, 20)
        assert res.status == Status.OPTIMAL and abs(res.objective - opt.objective) <= 1e-4 * max(1.0, abs(opt.objective))


def test_cpsat_completes_the_hinted_plan():
    """CP-SAT turns another plan's Booleans into a hint for every variable by a solve of a copy of the model with
    those Booleans fixed: the hint is then a plan of the model with the same cycle starts, and the real solve is
    not restricted by it (it proves the optimum, well below the hinted baseline plan)."""
    from ortools.sat.python import cp_model

    from flexibility.optimizer.backends.cpsat import CpsatModel, solve_cpsat
    from flexibility.optimizer.backends.milp import solve_milp
    from flexibility.optimizer.baseline import baseline_schedule

    p = problem_from_dict(standard_home())
    cp = compile_problem(p)
    base = baseline_schedule(p, cp)
    mm = CpsatModel(cp, hint=base)
    assert mm.complete_hint(5.0, 1) in ("OPTIMAL", "FEASIBLE")
    hint = mm.md.proto.solution_hint
    assert sorted(hint.vars) == list(range(len(mm.md.proto.variables)))
    s = cp_model.CpSolver()
    s.parameters.fix_variables_to_their_hinted_value = True
    assert s.solve(mm.md) in (cp_model.OPTIMAL, cp_model.FEASIBLE)  # the completed hint is a plan of the model
    assert mm.extract(s).cycle_start_min == base.cycle_start_min
    res = solve_cpsat(cp, 20, hint=base)
    opt = solve_milp(cp, 20)
    assert res.detail["hint_completion"] in ("OPTIMAL", "FEASIBLE")
    assert res.status == Status.OPTIMAL and abs(res.objective - opt.objective) <= 1e-4 * max(1.0, abs(opt.objective))
    assert res.objective < evaluate(p, base, cp).objective - 1.0


def test_heat_pump_states_are_hinted():
    """An on/off heat pump's states are part of the hint CP-SAT gets from another plan (fixed while completing it)."""
    from flexibility.optimizer.backends.cpsat import CpsatModel
    from flexibility.optimizer.baseline import baseline_schedule
    from tests.factories.random_homes import random_home, strip_meta

    p = problem_from_dict(strip_meta(random_home(21, "thermal")))
    cp = compile_problem(p)
    plan = baseline_schedule(p, cp)  # the thermostat's plan
    assert any(not hp.modulating and any(plan.heat_pump_kw[hp.id]) for hp in p.heat_pumps)
    mm = CpsatModel(cp, hint=plan)
    hinted = dict(zip(mm.md.proto.solution_hint.vars, mm.md.proto.solution_hint.values))
    for hp in cp.problem.heat_pumps:
        on = [v.index for v, _ in mm.hp_p[hp.id][1]]
        assert [hinted.get(i) for i in on] == [int(kw > 1e-6) for kw in plan.heat_pump_kw[hp.id]]


@pytest.mark.parametrize("home, quick", [
    ("full-82", True),  # a battery next to an on/off water heater: a short look, then HiGHS (README "Sixth round")
    ("full-280", True),  # ... or next to a heat pump
    ("full-220", False),  # a battery, a modulating heater: the EV-step search with all the time
    ("ev-283", False),  # no battery
])
def test_ev_step_search_time(home, quick, monkeypatch):
    """How long the EV-step search and the staged MILP may run, and that the short look ends at the same optimum as
    the full search and as HiGHS with no search at all (the full model is rebuilt after the staged runs)."""
    from flexibility.optimizer.backends import milp
    from tests.factories.random_homes import random_home, strip_meta

    kind, seed = home.rsplit("-", 1)
    d = strip_meta(random_home(int(seed), kind))
    cp = compile_problem(problem_from_dict(d))
    assert any((em.levels_kw or em.semicontinuous) and em.slots for em in cp.evs)
    assert milp.ev_step_search_s(cp, 10.0) == (milp.QUICK_SEARCH_S if quick else 10.0)
    if not quick:
        return
    costs = []
    for look_s in (milp.QUICK_SEARCH_S, 0.0, 30.0):
        monkeypatch.setattr(milp, "QUICK_SEARCH_S", look_s)
        r = solve(problem_from_dict(d), backend="milp", time_limit_s=30.0)
        assert r.status == Status.OPTIMAL and not r.violations
        costs.append(r.objective_value)
    assert max(costs) - min(costs) <= 1e-4 * max(1.0, abs(min(costs))), costs


@pytest.mark.parametrize("home, presolve", [
    ("battery-38", False),  # a battery, no heat pump: HiGHS searches without its presolve
    ("full-4", False),  # a battery and an EV next to a modulating heater
    ("full-154", False),  # a V2G car next to a battery
    ("thermal-33", True),  # a heat pump: the presolve stays
    ("ev-115", True),  # a V2G car alone: the presolve stays
    ("appliances-0", True),  # nothing stored
])
def test_highs_presolve(home, presolve, monkeypatch):
    """Where HiGHS runs without its presolve, and that both ways end at the same optimum."""
    from flexibility.optimizer.backends import milp
    from tests.factories.random_homes import random_home, strip_meta

    kind, seed = home.rsplit("-", 1)
    d = strip_meta(random_home(int(seed), kind))
    assert milp.highs_presolve(compile_problem(problem_from_dict(d))) is presolve
    if presolve:
        return
    costs = []
    for rule in (milp.highs_presolve, lambda cp: True):
        monkeypatch.setattr(milp, "highs_presolve", rule)
        r = solve(problem_from_dict(d), backend="milp", time_limit_s=30.0)
        assert r.status == Status.OPTIMAL and not r.violations
        costs.append(r.objective_value)
    assert abs(costs[0] - costs[1]) <= 1e-4 * max(1.0, abs(costs[1])), costs
