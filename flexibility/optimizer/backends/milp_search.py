"""MILP search for EV current steps and on/off EVs: a hand-written LP branch and bound over cycle starts,
step rounding by dynamic programme, and the staged MILP (README "EV current steps").

Everything here works on a `MilpModel` already built and passed to HiGHS; each function leaves
the HiGHS model's bounds and integrality as it found them.
"""
from __future__ import annotations

import heapq
import math
import time
from typing import Optional

from ..compile import Compiled, capacity_ev_peak_floor, capacity_windows, step_grid
from ..result import Schedule, Status
from .common import BackendResult, rel_gap
from .milp_model import MilpModel

STAGE_SHARE = 0.5  # of the time left, for the EV-step relaxation's MIP in `stepped_start`

def lp_branch_and_bound(cp: Compiled, rm: MilpModel, h, deadline: float, gap: float,
                         max_lps: int = 400) -> Optional[BackendResult]:
    """Exact small search for homes whose only integers are cycle starts and EV steps or on/off EVs
    (README "EV current steps").

    Works on `rm`, the model with EV steps relaxed to [0, top step] (plus the rounded energy
    cut; the LP relaxation of the step binaries is that same hull), as an LP, warm-started
    dual simplex per node:
    * branching on a cycle whose LP start is split: "starts up to s" / "starts after s", s
      between the LP's used starts (GUB branching, balanced for a time-indexed cycle);
    * reduced-cost fixing: a start whose reduced cost lifts the node's LP value above the
      incumbent (less the gap) is dropped from the node's subtree;
    * best first (lowest parent LP value), after a first plan from the root LP's most used starts;
    * a node whose cycle starts are integral becomes a complete plan through `_rounded_steps`
      plus one LP with everything fixed (for an on/off EV: its slots below the minimum power
      are tried all off, then all on at [min, max]); if that plan is within `gap` of the node's LP value
      the node is closed, otherwise the EV steps would need a search and None is returned.
    Nodes within `gap` of the incumbent are pruned, so a returned plan is proven within `gap`
    of the optimum. None also when the LP budget or the deadline runs out (the caller falls
    back to the staged MILP); the model is left as it was found.
    """
    import highspy
    import numpy as np

    ints = [j for j, i in enumerate(rm.m.integer) if i]
    cyc = [j for opts in rm.cycle_x.values() for j, _ in opts]
    charging = _v2g_modes(rm)  # a V2G car's charge-or-discharge binaries: set from the plan at a leaf
    if len(cyc) + len(charging) != len(ints):
        return None  # other binaries (battery / grid mode, thermal on/off): not handled here
    z_j = [z for z, _ in charging]
    evcols = [(em.ev.id, t, terms[0][0]) for em in cp.evs if em.levels_kw
              for t, terms in rm.ev_p[em.ev.id]]
    ev_j = [j for _, _, j in evcols]
    semi = [(em.ev.min_power_kw, em.ev.max_power_kw, terms[0][0]) for em in cp.evs if em.semicontinuous
            for _, terms in rm.ev_p[em.ev.id]]
    semi_j = [j for _, _, j in semi]
    S = highspy.HighsModelStatus
    cyc_a = np.asarray(cyc, dtype=np.int32)
    lo0 = np.asarray([rm.m.lb[j] for j in cyc], dtype=float)
    hi0 = np.asarray([rm.m.ub[j] for j in cyc], dtype=float)
    groups = []  # per cycle: positions in cyc, sorted by start
    pos = 0
    for opts in rm.cycle_x.values():
        order = sorted(range(len(opts)), key=lambda k: opts[k][1])
        groups.append(np.asarray([pos + k for k in order], dtype=np.int64))
        pos += len(opts)

    def split_of(xc: np.ndarray):
        """The cycle whose LP start is most split (its positions, largest share), None if integral."""
        split = None
        for g in groups:
            top = xc[g].max()
            if top < 1.0 - 1e-6 and (split is None or top < split[1]):
                split = (g, top)
        return split

    def complete(x: np.ndarray, xc: np.ndarray) -> Optional[float]:
        """Plan value with the cycles at `xc` (integral) and EV steps rounded; keeps the best plan."""
        nonlocal best, lps
        xl = x.tolist()
        fixed = np.where(xc > 0.5, 1.0, 0.0)
        h.changeColsBounds(len(cyc), cyc_a, fixed, fixed)
        if ev_j:
            steps = _whole_steps(cp, rm.extract(xl), [xl[i] - (xl[e] if e is not None else 0.0)
                                                      for i, e in zip(rm.imp, rm.exp)])
            if steps is None:
                return None
            sv = [steps[eid][t] for eid, t, _ in evcols]
            h.changeColsBounds(len(ev_j), ev_j, sv, sv)
        value = None
        for lo, hi in _on_off_variants(semi, xl):
            if semi_j:
                h.changeColsBounds(len(semi_j), semi_j, lo, hi)
            if z_j:  # charging where the car's power may be above zero now, else free to discharge
                up = dict(zip(semi_j, hi))
                if ev_j:
                    up.update(zip(ev_j, sv))
                zv = [float(up.get(p, xl[p]) > 1e-9) for _, p in charging]
                h.changeColsBounds(len(z_j), z_j, zv, zv)
            h.run()
            lps += 1
            if h.getModelStatus() != S.kOptimal:
                continue
            v = h.getInfo().objective_function_value
            value = v if value is None else min(value, v)
            if best is None or v < best[0]:
                best = (v, list(h.getSolution().col_value))
        free = ev_j + semi_j + z_j
        h.changeColsBounds(len(free), free, [rm.m.lb[j] for j in free], [rm.m.ub[j] for j in free])
        return value

    h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kContinuous] * len(ints))
    h.setOptionValue("presolve", "off")  # LP presolve costs more than it saves here (stress root 90 -> 65 ms)
    best: Optional[tuple[float, list[float]]] = None
    bound = math.inf  # min LP value over closed / pruned leaves
    lps = 0
    failed = False
    # best first: (parent's LP value, order, starts forbidden in the node)
    heap: list[tuple[float, int, np.ndarray]] = [(-math.inf, 0, np.zeros(len(cyc), dtype=bool))]
    try:
        while heap:
            zp, _, banned = heapq.heappop(heap)
            if best is not None and rel_gap(best[0], zp) <= gap:
                bound = min(bound, zp)
                continue
            if lps >= max_lps or time.perf_counter() > deadline:
                failed = True
                break
            h.changeColsBounds(len(cyc), cyc_a, lo0, np.where(banned, 0.0, hi0))
            h.setOptionValue("time_limit", max(0.05, deadline - time.perf_counter()))
            h.run()
            lps += 1
            ms = h.getModelStatus()
            if ms == S.kInfeasible:
                continue
            if ms != S.kOptimal:
                failed = True
                break
            z = h.getInfo().objective_function_value
            if best is not None and rel_gap(best[0], z) <= gap:
                bound = min(bound, z)
                continue
            sol = h.getSolution()
            x = np.asarray(sol.col_value)
            xc = x[cyc_a]
            if best is None and lps == 1 and split_of(xc) is not None:
                # a first plan: every cycle at its most used root start (its LP fixes the cycles only)
                d_root = np.asarray(sol.col_dual)[cyc_a]
                fixed = np.zeros(len(cyc))
                for g in groups:
                    fixed[g[int(np.argmax(xc[g]))]] = 1.0
                h.changeColsBounds(len(cyc), cyc_a, fixed, fixed)
                h.run()
                lps += 1
                if h.getModelStatus() == S.kOptimal:
                    complete(np.asarray(h.getSolution().col_value), fixed)
                sol = None
            if best is not None:
                room = best[0] - gap * abs(best[0]) - z - 1e-9 * (1.0 + abs(z))
                d = np.asarray(sol.col_dual)[cyc_a] if sol is not None else d_root
                banned = banned | ((d > room) & (xc < 1e-9))
            split = split_of(xc)
            if split is not None:
                g = split[0]
                v = xc[g]
                used = np.nonzero(v > 1e-6)[0]
                k = (int(used[0]) + int(used[-1])) // 2  # halfway between the used starts: both sides
                # lose part of the LP plan, and a blend of far-apart starts is cut in O(log) levels
                early, late = banned.copy(), banned.copy()
                early[g[k + 1:]] = True  # starts up to g[k]
                late[g[:k + 1]] = True
                first_early = v[:k + 1].sum() >= v[k + 1:].sum()
                heapq.heappush(heap, (z, 2 * lps + (not first_early), early))
                heapq.heappush(heap, (z, 2 * lps + first_early, late))
                continue
            # cycle starts integral: round the EV steps and re-solve the rest with everything fixed
            v = complete(x, xc)
            if v is None or rel_gap(v, z) > gap:
                failed = True  # no plan, or this node would need a search over EV steps
                break
            bound = min(bound, z)
    finally:
        h.setOptionValue("presolve", "choose")
        h.changeColsBounds(len(cyc), cyc_a, lo0, hi0)
        h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kInteger] * len(ints))
    if failed or best is None:
        return None
    g = rel_gap(best[0], bound)
    if g is None or g > gap:
        return None
    return BackendResult(Status.OPTIMAL, rm.extract(best[1]), best[0], min(bound, best[0]), g,
                         detail={"highs_status": "Optimal", "nodes": lps, "proof": "LP branch and bound"})


def _v2g_modes(rm: MilpModel) -> list[tuple[int, int]]:
    """(charge-or-discharge binary, the car's charging column) of every V2G slot that has one in `rm`. In the
    relaxed model they are the only binaries a V2G car with steps or on/off charging adds; once its charging is
    decided (a leaf of the LP search), each is fixed to whether the car may charge there: the LP relaxation of
    the node (the binaries relaxed) stays its bound, the plan with them fixed is a plan of the full model."""
    out = []
    for eid, cells in rm.ev_z.items():
        power = {t: terms[0][0] for t, terms in rm.ev_p[eid]}
        out += [(z, power[t]) for t, z in cells]
    return out


def _on_off_variants(semi: list[tuple[float, float, int]], x: list[float]):
    """Bounds for the power columns of on/off EVs that make the relaxed plan `x` semi-continuous.

    A slot charging at least the minimum stays on ([min, max]), an idle one off; the slots in
    between (usually one: the LP's marginal slot) are tried all off, then all on.
    """
    if not semi:
        yield [], []
        return
    state = [0 if x[j] <= 1e-7 else 1 if x[j] >= lo - 1e-7 else None for lo, _, j in semi]
    variants = (0, 1) if None in state else (None,)
    for fill in variants:
        on = [fill if st is None else st for st in state]
        yield ([lo if o else 0.0 for (lo, _, _), o in zip(semi, on)],
               [hi if o else 0.0 for (_, hi, _), o in zip(semi, on)])


def stepped_start(cp: Compiled, mm: MilpModel, h, deadline: float, threads: int,
                   gap: float, prebuilt: Optional[tuple[MilpModel, object]] = None) -> Optional[BackendResult]:
    """A plan for the full model from its EV-step relaxation (README "EV current steps").

    1. solve the model with each EV's steps replaced by their convex hull [0, top step]
       (same cycles, battery, ...): its dual bound is a valid lower bound of the full model;
    2. keep the relaxation's cycle starts and, per EV slot, only the two steps around its
       relaxed power (and off); solve that much smaller MILP in the full model. If its plan
       is within `gap` of the bound it is proven optimal (status OPTIMAL, no search over the
       full model); otherwise the caller hands it to HiGHS as a start (`setSolution`), which
       lets reduced-cost fixing drop over half of the binaries at the root.
    """
    import highspy

    # the relaxed MIP gets half of what is left: when it is hard itself (battery / heater binaries over
    # long horizons), the full model still gets time to find a plan
    budget = max(0.05, STAGE_SHARE * (deadline - time.perf_counter()))
    if prebuilt is None:
        rm = MilpModel(cp, symmetry=mm.symmetry, relax_ev_steps=True)
        hr = rm.m.to_highs(budget, threads=threads, mip_rel_gap=gap)
    else:
        rm, hr = prebuilt  # from `_lp_branch_and_bound`, left as built
        hr.setOptionValue("time_limit", budget)
    hr.run()
    if hr.getInfo().primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
        return None
    lb = hr.getInfo().mip_dual_bound if rm.m.has_integers else hr.getInfo().objective_function_value
    xr = hr.getSolution().col_value
    relaxed = rm.extract(xr)
    fix: dict[int, float] = {}
    for cid, opts in mm.cycle_x.items():
        want = relaxed.cycle_start_min.get(cid)
        for j, sm in opts:
            fix[j] = float(want is not None and abs(sm - want) < 1e-6)
    rounded = _whole_steps(cp, relaxed, [xr[i] - (xr[e] if e is not None else 0.0)
                                         for i, e in zip(rm.imp, rm.exp)])
    if rounded is not None:
        res = _fixed_run(mm, h, {**fix, **_step_columns(mm, rounded)}, deadline, lb, gap)
        if res is not None and res.status == Status.OPTIMAL:
            res.detail["proof"] = "ev-step rounding at the relaxation bound"
            return res
    for em in cp.evs:
        cells = mm.ev_steps.get(em.ev.id)
        if not cells:
            continue
        p = relaxed.ev_kw[em.ev.id]
        for t, terms in cells:
            keep = _bracket(sorted(kw for _, kw in terms), p[t])
            for j, kw in terms:
                if kw not in keep:
                    fix[j] = 0.0
    return _fixed_run(mm, h, fix, deadline, lb, gap)


def _fixed_run(mm: MilpModel, h, fix: dict[int, float], deadline: float, lb: float,
               gap: float) -> Optional[BackendResult]:
    """Solve the full model with the columns in `fix` fixed; OPTIMAL if within `gap` of the bound `lb`.

    When every integer column is fixed the rest is solved as an LP (no MIP machinery).
    """
    import highspy

    idx = sorted(fix)
    lo0 = [mm.m.lb[j] for j in idx]
    hi0 = [mm.m.ub[j] for j in idx]
    vals = [fix[j] for j in idx]
    h.changeColsBounds(len(idx), idx, vals, vals)
    ints = [j for j, i in enumerate(mm.m.integer) if i]
    as_lp = all(j in fix for j in ints)
    if as_lp:
        h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kContinuous] * len(ints))
    h.setOptionValue("time_limit", max(0.05, deadline - time.perf_counter()))
    h.run()
    ok = h.getInfo().primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    x = list(h.getSolution().col_value) if ok else None
    obj = h.getInfo().objective_function_value if ok else None
    h.changeColsBounds(len(idx), idx, lo0, hi0)
    if as_lp:
        h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kInteger] * len(ints))
    if x is None:
        return None
    g = rel_gap(obj, lb)
    if g is not None and g <= gap:
        return BackendResult(Status.OPTIMAL, mm.extract(x), obj, lb, g,
                             detail={"highs_status": "Optimal", "nodes": 0, "proof": "ev-step relaxation bound"})
    return BackendResult(Status.FEASIBLE, None, obj, lb, g, detail={"x": x})


def _whole_steps(cp: Compiled, relaxed: Schedule, net: list[float]) -> Optional[dict[str, dict[int, float]]]:
    """`_rounded_steps`, under a capacity charge first with the windows kept under the relaxed peak."""
    if cp.problem.capacity_charges:
        steps = _rounded_steps(cp, relaxed, net, peak_caps=True)
        if steps is not None:
            return steps
    return _rounded_steps(cp, relaxed, net)


def _rounded_steps(cp: Compiled, relaxed: Schedule, net: list[float],
                   peak_caps: bool = False) -> Optional[dict[str, dict[int, float]]]:
    """Whole current steps (kW per EV slot) for the relaxed plan, within the delivered-energy bounds.

    A dynamic programme over the EV's slots and the delivered energy (in the steps' common unit,
    see `_step_rounded_energy`) picks the steps that cost least when every other device keeps its
    relaxed plan, i.e. each slot's net import moves by (step - relaxed power) at that slot's
    import/export price and must stay within the site limits and a hard grid request. Only a
    candidate: the caller re-solves the rest as an LP and accepts it only within the gap of the bound.
    `peak_caps`: under a capacity charge, the EV's slots in one metering window are chosen together so that
    the window stays under the relaxed plan's peak (`_window_caps`; steps spread evenly instead of bunching
    in the cheapest slots, which raised the peak of `ev-241` above its bound).
    """
    import numpy as np

    p = cp.problem
    site, gr, dt = p.site, p.grid_request, cp.dt_h
    if gr is not None and gr.penalty_eur_per_kwh is None:
        gr_lo, gr_hi = gr.min_net_import_kw, gr.max_net_import_kw
    else:
        gr_lo = gr_hi = (None,) * cp.n
    net = list(net)
    out: dict[str, dict[int, float]] = {}

    def slot_cost(t: int, n: float) -> float:
        if n > site.import_limit_kw + 1e-9 or (gr_hi[t] is not None and n > gr_hi[t] + 1e-9) or \
                (gr_lo[t] is not None and n < gr_lo[t] - 1e-9):
            return math.inf
        if n >= 0:
            return cp.w_imp[t] * dt * n
        if not cp.may_export[t] or -n > site.export_limit_kw + 1e-9:
            return math.inf
        return -cp.w_exp[t] * dt * n

    caps = _window_caps(cp, net) if peak_caps else {}
    for em in cp.evs:
        if em.levels_kw is None or not em.slots:
            continue
        levels = list(em.levels_kw)
        grid = step_grid(em, dt)
        if grid is None:
            return None
        units, q = grid
        k_lo = max(0, math.ceil(em.need_kwh / q - 1e-7))
        k_hi = math.floor(em.max_kwh / q + 1e-7) if em.max_kwh is not None else None
        if em.ev.v2g:  # what the relaxed plan charges covers what it discharges too, not only the need (nor
            # only the room: the LP with the steps fixed keeps the car's energy within its bounds)
            charged = em.ev.efficiency * dt * sum(relaxed.ev_kw[em.ev.id][t] for t in em.slots)
            k_lo, k_hi = max(k_lo, math.ceil(charged / q - 1e-7)), None
        unit_kw = levels[0] / units[0]
        blocks = _ev_blocks(em.slots, caps, relaxed.ev_kw[em.ev.id], net)
        # states: delivered energy 0..S units; more than one block of top steps above the need is not tried
        S = min(len(em.slots) * max(units), k_lo + max(units) * max(len(ts) for ts, _ in blocks))
        if k_hi is not None:
            S = min(S, k_hi)
        if S < k_lo or S > 50000:
            return None
        V = np.full(S + 1, np.inf)
        V[0] = 0.0
        picks = []  # per block: (its slots, the block sum chosen per state or None for a slot alone, its steps)
        p_rel = relaxed.ev_kw[em.ev.id]
        steps = [0] + units
        cols = np.arange(S + 1)
        for ts, cap_kw in blocks:
            if len(ts) == 1 and cap_kw is None:  # a slot alone: its steps straight into the states
                cand = np.full((len(steps), S + 1), np.inf)
                for k, u in enumerate(steps):
                    c = slot_cost(ts[0], net[ts[0]] + (0.0 if k == 0 else levels[k - 1]) - p_rel[ts[0]])
                    if c != math.inf and u <= S:
                        cand[k, u:] = V[:S + 1 - u] + c
                arg = cand.argmin(axis=0)  # ties: the smaller step
                V = cand[arg, cols]
                picks.append((ts, None, arg))
                continue
            # inner programme over the block's slots: least cost per block sum (units), and the steps giving it
            top_u = len(ts) * max(units)
            B = np.full(top_u + 1, np.inf)
            B[0] = 0.0
            inner = []
            for t in ts:
                cand = np.full((len(steps), top_u + 1), np.inf)
                for k, u in enumerate(steps):
                    c = slot_cost(t, net[t] + (0.0 if k == 0 else levels[k - 1]) - p_rel[t])
                    if c != math.inf:
                        cand[k, u:] = B[:top_u + 1 - u] + c
                arg = cand.argmin(axis=0)  # ties: the smaller step
                B = cand[arg, np.arange(top_u + 1)]
                inner.append(arg)
            if cap_kw is not None:  # the window's peak: the block draws at most cap_kw kW-slots
                B[int(math.floor(cap_kw / unit_kw + 1e-5)) + 1:] = np.inf  # (the peak floor has a 1e-7 kW margin)
            used = np.nonzero(np.isfinite(B))[0]
            if not len(used):
                return None  # no step (not even off) keeps this block within the limits
            cand = np.full((len(used), S + 1), np.inf)
            for r, u in enumerate(used):
                if u <= S:
                    cand[r, u:] = V[:S + 1 - u] + B[u]
            arg = cand.argmin(axis=0)
            V = cand[arg, cols]
            picks.append((ts, used[arg], inner))
        if not np.isfinite(V[k_lo:]).any():
            return None
        s = k_lo + int(np.argmin(V[k_lo:]))
        kw = out.setdefault(em.ev.id, {})
        for ts, chosen, inner in reversed(picks):
            if chosen is None:  # a slot alone: `inner` is its step per state
                k = int(inner[s])
                kw[ts[0]] = 0.0 if k == 0 else levels[k - 1]
                net[ts[0]] += kw[ts[0]] - p_rel[ts[0]]
                s -= 0 if k == 0 else units[k - 1]
                continue
            b = int(chosen[s])
            s -= b
            for t, arg in zip(reversed(ts), reversed(inner)):
                k = int(arg[b])
                kw[t] = 0.0 if k == 0 else levels[k - 1]
                net[t] += kw[t] - p_rel[t]
                b -= 0 if k == 0 else units[k - 1]
    return out


def _window_caps(cp: Compiled, net: list[float]) -> dict[int, tuple[int, float]]:
    """Per slot of a metering window of the dearest capacity charge: (window number, the import the window may
    still take, kW-slots, before its average passes the peak), the peak being the largest of the charge's floor,
    the peak whole EV steps force (`compile.capacity_ev_peak_floor`) and the relaxed plan's own window averages."""
    p = cp.problem
    if not p.capacity_charges:
        return {}
    cc = max(p.capacity_charges, key=lambda c: c.price_eur_per_kw)
    windows = capacity_windows(p, cc)
    imp = [max(0.0, x) for x in net]
    peak = max([cc.peak_floor_kw, capacity_ev_peak_floor(cp, windows)] +
               [sum(imp[t] for t in ts) / len(ts) for ts in windows])
    return {t: (w, peak * len(ts) - sum(imp[u] for u in ts)) for w, ts in enumerate(windows) for t in ts}


def _ev_blocks(slots: list[int], caps: dict[int, tuple[int, float]], p_rel: list[float],
               net: list[float]) -> list[tuple[list[int], Optional[float]]]:
    """The EV's slots in blocks of one metering window (with the kW-slots the EV may draw there: the window's
    room plus what its relaxed power already takes, less what a slot's import can fall below zero), or alone."""
    blocks: list[tuple[list[int], Optional[float]]] = []
    key = None
    for t in slots:
        w = caps.get(t)
        if w is not None and w[0] == key:
            blocks[-1][0].append(t)
        else:
            blocks.append(([t], None))
            key = w[0] if w is not None else None
    out = []
    for ts, _ in blocks:
        w = caps.get(ts[0])
        if w is None:
            out.append((ts, None))
            continue
        # the window's import moves by at most the EV's change where the slot imports (max(0, a + b) <= max(0, a) + b)
        room = w[1] + sum(max(0.0, net[t]) - max(0.0, net[t] - p_rel[t]) for t in ts)
        out.append((ts, max(0.0, room)))
    return out


def _step_columns(mm: MilpModel, steps: dict[str, dict[int, float]]) -> dict[int, float]:
    """The full model's step binaries for per-slot EV powers from `_rounded_steps`."""
    fix: dict[int, float] = {}
    for eid, cells in mm.ev_steps.items():
        for t, terms in cells:
            kw = steps[eid][t]
            for j, lv in terms:
                fix[j] = float(lv == kw)
    return fix


def _bracket(levels: list[float], x: float) -> set[float]:
    """The steps just below and just above x (0 = off is always allowed)."""
    below = [lv for lv in levels if lv <= x + 1e-9]
    above = [lv for lv in levels if lv > x + 1e-9]
    return set(below[-1:] + above[:1])
