"""MILP backend: builds the model (`milp_model.py`) and solves it with HiGHS (CBC fallback via PuLP).

With EV current steps or on/off EVs the LP search of `milp_search.py` runs first,
then the staged MILP (README "EV current steps"), for as long as `ev_step_search_s` says.
"""
from __future__ import annotations

import math
import time
from typing import Optional

from ..compile import Compiled, has_battery_or_ev
from ..result import Status
from .common import BackendResult, rel_gap
from .linear import pulp_solver
from .milp_model import MilpModel
from .milp_search import lp_branch_and_bound, stepped_start

LP_SEARCH_SHARE = 0.6  # of the time left, for the LP branch and bound before the staged MILP

QUICK_SEARCH_S = 0.3  # see ev_step_search_s


def solve_milp(cp: Compiled, time_limit_s: float = 5.0, *, elastic: bool = False, via_pulp: bool = False,
               threads: int = 1, mip_rel_gap: float = 5e-5, symmetry: bool = True,
               lp_search: bool = True, cutoff: Optional[float] = None) -> BackendResult:
    """Solve with HiGHS (PuLP/CBC without highspy). With EV current steps: first the LP branch and
    bound (`lp_search`), then the staged MILP (README "EV current steps").

    `cutoff`: an objective some plan already reaches (the portfolio's incumbent, a little lowered). HiGHS
    then prunes every node whose bound is above it (`objective_bound`); finishing without a plan proves that
    no plan is below it, which comes back as `NO_SOLUTION_IN_TIME` with `bound = cutoff` (not `INFEASIBLE`:
    the cutoff made it so). Used on the plain MIP path only (not with the EV-step search)."""
    t0 = time.perf_counter()
    try:
        import highspy  # noqa: F401
        have_highs = True
    except ImportError:  # pragma: no cover - exercised only without highspy
        have_highs = False
    relaxed = None
    search_end = t0 + ev_step_search_s(cp, time_limit_s)
    quick = search_end < t0 + time_limit_s  # only a short look: HiGHS' own search after it, from scratch
    if have_highs and lp_search and not via_pulp and not elastic and any(
            (em.levels_kw or em.semicontinuous) and em.slots for em in cp.evs):
        relaxed = MilpModel(cp, symmetry=symmetry, relax_ev_steps=True)
        hr = relaxed.m.to_highs(max(0.05, time_limit_s - (time.perf_counter() - t0)), threads=threads,
                                mip_rel_gap=mip_rel_gap)
        build_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        now = time.perf_counter()  # the search gets 60 % of what is left (it stops early when it cannot
        # close a node by rounding, so time runs out only on a slow but working search, e.g. the stress
        # home in a 2 s portfolio slice on a loaded machine); the staged MILP the rest
        res = lp_branch_and_bound(cp, relaxed, hr, now + LP_SEARCH_SHARE * max(0.0, search_end - now),
                                  mip_rel_gap)
        if res is not None:
            res.build_ms, res.solve_ms = build_ms, (time.perf_counter() - t1) * 1000
            res.detail.update(columns=relaxed.m.num_cols, rows=relaxed.m.num_rows,
                              integers=sum(relaxed.m.integer), solver="highs")
            return res
        relaxed = (relaxed, hr)
    mm = MilpModel(cp, elastic=elastic, symmetry=symmetry and not elastic)
    detail = {"columns": mm.m.num_cols, "rows": mm.m.num_rows, "integers": sum(mm.m.integer)}
    if via_pulp or not have_highs:
        return _solve_pulp(mm, time_limit_s, threads, mip_rel_gap, t0, detail, have_highs)
    left = max(0.05, time_limit_s - (time.perf_counter() - t0))
    h = mm.m.to_highs(left, threads=threads, mip_rel_gap=mip_rel_gap)
    build_ms = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    start = None
    if mm.ev_steps and not elastic and time.perf_counter() < search_end:
        start = stepped_start(cp, mm, h, search_end, threads, mip_rel_gap, relaxed)
    if start is not None and start.status == Status.OPTIMAL:
        res = start
    else:
        if quick:
            relaxed = None
            if start is not None:  # the staged runs leave HiGHS slower on the full model (full-172: 3x)
                start = None
                h = mm.m.to_highs(max(0.05, t0 + time_limit_s - time.perf_counter()), threads=threads,
                                  mip_rel_gap=mip_rel_gap)
        if start is not None:
            import highspy

            sol = highspy.HighsSolution()
            sol.col_value = start.detail.pop("x")
            sol.value_valid = True
            h.setSolution(sol)
            detail["start_objective"] = start.objective
        h.setOptionValue("time_limit", max(0.05, t0 + time_limit_s - time.perf_counter()))
        if not elastic and not highs_presolve(cp):
            h.setOptionValue("presolve", "off")
        if start is None and cutoff is not None and relaxed is None and mm.m.has_integers:
            h.setOptionValue("objective_bound", cutoff)
        else:
            cutoff = None
        h.run()
        res = read_highs(mm, h, cutoff)
        if cutoff is not None:
            res.detail["cutoff"] = cutoff
    solve_ms = (time.perf_counter() - t1) * 1000
    res.build_ms, res.solve_ms = build_ms, solve_ms
    res.detail.update(detail)
    res.detail["solver"] = "highs"
    return res


def ev_step_search_s(cp: Compiled, time_limit_s: float) -> float:
    """Seconds for the LP search and the staged MILP of EV steps / on/off EVs before HiGHS' own search: all of
    them, but a short look (`QUICK_SEARCH_S`) in a home with a battery next to an on/off water heater or a heat
    pump. There the search mostly gives up at once (other binaries than cycle starts) and the staged MILP's
    relaxed stage is about as hard as the whole model (`full-172`: 1.5 s against 0.45 s for HiGHS alone); yet the
    demo household, of that kind, is proven by the staged path in 30-90 ms against 160-510 ms (README "Random
    households", sixth round)."""
    p = cp.problem
    if p.batteries and (any(not th.modulating for th in p.thermal_storages) or p.heat_pumps):
        return min(time_limit_s, QUICK_SEARCH_S)
    return time_limit_s


def highs_presolve(cp: Compiled) -> bool:
    """Whether HiGHS runs its presolve: not on a home with a battery or an EV but no heat pump, unless its only storage
    is a V2G car. There the presolved model searched slower (of 60 homes HiGHS solves in over 150 ms, the 25 without a
    V2G car: 32.1 -> 25.4 s in all at a 10 s limit, idle; `battery-122` 4.5 -> 1.5 s, `battery-38` 0.83 -> 0.16 s; the
    17 with a V2G car next to a battery: 9.9 -> 8.0 s and `full-250` proven in 9.5 s, `full-52` 2.1 -> 1.1 s, `full-154`
    1.8 -> 0.9 s; worse `full-286` 0.78 -> 1.12 s, `full-118` 0.37 -> 0.52 s). With a heat pump, or a V2G car alone,
    it needs the presolve (`thermal-33`, `ev-115`: proven in 4.1 / 0.55 s with it, not in 10 s without; README
    "Random households", seventh round)."""
    p = cp.problem
    v2g_alone = not p.batteries and any(ev.v2g for ev in p.ev_sessions)
    return not has_battery_or_ev(cp) or bool(p.heat_pumps) or v2g_alone


def read_highs(mm: MilpModel, h, cutoff: Optional[float] = None) -> BackendResult:
    import highspy

    ms = h.getModelStatus()
    info = h.getInfo()
    has_sol = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    S = highspy.HighsModelStatus
    if cutoff is not None and not has_sol and ms in (S.kInfeasible, S.kUnboundedOrInfeasible, S.kObjectiveBound):
        # every plan costs at least the cutoff: a proof for the plan the cutoff came from, not infeasibility
        return BackendResult(Status.NO_SOLUTION_IN_TIME, None, bound=cutoff,
                             detail={"highs_status": h.modelStatusToString(ms), "cutoff": cutoff,
                                     "proof": "no plan below the cutoff"})
    if ms in (S.kInfeasible,) or (ms == S.kUnboundedOrInfeasible and not has_sol):
        return BackendResult(Status.INFEASIBLE, None)
    if not has_sol:
        # a time-out before any plan still proved a bound (the portfolio compares it with the other's plan)
        bound = info.mip_dual_bound if mm.m.has_integers and math.isfinite(info.mip_dual_bound) else None
        return BackendResult(Status.NO_SOLUTION_IN_TIME, None, bound=bound,
                             detail={"highs_status": h.modelStatusToString(ms)})
    x = h.getSolution().col_value
    obj = info.objective_function_value
    if mm.m.has_integers:
        bound = info.mip_dual_bound
        gap = rel_gap(obj, bound)
    else:
        bound, gap = obj, 0.0
    status = Status.OPTIMAL if ms == S.kOptimal else Status.FEASIBLE
    detail = {"highs_status": h.modelStatusToString(ms), "nodes": int(info.mip_node_count)}
    own = sum(c * v for c, v in zip(mm.m.cost, x)) + mm.m.offset
    if abs(own - obj) > 1e-7 * max(1.0, abs(own)):
        # HiGHS 1.16 after `setSolution` can report an objective (and so a bound and a proof) that is not
        # the objective of the solution it returns: keep the plan, trust neither its value nor its bound
        status, obj, bound, gap = Status.FEASIBLE, own, None, None
        detail["highs_objective_mismatch"] = True
    res = BackendResult(status, mm.extract(x), obj, bound, gap, detail=detail)
    if mm.elastic:
        res.violations = mm.violations(x)
    return res


def _solve_pulp(mm: MilpModel, time_limit_s: float, threads: int, gap: float, t0: float, detail: dict,
                have_highs: bool) -> BackendResult:
    import pulp

    prob, xs = mm.m.to_pulp()
    build_ms = (time.perf_counter() - t0) * 1000
    solver = pulp_solver(max(0.05, time_limit_s - build_ms / 1000), threads, "highs" if have_highs else "cbc", gap)
    t1 = time.perf_counter()
    prob.solve(solver)
    solve_ms = (time.perf_counter() - t1) * 1000
    st = pulp.LpStatus[prob.status]
    detail = dict(detail, solver=type(solver).__name__, pulp_status=st)
    vals = [x.varValue for x in xs]
    if st == "Infeasible":
        return BackendResult(Status.INFEASIBLE, None, build_ms=build_ms, solve_ms=solve_ms, detail=detail)
    if any(v is None for v in vals) or st not in ("Optimal", "Not Solved"):
        return BackendResult(Status.NO_SOLUTION_IN_TIME, None, build_ms=build_ms, solve_ms=solve_ms, detail=detail)
    obj = pulp.value(prob.objective)
    status = Status.OPTIMAL if st == "Optimal" and prob.sol_status == 1 else Status.FEASIBLE
    res = BackendResult(status, mm.extract(vals), obj, None, 0.0 if status == Status.OPTIMAL else None,
                        build_ms=build_ms, solve_ms=solve_ms, detail=detail)
    if mm.elastic:
        res.violations = mm.violations(vals)
    return res
