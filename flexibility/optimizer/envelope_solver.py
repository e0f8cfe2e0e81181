"""Flexibility envelope: per slot, the lowest and highest net import the home can hold.

Method (why it is cheap): solve the full problem once (any backend), then
fix every discrete decision of that plan (cycle starts, EV steps, on/off
states) and keep the continuous rest (battery, EV power within its on-state,
PV curtailment, modulating heat) as one LP in HiGHS. For each slot and
direction only that slot's discrete choices are moved to the favourable
side (EV on at its top step, heater on, battery in charge mode, or all off),
and the LP is re-solved warm-started with objective
`cost -/+ W * net_import[t]`, W large, which gives the extreme value and the
cheapest way to reach it in one solve. 2 x slots warm LP re-solves instead of
2 x slots cold MILPs. The re-solves change only costs (and a few bounds), so the
previous basis stays primal feasible: they run HiGHS's primal simplex without presolve
(about 8 iterations each instead of 80), all slots of one direction in a row (each basis
is close to the next slot's). Every reported limit is achievable (it comes from a
feasible plan); moving whole appliance cycles into or out of a slot is not
explored, so the envelope is an inner (safe) approximation.
"""
from __future__ import annotations

import math
import time
from typing import Any, Optional, Union

import numpy as np

from .compile import compile_problem
from .envelope_storage import storage_envelope, storage_model
from .evaluate import evaluate
from .problem import Problem
from .result import Envelope, EnvelopeSlot, SolveResult, Status
from .solve import schedule_from_result, solve


def envelope(problem: Problem, backend: str = "auto", time_limit_s: float = 10.0,
             slots: Optional[list[int]] = None, plan: Union[SolveResult, dict[str, Any], None] = None,
             method: str = "auto") -> Envelope:
    """Per-slot baseline/min/max net import (kW) and the extra cost (EUR) of holding min or max.

    `plan`: the stored plan of the run this envelope belongs to (a `SolveResult` or its JSON,
    `SolveResult.to_dict()`); it is reused instead of solving again when it is a plan of this problem
    (the evaluator finds no violation), else the problem is solved. The envelope's status is the plan's:
    OPTIMAL only for a plan proven optimal; FEASIBLE for a plan with a gap, or when the time ran out
    before every slot was explored (the unexplored slots then hold only the plan's value).
    `method`: "auto" answers a home whose only free device is one battery by dynamic programming
    (`envelope_storage`, the same limits and costs without an LP per slot) and every other home by the LP
    re-solves; "lp" always
    takes the LP path (the reference the fast path is tested against).
    """
    if method not in ("auto", "lp"):
        raise ValueError(f"method: must be 'auto' or 'lp', not {method!r}")
    import highspy

    from .backends.milp_model import MilpModel

    t0 = time.perf_counter()
    g = problem.grid
    starts = [g.slot_start(t).isoformat() for t in range(g.slots)]
    cp = compile_problem(problem)
    reused = _stored_plan(problem, cp, plan)
    if reused is not None:
        schedule, plan_status, plan_gap, plan_backend, ev = reused
        source = "reused"
    else:
        solved = solve(problem, backend=backend, time_limit_s=time_limit_s * 0.5, relaxed=False)
        if solved.schedule is None or solved.evaluation is None or solved.status == Status.INFEASIBLE:
            return Envelope(solved.status, [], None, {"plan_ms": round((time.perf_counter() - t0) * 1000, 3),
                                                      "plan": "solved", "plan_status": solved.status.value},
                            explanation=solved.explanation)
        schedule, plan_status, plan_gap, plan_backend = (solved.schedule, solved.status, solved.stats.gap,
                                                         solved.backend)
        ev = solved.evaluation
        source = "solved"
    t_plan = time.perf_counter()
    net_plan = ev.net_import_kw
    mm = MilpModel(cp, symmetry=False)
    todo = list(range(cp.n) if slots is None else slots)
    stats = {"plan": source, "plan_backend": plan_backend, "plan_status": plan_status.value, "plan_gap": plan_gap,
             "plan_ms": round((t_plan - t0) * 1000, 3)}
    fast = _storage_envelope(mm, problem, net_plan, starts, todo) if method == "auto" else None
    if fast is not None:
        stats.update(method="storage_dp", envelope_ms=round((time.perf_counter() - t_plan) * 1000, 3),
                     total_ms=round((time.perf_counter() - t0) * 1000, 3), lp_solves=0)
        return Envelope(plan_status, fast, ev.cost_eur, stats)
    h = mm.m.to_highs(time_limit_s, relax=True)
    h.setOptionValue("mip_rel_gap", 1e-9)
    plan_val = {r[0]: r[2](schedule, net_plan) for r in mm.int_rules}
    # per device: slot -> [(col, value pushing net up, value pushing net down)]
    groups: dict[str, dict[int, list[tuple[int, Optional[float], Optional[float]]]]] = {}
    for col, slot, _, up, down, key in mm.int_rules:
        v = plan_val[col]
        h.changeColBounds(col, v, v)
        if slot is not None:
            groups.setdefault(key, {}).setdefault(slot, []).append((col, up, down))
    dt = cp.dt_h
    pi = problem.site.import_price_eur_per_kwh
    pe = problem.site.export_price_eur_per_kwh
    base_cost = list(mm.m.cost)
    gr = problem.grid_request
    pen = gr.penalty_eur_per_kwh if gr is not None and gr.penalty_eur_per_kwh is not None else 0.0
    W = 1e3 * (max(abs(w) for w in cp.w_imp + cp.w_exp) + pen + 1e-3) * dt

    # The energy cost of a solution: import minus export, each priced per slot (one dot product).
    imp_cols = np.asarray(mm.imp, dtype=np.int64)
    imp_price = np.asarray(pi[:cp.n], dtype=float) * dt
    exp_slots = [t for t in range(cp.n) if mm.exp[t] is not None]
    exp_cols = np.asarray([mm.exp[t] for t in exp_slots], dtype=np.int64)
    exp_price = np.asarray([pe[t] for t in exp_slots], dtype=float) * dt

    def econ_cost(x) -> float:
        x = np.asarray(x)
        return float(imp_price @ x[imp_cols] - (exp_price @ x[exp_cols] if len(exp_cols) else 0.0))

    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return Envelope(Status.NO_SOLUTION_IN_TIME, [], ev.cost_eur, {"note": "fixed-plan LP not solvable"},
                        explanation=["The plan's continuous part could not be re-solved"])
    x0 = h.getSolution().col_value
    plan_cost = econ_cost(x0)
    # From here each solve starts from the previous basis, which a cost change leaves primal feasible.
    h.setOptionValue("presolve", "off")
    h.setOptionValue("simplex_strategy", 4)  # primal simplex
    out: list[EnvelopeSlot] = []
    deadline = t0 + time_limit_s
    solves = 0
    status = plan_status
    found: dict[tuple[int, float], tuple[float, float]] = {}
    for sign, t in [(sign, t) for sign in (1.0, -1.0) for t in todo]:  # one direction at a time
        imp, exp = mm.imp[t], mm.exp[t]
        if time.perf_counter() > deadline:
            status = Status.FEASIBLE
            found[t, sign] = (net_plan[t], 0.0)
            continue
        h.changeColCost(imp, base_cost[imp] - sign * W)
        if exp is not None:
            h.changeColCost(exp, base_cost[exp] + sign * W)
        best = None
        for fixes in _attempts(groups, plan_val, t, sign):
            for col, v in fixes:
                h.changeColBounds(col, v, v)
            h.setOptionValue("time_limit", max(0.05, deadline - time.perf_counter()))
            h.run()
            solves += 1
            if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                x = h.getSolution().col_value
                net = x[imp] - (x[exp] if exp is not None else 0.0)
                cand = (net, econ_cost(x) - plan_cost)
                if best is None or sign * cand[0] > sign * best[0] + 1e-9 or (
                        abs(cand[0] - best[0]) <= 1e-9 and cand[1] < best[1]):
                    best = cand
            for col, _ in fixes:
                h.changeColBounds(col, plan_val[col], plan_val[col])
        h.changeColCost(imp, base_cost[imp])
        if exp is not None:
            h.changeColCost(exp, base_cost[exp])
        found[t, sign] = best if best is not None else (net_plan[t], 0.0)
    for t in todo:
        out.append(_slot(starts[t], net_plan[t], found[t, -1.0], found[t, 1.0]))
    stats.update(method="lp", envelope_ms=round((time.perf_counter() - t_plan) * 1000, 3),
                 total_ms=round((time.perf_counter() - t0) * 1000, 3), lp_solves=solves)
    return Envelope(status, out, ev.cost_eur, stats)


def _slot(start: str, plan_kw: float, lo: tuple[float, float], hi: tuple[float, float]) -> EnvelopeSlot:
    """One slot from its (net kW, extra energy cost EUR) at the low and the high limit."""
    # round inward to 1 W so that pinning the value is feasible
    hi_kw = max(plan_kw, math.floor(hi[0] * 1000 + 1e-6) / 1000)
    lo_kw = min(plan_kw, math.ceil(lo[0] * 1000 - 1e-6) / 1000)
    return EnvelopeSlot(start, plan_kw, lo_kw, hi_kw, max(0.0, lo[1]), max(0.0, hi[1]))


def _storage_envelope(mm, problem: Problem, net_plan: list[float], starts: list[str],
                      todo: list[int]) -> Optional[list[EnvelopeSlot]]:
    """The envelope by `envelope_storage` when the model is of its class (None: take the LP path)."""
    model = storage_model(mm, problem)
    if model is None:
        return None
    answer = storage_envelope(model[0], model[1], mm.cp.dt_h)
    if answer is None:
        return None
    limits, plan_eur = answer
    return [_slot(starts[t], net_plan[t], (limits[t][2], limits[t][3] - plan_eur),
                  (limits[t][0], limits[t][1] - plan_eur)) for t in todo]


def _stored_plan(problem: Problem, cp, plan: Union[SolveResult, dict[str, Any], None]):
    """(schedule, status, gap, backend, evaluation) of a stored plan that fits `problem`, else None."""
    if plan is None:
        return None
    if isinstance(plan, SolveResult):
        if plan.schedule is None or plan.status not in (Status.OPTIMAL, Status.FEASIBLE):
            return None
        schedule, status, gap, backend = plan.schedule, plan.status, plan.stats.gap, plan.backend
    else:
        if plan.get("status") not in (Status.OPTIMAL.value, Status.FEASIBLE.value) or not plan.get("devices"):
            return None
        try:
            schedule = schedule_from_result(problem, plan)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        status, gap, backend = Status(plan["status"]), (plan.get("stats") or {}).get("gap"), plan.get("backend")
    ev = evaluate(problem, schedule, cp)
    if ev.violations:
        return None  # a plan of another problem (stale, or its rounding breaks a limit): solve again
    return schedule, status, gap, backend, ev


def _state(cells: list[tuple[int, Optional[float], Optional[float]]], plan_val: dict[int, float], up: bool) -> bool:
    """Is the plan at this slot already where `up` (or down) would put it?"""
    return all((u if up else d) is None or plan_val[c] == (u if up else d) for c, u, d in cells)


def _attempts(groups, plan_val, t: int, sign: float):
    """Discrete moves to try at slot t: the plan itself, then per device: flip t to the favourable
    side, alone or compensated by the opposite flip at the nearest earlier/later slot."""
    up = sign > 0
    yield []
    for slots in groups.values():
        cells = slots.get(t)
        if not cells or _state(cells, plan_val, up):
            continue
        flip = [(c, plan_val[c] if (u if up else d) is None else (u if up else d)) for c, u, d in cells]
        yield flip
        later = [s for s in slots if s > t and not _state(slots[s], plan_val, not up)]
        earlier = [s for s in slots if s < t and not _state(slots[s], plan_val, not up)]
        for s in ([min(later)] if later else []) + ([max(earlier)] if earlier else []):
            comp = [(c, plan_val[c] if (d if up else u) is None else (d if up else u)) for c, u, d in slots[s]]
            yield flip + comp
