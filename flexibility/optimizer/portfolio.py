"""Backend choice and the `auto` portfolio: both backends share one time budget.

Neither backend is robust alone on realistic homes (README "Choosing a backend": CP-SAT needs seconds
to close the last 1e-4 on continuous storage, HiGHS needs seconds on tightly packed start times), so
`auto` runs the backend the rule picks for a first slice of the budget and, if that does not prove
optimality, the other one for the rest (CP-SAT gets the best plan so far as a hint; HiGHS starts from
scratch). No third round: neither backend resumes a search, so going back to the first one only
restarted it with a little more time than it already failed in. The plan served is the best plan either found (re-evaluated
in floats), its proven gap is measured against the best bound of the float problem either proved: HiGHS' bound, and
CP-SAT's only where its model is exact (`cpsat_restricts`); elsewhere CP-SAT's bound is its restricted model's and
proves only that model's optimum (README "The portfolio's gap").
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .backends.common import BackendResult, rel_gap
from .compile import Compiled, has_battery_or_ev, stores_energy
from .evaluate import evaluate
from .result import Schedule, Status

BACKENDS = ("auto", "cpsat", "milp", "milp-pulp")
GAP = 5e-5  # both backends' relative gap limit (README "Optimality")
FIRST_SHARE = 0.3  # of the budget for the first backend before the other one gets its turn
STARTS_ONLY_SHARE = 0.7  # the same when CP-SAT goes first on a home whose only decisions are start times
HEATER_SHARE = 0.05  # ... and when CP-SAT goes first on a home with an on/off heater (and no battery or EV)
HIGHS_SHARE = 0.8  # HiGHS first on a home with a battery, an EV or an on/off heat pump (see highs_keeps)
MIN_FIRST_SLICE_S = 0.2

Runner = Callable[[Compiled, str, float, int, Optional[Schedule]], BackendResult]


def choose_backend(cp: Compiled) -> str:
    """The backend `auto` tries first, learned from the random households (README "Choosing a backend").

    HiGHS when anything continuous and stored is in the home (a battery, an EV of any kind: its
    LP bound and the LP search win), a heat pump, or a modulating heater over a long horizon;
    CP-SAT when the decisions are start times, or start times and on/off water heater states (for a
    short first slice: `first_share`; over more than 100 slots HiGHS first was 0.6-1.1 s where CP-SAT
    proves in 0.05-0.2 s, `thermal-51` / `-237` / `-147`, README "Choosing a backend").
    """
    p = cp.problem
    discrete_cycles = sum(len(cm.options) for cm in cp.cycles if not cm.fixed)
    on_off_heater = any(not th.modulating for th in p.thermal_storages)
    if discrete_cycles == 0 and not on_off_heater and not any(
            em.slots and (em.levels_kw is not None or em.semicontinuous) for em in cp.evs):
        return "milp"  # a pure LP: HiGHS simplex, a few ms
    if p.heat_pumps:  # issue 14 item 5: CP-SAT's micro-kelvin building model proves slowly, HiGHS in ms
        return "milp"
    if has_battery_or_ev(cp):
        return "milp"
    if p.thermal_storages and cp.n > 100 and not on_off_heater:
        return "milp"
    return "cpsat"


def first_share(cp: Compiled, first: str) -> float:
    """Share of the budget for the first backend (README "Choosing a backend").

    On homes whose only decisions are start times (no battery, EV or heater) CP-SAT is the one that
    proves, HiGHS rarely rescues it (1 of 100 such homes in the 300-home run, `appliances-246`) while
    CP-SAT needed more than 30 % on several 8-cycle homes under load: it keeps 70 % there. On heater
    homes without battery or EV the two are complementary (each proves in 14-480 ms where the other
    needs seconds or fails), so CP-SAT only gets a short first look (5 %).
    """
    p = cp.problem
    if first == "milp" and highs_keeps(cp):
        return HIGHS_SHARE
    if first != "cpsat" or has_battery_or_ev(cp):
        return FIRST_SHARE
    return HEATER_SHARE if p.thermal_storages else STARTS_ONLY_SHARE


def highs_keeps(cp: Compiled) -> bool:
    """Whether HiGHS keeps most of the budget: a home with a battery, an EV or an on/off heat pump. Of the 15
    battery / EV homes HiGHS' old 3 s slice left unproven on the idle machine (main e3d54eb), CP-SAT's 7 s proved 2
    (`full-118`, `ev-223`), while HiGHS alone proves 7 others in 3-7.3 s (`full-178`, `-214`, `-52`, `-262`,
    `-250`, `battery-122`, `battery-8`) and `ev-223` in 3.4 s (README "Sixth round"). Heat-pump homes without
    battery or EV: HiGHS alone proves `thermal-21` / `-225` in 4 / 3 s of CPU, which CP-SAT never did in the other
    7 s (README "Choosing a backend")."""
    return has_battery_or_ev(cp) or any(not hp.modulating for hp in cp.problem.heat_pumps)


def cpsat_restricts(cp: Compiled) -> bool:
    """Whether CP-SAT's model is a strict restriction of the float problem: stored energy (battery, heater, EV,
    V2G) and the heat pump's temperatures move by rounded coefficients (charging floored, draws ceiled) and
    continuous powers in whole units, so its optimum can lie above the float one and its bound bounds only its
    own model (README "CP-SAT scaling": up to 4.6e-5 of the objective measured, `battery-254`). Cycle starts
    are exact. (Here, not in cpsat.py: a HiGHS-only solve never imports OR-Tools.)"""
    return stores_energy(cp)


def second_backend(cp: Compiled, first: str) -> str:
    """The other backend; CP-SAT again, from its own plan and that plan's peak cuts, on a home whose only decisions
    are cycle starts under a capacity charge (`cpsat.peak_rounds`; README "Many cycles")."""
    if first == "cpsat":
        from .backends.cpsat import peak_rounds

        return "cpsat" if peak_rounds(cp) else "milp"
    return "cpsat"


def run_backend(cp: Compiled, backend: str, time_limit_s: float, threads: int = 1,
                start: Optional[Schedule] = None, **kw: Any) -> BackendResult:
    """One backend on the compiled problem; `start` is another plan to begin from (hint / incumbent).

    A V2G car that may not export covers the home's consumption, and charging a battery (or a car that may export)
    is consumption, their discharge generation: a plan that charges and discharges one of them at once passes the
    car's energy on to the grid (held-out home `full-898`). The models allow that outside `exclusive_battery_slots`
    (a binary per slot there), so where a plan did it, every slot such a car is plugged in becomes exclusive (in
    `cp`, so for the backends after this one too) and the backend runs again with the time left (slot by slot, the
    next plan did it one slot further). Exact, and binaries only in homes whose plans needed them."""
    t0 = time.perf_counter()
    res = _run_backend(cp, backend, time_limit_s, threads, start, **kw)
    left = time_limit_s - (time.perf_counter() - t0)
    if left >= 0.05 and _v2g_passed_on(cp, res.schedule):
        cp.exclusive_battery_slots |= {t for em in cp.evs if em.ev.v2g and not em.ev.export_allowed for t in em.slots}
        res = _run_backend(cp, backend, left, threads, None, **kw)
        res.detail["v2g_exclusive"] = True
    return res


def _v2g_passed_on(cp: Compiled, sch: Optional[Schedule]) -> bool:
    """Whether a car that may not export fed the grid in the plan (the evaluator's `v2g_export`) in a slot not yet
    exclusive, i.e. through a battery or an exporting car charging and discharging at once."""
    p = cp.problem
    if sch is None or not any(e.v2g and not e.export_allowed for e in p.ev_sessions):
        return False
    return any(v.requirement == "v2g_export" and v.slot not in cp.exclusive_battery_slots
               for v in evaluate(p, sch, cp).violations)


def _run_backend(cp: Compiled, backend: str, time_limit_s: float, threads: int = 1,
                 start: Optional[Schedule] = None, **kw: Any) -> BackendResult:
    if backend == "cpsat":
        from .backends.cpsat import solve_cpsat

        return solve_cpsat(cp, time_limit_s, workers=threads, hint=start, **kw)
    if backend in ("milp", "milp-pulp"):
        from .backends.milp import solve_milp

        if start is not None:
            raise ValueError("milp: takes no start plan, only a cutoff (see portfolio_runner)")
        return solve_milp(cp, time_limit_s, threads=threads, via_pulp=backend == "milp-pulp", **kw)
    raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}")


def portfolio_runner(cp: Compiled, backend: str, time_limit_s: float, threads: int,
                     start: Optional[Schedule]) -> BackendResult:
    """CP-SAT takes the other backend's plan as a hint. HiGHS 1.16 given a start solution with `setSolution`
    can report an objective and bound that do not belong to the solution it returns (README "Choosing a
    backend"), so HiGHS takes only the plan's objective, lowered by half the gap, as a cutoff: it searches
    for something better and, finding nothing, proves the plan within the gap."""
    if start is None:
        return run_backend(cp, backend, time_limit_s, threads)
    if backend == "cpsat":
        from .backends.cpsat import peak_rounds

        if not peak_rounds(cp):
            return run_backend(cp, backend, time_limit_s, threads, start)
        ev = evaluate(cp.problem, start, cp)  # the plan's objective gives CP-SAT its peak cuts
        return run_backend(cp, backend, time_limit_s, threads, start, cutoff=ev.objective if ev.feasible else None,
                           improve=True)
    ev = evaluate(cp.problem, start, cp)
    if not ev.feasible:  # only a plan that keeps every requirement bounds the optimum
        return run_backend(cp, backend, time_limit_s, threads)
    return run_backend(cp, backend, time_limit_s, threads, cutoff=ev.objective - 0.5 * GAP * abs(ev.objective))


@dataclass
class _Plan:
    backend: str
    result: BackendResult
    objective: float  # evaluated in floats (what the plans are compared on)
    feasible: bool


def solve_portfolio(cp: Compiled, time_limit_s: float, threads: int = 1, *, first: Optional[str] = None,
                    first_slice_s: Optional[float] = None, runner: Runner = portfolio_runner) -> tuple[BackendResult, str]:
    """Best plan of both backends within `time_limit_s`; returns it and the backend that found it.

    Rounds: the first backend for `first_slice_s` (default: `first_share` of the budget, at least
    MIN_FIRST_SLICE_S), the other one for the rest, starting from the first one's plan. It stops as soon as a round
    proves the home infeasible (HiGHS, or CP-SAT where its model is exact: `cpsat_restricts`), or the best plan is
    within GAP of the best bound either backend proved.
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    a = first or choose_backend(cp)
    b = second_backend(cp, a)
    slice0 = first_slice_s if first_slice_s is not None else max(MIN_FIRST_SLICE_S, first_share(cp, a) * time_limit_s)
    rounds = [(a, min(slice0, time_limit_s)), (b, 1.0)]  # round 0 in seconds, round 1: share of what is left
    best: Optional[_Plan] = None
    bound = -float("inf")  # of the float problem
    restricted = -float("inf")  # CP-SAT's bound of its own model, where that model restricts the float problem
    restricted_model = cpsat_restricts(cp)
    proof = None
    log: list[dict[str, Any]] = []
    status_of_proof = None
    for k, (backend, share) in enumerate(rounds):
        left = deadline - time.perf_counter()
        if k > 0 and left < 0.05:
            break
        if k > 0 and backend == a and best is None:  # no plan to cut from: the other backend after all
            backend = "cpsat" if a == "milp" else "milp"
        budget = share if k == 0 else (left if k == len(rounds) - 1 else share * left)
        t = time.perf_counter()
        res = runner(cp, backend, max(0.05, budget), threads, best.result.schedule if best else None)
        entry = {"backend": backend, "status": res.status.value, "ms": round((time.perf_counter() - t) * 1000, 1),
                 "budget_s": round(budget, 3), "objective": res.objective, "bound": res.bound,
                 "started_from_plan": best is not None and backend == "cpsat",
                 "cutoff": res.detail.get("cutoff"), "hint_completion": res.detail.get("hint_completion")}
        log.append(entry)
        if res.status == Status.INFEASIBLE and backend == "cpsat" and restricted_model:
            # its rounded model has no plan, which says nothing of the float problem (a car that must leave full
            # needs a room of whole units: held-out home `full-370` before cpsat.EV_ROOM_SLACK_KWH); HiGHS decides
            entry["proves"] = "its own model only"
            continue
        if res.status == Status.INFEASIBLE:
            res.detail["portfolio"] = log
            return res, backend
        if res.bound is not None and backend == "cpsat" and restricted_model:
            restricted = max(restricted, res.bound)
        elif res.bound is not None:
            bound = max(bound, res.bound)
        if res.schedule is not None:
            ev = evaluate(cp.problem, res.schedule, cp)
            plan = _Plan(backend, res, ev.objective, ev.feasible)
            if best is None or (plan.feasible, -plan.objective) > (best.feasible, -best.objective):
                best = plan
        # A round's OPTIMAL proves its own plan, and the best plan is at least as good: for CP-SAT on a restricting
        # home that is the optimum of its model (the agreement rule's 1e-4), so `proof` says which one it was.
        if best is not None and best.feasible and (rel_gap(best.objective, bound) or 1.0) <= GAP:
            status_of_proof, proof = Status.OPTIMAL, "float_bound"
            break
        if best is not None and best.feasible and res.status == Status.OPTIMAL:
            status_of_proof = Status.OPTIMAL
            proof = "cpsat_model" if backend == "cpsat" and restricted_model else "float_bound"
            break
    if best is None:
        last = BackendResult(Status.NO_SOLUTION_IN_TIME, None, detail={"portfolio": log})
        return last, a
    out = best.result
    has_bound = bound > -float("inf")
    gap = rel_gap(best.objective, bound) if has_bound else None
    if out.status == Status.OPTIMAL and out.gap is not None and not (best.backend == "cpsat" and restricted_model):
        gap = out.gap if gap is None else min(gap, out.gap)
    extra: dict[str, Any] = {"portfolio": log, "served_by": best.backend, "proof": proof}
    if restricted > -float("inf"):
        extra.update(cpsat_model_bound=restricted, cpsat_model_gap=rel_gap(best.objective, restricted))
    served = BackendResult(status_of_proof or Status.FEASIBLE, out.schedule, best.objective,
                           bound if has_bound else None, gap, out.build_ms, out.solve_ms,
                           detail=dict(out.detail, **extra))
    return served, best.backend
