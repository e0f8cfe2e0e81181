"""MILP backend: time-indexed model, kW / kWh / EUR as floats, solved by HiGHS (CBC fallback via PuLP).

Each device adds its columns and rows in one `_add_*` function; loads are
collected per slot and tied to import/export in `_add_site`.
"""
from __future__ import annotations

import heapq
import math
import time
from typing import Callable, Optional

from ..compile import THROUGHPUT_EPS_PER_KWH, Compiled, CycleModel, EVModel
from ..problem import Battery, PV, ThermalStorage
from ..result import Schedule, Status, Violation
from .common import ELASTIC_PER_CYCLE, ELASTIC_PER_KWH, BackendResult, rel_gap
from .linear import INF, LinModel, new_highs, pulp_solver

Term = tuple[int, float]


class MilpModel:
    """The built model plus the column maps needed to read a schedule back."""

    def __init__(self, cp: Compiled, elastic: bool = False, symmetry: bool = True, relax_ev_steps: bool = False,
                 round_ev_energy: bool = True):
        self.cp = cp
        self.round_ev_energy = round_ev_energy  # the exact whole-step energy cut (off only for cross-checks)
        self.elastic = elastic
        self.relax_ev_steps = relax_ev_steps  # EV steps -> their convex hull [0, top step] (a valid relaxation)
        self.m = LinModel()
        n = cp.n
        self.loads: list[list[Term]] = [[] for _ in range(n)]
        self.const = [cp.base_kw[t] - cp.pv_fixed_kw[t] for t in range(n)]
        self.busy: dict[str, list[list[int]]] = {}
        self.busy_fixed: dict[str, list[int]] = {}
        self.cycle_x: dict[str, list[tuple[int, float]]] = {}
        self.cycle_fixed: dict[str, float] = {}
        self.cycle_skip: dict[str, int] = {}
        self.ev_p: dict[str, list[tuple[int, list[Term]]]] = {}
        self.ev_steps: dict[str, list[tuple[int, list[Term]]]] = {}  # per EV with steps: slot -> (binary, kW)
        self.bat: dict[str, tuple[list[int], list[int], list[int]]] = {}
        self.pv_u: dict[str, list[int]] = {}
        self.th_p: dict[str, list[Term]] = {}
        self.th_e: dict[str, list[int]] = {}
        self.imp: list[int] = []
        self.exp: list[Optional[int]] = []
        self.net_rows: list[int] = []
        self.slacks: list[tuple[int, Callable[[float], Violation]]] = []
        # integer columns: (col, slot or None, value in a given plan, value to push net import up, ... down)
        self.int_rules: list[tuple[int, Optional[int], Callable[[Schedule, list[float]], float], Optional[float],
                                   Optional[float], str]] = []
        self.symmetry = symmetry
        for cm in cp.cycles:
            _add_cycle(self, cm)
        _add_no_overlap(self)
        for em in cp.evs:
            _add_ev(self, em)
        for b in cp.problem.batteries:
            _add_battery(self, b)
        for pv in cp.problem.pv:
            _add_pv(self, pv)
        for th in cp.problem.thermal_storages:
            _add_thermal(self, th)
        _add_site(self)

    def slack(self, cost: float, make: Callable[[float], Violation], ub: float = INF) -> int:
        j = self.m.var(0.0, ub, cost)
        self.slacks.append((j, make))
        return j

    def extract(self, x) -> Schedule:
        cp, n = self.cp, self.cp.n
        sch = Schedule()
        for cid, opts in self.cycle_x.items():
            if cid in self.cycle_skip and x[self.cycle_skip[cid]] > 0.5:
                sch.skipped_cycles.append(cid)
                continue
            best = max(opts, key=lambda o: x[o[0]])
            sch.cycle_start_min[cid] = best[1]
        sch.cycle_start_min.update(self.cycle_fixed)
        for eid, slots in self.ev_p.items():
            p = [0.0] * n
            for t, terms in slots:
                p[t] = _clean(sum(c * x[j] for j, c in terms))
            sch.ev_kw[eid] = p
        for bid, (c, d, _soc) in self.bat.items():
            sch.battery_charge_kw[bid] = [_clean(x[j]) for j in c]
            sch.battery_discharge_kw[bid] = [_clean(x[j]) for j in d]
        for pv in cp.problem.pv:
            cols = self.pv_u.get(pv.id)
            sch.pv_kw[pv.id] = list(pv.forecast_kw) if cols is None else [_clean(x[j]) for j in cols]
        for tid, terms in self.th_p.items():
            sch.thermal_kw[tid] = [_clean(c * x[j]) for j, c in terms]
        return sch

    def violations(self, x) -> list[Violation]:
        return [make(float(x[j])) for j, make in self.slacks if x[j] > 1e-5]


def _clean(v: float) -> float:
    v = float(v)
    return 0.0 if abs(v) < 1e-9 else v


# ------------------------------------------------------------------ devices
def _add_cycle(mm: MilpModel, cm: CycleModel) -> None:
    """One binary per allowed start; the start's resampled profile adds to the slot loads."""
    c, m, cp = cm.cycle, mm.m, mm.cp
    busy = mm.busy.setdefault(c.device, [[] for _ in range(cp.n)])
    fixed = mm.busy_fixed.setdefault(c.device, [0] * cp.n)
    if cm.fixed:
        o = cm.options[0]
        for k, pk in enumerate(o.profile_kw):
            mm.const[o.first_slot + k] += pk
        for t in range(*o.occupied):
            fixed[t] += 1
        mm.cycle_fixed[c.id] = o.start_min
        m.offset += o.extra_cost
        return
    cols = []
    opts = []
    for o in cm.options:
        j = m.var(0.0, 1.0, o.extra_cost, integer=True)
        mm.int_rules.append((j, None, lambda s, net, cid=c.id, sm=o.start_min: float(
            abs(s.cycle_start_min.get(cid, -1e9) - sm) < 1e-6), None, None, c.id))
        cols.append(j)
        opts.append((j, o.start_min))
        for k, pk in enumerate(o.profile_kw):
            if pk:
                mm.loads[o.first_slot + k].append((j, pk))
        for t in range(*o.occupied):
            busy[t].append(j)
    if mm.elastic:
        s = m.var(0.0, 1.0, ELASTIC_PER_CYCLE, integer=True)
        mm.cycle_skip[c.id] = s
        mm.slacks.append((s, lambda v, c=c: Violation(c.id, "scheduled", v, "cycle", None,
                                                      f"cycle '{c.name}' cannot be placed")))
        cols.append(s)
    mm.cycle_x[c.id] = opts
    m.row(cols, [1.0] * len(cols), 1.0, 1.0)


def _add_no_overlap(mm: MilpModel) -> None:
    """Cycles of one appliance: at most one busy per slot (clique rows, tight in the LP)."""
    cp, m = mm.cp, mm.m
    by_dev: dict[str, list[CycleModel]] = {}
    for cm in cp.cycles:
        by_dev.setdefault(cm.cycle.device, []).append(cm)
    for dev, cms in by_dev.items():
        if len(cms) < 2:
            continue
        busy, fixed = mm.busy[dev], mm.busy_fixed[dev]
        for t in range(cp.n):
            if busy[t] and (len(busy[t]) > 1 or fixed[t]):
                m.row(busy[t], [1.0] * len(busy[t]), -INF, max(0.0, 1.0 - fixed[t]))
        if mm.symmetry:
            _break_symmetry(mm, cms)


def _break_symmetry(mm: MilpModel, cms: list[CycleModel]) -> None:
    """Identical cycles of one appliance are interchangeable: force them to run in list order."""
    groups: dict[tuple, list[CycleModel]] = {}
    for cm in cms:
        if cm.fixed or not cm.options or cm.cycle.late_penalty_eur_per_h:
            continue
        key = (cm.options[0].profile_kw, tuple(o.start_min for o in cm.options))
        groups.setdefault(key, []).append(cm)
    for same in groups.values():
        for a, b in zip(same, same[1:]):
            xa, xb = mm.cycle_x[a.cycle.id], mm.cycle_x[b.cycle.id]
            # start(b) >= start(a) + duration (they cannot overlap anyway)
            occ = a.options[0].occupied[1] - a.options[0].occupied[0]
            res = mm.cp.problem.grid.resolution_min
            idx = [j for j, _ in xb] + [j for j, _ in xa]
            val = [s / res for _, s in xb] + [-s / res for _, s in xa]
            mm.m.row(idx, val, float(occ), INF)


def _add_ev(mm: MilpModel, em: EVModel) -> None:
    """Power per available slot: continuous, semi-continuous (on/off above min) or discrete current steps."""
    e, m, cp = em.ev, mm.m, mm.cp
    dt = cp.dt_h
    slots = []
    energy: list[Term] = []
    for t in em.slots:
        if mm.relax_ev_steps and (em.levels_kw is not None or em.semicontinuous):
            # the convex hull of the steps (or of "off or [min, max]"): the LP relaxation of the binaries
            terms = [(m.var(0.0, max(em.levels_kw) if em.levels_kw else e.max_power_kw), 1.0)]
        elif em.levels_kw is not None:
            ys = [m.var(0.0, 1.0, 0.0, integer=True) for _ in em.levels_kw]
            top = max(em.levels_kw)
            for y, lv in zip(ys, em.levels_kw):
                mm.int_rules.append((y, t, lambda s, net, t=t, lv=lv, eid=e.id: float(
                    abs(s.ev_kw[eid][t] - lv) < 1e-4), float(lv == top), 0.0, e.id))
            m.row(ys, [1.0] * len(ys), -INF, 1.0)
            terms = list(zip(ys, em.levels_kw))
            mm.ev_steps.setdefault(e.id, []).append((t, terms))
        elif em.semicontinuous:
            p = m.var(0.0, e.max_power_kw)
            on = m.var(0.0, 1.0, 0.0, integer=True)
            mm.int_rules.append((on, t, lambda s, net, t=t, eid=e.id: float(s.ev_kw[eid][t] > 1e-6), 1.0, 0.0, e.id))
            m.row([p, on], [1.0, -e.max_power_kw], -INF, 0.0)
            m.row([p, on], [1.0, -e.min_power_kw], 0.0, INF)
            terms = [(p, 1.0)]
        else:
            terms = [(m.var(0.0, e.max_power_kw), 1.0)]
        slots.append((t, terms))
        mm.loads[t].extend(terms)
        energy.extend((j, c * dt * e.efficiency) for j, c in terms)
    mm.ev_p[e.id] = slots
    idx, val = [j for j, _ in energy], [c for _, c in energy]
    lo_kwh, hi = em.need_kwh, em.max_kwh if em.max_kwh is not None else INF
    if em.levels_kw is not None and not mm.elastic and mm.round_ev_energy:
        lo_kwh, hi = _step_rounded_energy(em, dt, lo_kwh, hi)
    if mm.elastic:
        s = mm.slack(ELASTIC_PER_KWH, lambda v, e=e: Violation(e.id, "energy", v, "kWh", None,
                                                                f"EV '{e.name}' gets {v:.1f} kWh too little"))
        idx, val = idx + [s], val + [1.0]
    m.row(idx, val, lo_kwh, hi)


def _step_grid(em: EVModel, dt: float) -> Optional[tuple[list[int], float]]:
    """Every current step as a whole multiple of the steps' common unit, and that unit in delivered kWh per slot.

    Steps are whole watts (1 W power resolution), so any plan delivers a multiple of
    q = efficiency * dt * gcd(steps in W). None if a step is not a whole number of watts.
    """
    w = [int(round(lv * 1000)) for lv in em.levels_kw or ()]
    g = 0
    for x in w:
        g = math.gcd(g, x)
    if g <= 0 or any(abs(x - lv * 1000) > 1e-6 for x, lv in zip(w, em.levels_kw)):
        return None
    return [x // g for x in w], em.ev.efficiency * dt * g / 1000.0


def _step_rounded_energy(em: EVModel, dt: float, lo: float, hi: float) -> tuple[float, float]:
    """Energy bounds rounded to what whole current steps can deliver (an exact cut, README "EV current steps").

    `lo` rounds up and `hi` down to the grid of `_step_grid`. Valid for every integer plan, and
    it also holds for the relaxed EV power of the relaxed model, whose bound therefore stays a
    lower bound of the real model while getting tighter.
    """
    grid = _step_grid(em, dt)
    if grid is None:
        return lo, hi
    q = grid[1]
    if lo > 0:
        lo = max(lo, math.ceil(lo / q - 1e-7) * q)
    if hi != INF:
        hi = min(hi, math.floor(hi / q + 1e-7) * q)
    return lo, hi


def _add_battery(mm: MilpModel, b: Battery) -> None:
    """SoC balance with charge/discharge efficiencies; a mode binary only where losses would pay."""
    m, cp = mm.m, mm.cp
    n, dt = cp.n, cp.dt_h
    lo = min(b.min_kwh, b.initial_kwh)
    eps = THROUGHPUT_EPS_PER_KWH * dt
    c = [m.var(0.0, b.max_charge_kw, eps) for _ in range(n)]
    d = [m.var(0.0, b.max_discharge_kw, eps) for _ in range(n)]
    soc = [m.var(lo, b.capacity_kwh) for _ in range(n)]
    fin = b.final_kwh
    if fin is not None and not mm.elastic:
        m.lb[soc[-1]] = max(lo, fin)
    prev = None
    for t in range(n):
        idx = [soc[t], c[t], d[t]]
        val = [1.0, -b.charge_efficiency * dt, dt / b.discharge_efficiency]
        rhs = b.initial_kwh if prev is None else 0.0
        if prev is not None:
            idx.append(prev)
            val.append(-1.0)
        m.row(idx, val, rhs, rhs)
        prev = soc[t]
        mm.loads[t].append((c[t], 1.0))
        mm.loads[t].append((d[t], -1.0))
        if t in cp.exclusive_battery_slots:
            z = m.var(0.0, 1.0, 0.0, integer=True)
            mm.int_rules.append((z, t, lambda s, net, t=t, bid=b.id: float(s.battery_charge_kw[bid][t] > 1e-9),
                                 1.0, 0.0, b.id))
            m.row([c[t], z], [1.0, -b.max_charge_kw], -INF, 0.0)
            m.row([d[t], z], [1.0, b.max_discharge_kw], -INF, b.max_discharge_kw)
    if fin is not None and mm.elastic:
        s = mm.slack(ELASTIC_PER_KWH, lambda v, b=b: Violation(b.id, "final_soc", v, "kWh", None,
                                                                f"battery '{b.name}' ends {v:.1f} kWh short"))
        m.row([soc[-1], s], [1.0, 1.0], fin, INF)
    mm.bat[b.id] = (c, d, soc)


def _add_pv(mm: MilpModel, pv: PV) -> None:
    """Curtailable PV is a column in [0, forecast]; fixed PV is already in the constants."""
    if not pv.curtailable:
        return
    cols = [mm.m.var(0.0, pv.forecast_kw[t]) for t in range(mm.cp.n)]
    for t, j in enumerate(cols):
        mm.loads[t].append((j, -1.0))
    mm.pv_u[pv.id] = cols


def _add_thermal(mm: MilpModel, th: ThermalStorage) -> None:
    """Stored heat balance; electric power on/off (binary) or modulating."""
    m, cp = mm.m, mm.cp
    n, dt = cp.n, cp.dt_h
    P = th.electric_power_kw
    terms: list[Term] = []
    for t in range(n):
        if th.modulating:
            terms.append((m.var(0.0, P), 1.0))
        else:
            j = m.var(0.0, 1.0, 0.0, integer=True)
            mm.int_rules.append((j, t, lambda s, net, t=t: float(s.thermal_kw[th.id][t] > 1e-6), 1.0, 0.0, th.id))
            terms.append((j, P))
    lo, hi = (-INF, INF) if mm.elastic else (th.min_energy_kwh, th.max_energy_kwh)
    e = [m.var(lo, hi) for _ in range(n)]
    if th.final_energy_kwh is not None and not mm.elastic:
        m.lb[e[-1]] = max(m.lb[e[-1]], th.final_energy_kwh)
    for t in range(n):
        j, coef = terms[t]
        drain = (th.heat_demand_kw[t] + th.standing_loss_kw) * dt
        idx, val = [e[t], j], [1.0, -th.cop * dt * coef]
        rhs = -drain + (th.initial_energy_kwh if t == 0 else 0.0)
        if t > 0:
            idx.append(e[t - 1])
            val.append(-1.0)
        m.row(idx, val, rhs, rhs)
        mm.loads[t].append((j, coef))
        if mm.elastic:
            s1 = mm.slack(ELASTIC_PER_KWH, lambda v, t=t: Violation(th.id, "comfort_min", v, "kWh", t,
                                                                    f"'{th.name}' {v:.2f} kWh below its comfort band"))
            s2 = mm.slack(ELASTIC_PER_KWH, lambda v, t=t: Violation(th.id, "comfort_max", v, "kWh", t,
                                                                    f"'{th.name}' {v:.2f} kWh above its comfort band"))
            m.row([e[t], s1], [1.0, 1.0], th.min_energy_kwh, INF)
            m.row([e[t], s2], [1.0, -1.0], -INF, th.max_energy_kwh)
    if th.final_energy_kwh is not None and mm.elastic:
        s = mm.slack(ELASTIC_PER_KWH, lambda v: Violation(th.id, "final_energy", v, "kWh", None,
                                                          f"'{th.name}' ends {v:.2f} kWh short"))
        m.row([e[-1], s], [1.0, 1.0], th.final_energy_kwh, INF)
    mm.th_p[th.id] = terms
    mm.th_e[th.id] = e


def _add_site(mm: MilpModel) -> None:
    """imp - exp = base - fixed PV + device loads; limits, grid request and the objective."""
    m, cp = mm.m, mm.cp
    p = cp.problem
    site, gr = p.site, p.grid_request
    dt = cp.dt_h
    L, E = site.import_limit_kw, site.export_limit_kw
    for t in range(cp.n):
        imp = m.var(0.0, INF if mm.elastic else L, cp.w_imp[t] * dt)
        exp = m.var(0.0, E, cp.w_exp[t] * dt) if cp.may_export[t] else None
        mm.imp.append(imp)
        mm.exp.append(exp)
        idx = [imp] + ([exp] if exp is not None else []) + [j for j, _ in mm.loads[t]]
        val = [1.0] + ([-1.0] if exp is not None else []) + [-c for _, c in mm.loads[t]]
        mm.net_rows.append(m.row(idx, val, mm.const[t], mm.const[t]))
        if mm.elastic:
            s = mm.slack(ELASTIC_PER_KWH * dt, lambda v, t=t: Violation("site", "import_limit", v, "kW", t,
                                                                         f"import {v:.2f} kW above the limit"))
            m.row([imp, s], [1.0, -1.0], -INF, L)
        if exp is not None and t in cp.exclusive_grid_slots:
            z = m.var(0.0, 1.0, 0.0, integer=True)
            mm.int_rules.append((z, t, lambda s, net, t=t: float(net[t] > 1e-9), 1.0, 0.0, "site"))
            m.row([imp, z], [1.0, -(L if not mm.elastic else 1e4)], -INF, 0.0)
            m.row([exp, z], [1.0, E], -INF, E)
        if gr is None:
            continue
        lo, hi = gr.min_net_import_kw[t], gr.max_net_import_kw[t]
        net_idx = [imp] + ([exp] if exp is not None else [])
        net_val = [1.0] + ([-1.0] if exp is not None else [])
        soft = gr.penalty_eur_per_kwh
        for bound, sign, name in ((lo, 1.0, "min"), (hi, -1.0, "max")):
            if bound is None:
                continue
            if soft is not None or mm.elastic:
                cost = soft * dt if soft is not None else ELASTIC_PER_KWH * dt
                s = m.var(0.0, INF, cost)
                if soft is None:
                    mm.slacks.append((s, lambda v, t=t, name=name: Violation(
                        "site", "grid_request", v, "kW", t, f"net import {v:.2f} kW beyond the grid request {name}")))
                if sign > 0:
                    m.row(net_idx + [s], net_val + [1.0], bound, INF)
                else:
                    m.row(net_idx + [s], net_val + [-1.0], -INF, bound)
            elif sign > 0:
                m.row(net_idx, net_val, bound, INF)
            else:
                m.row(net_idx, net_val, -INF, bound)


# ------------------------------------------------------------------ solve
def solve_milp(cp: Compiled, time_limit_s: float = 5.0, *, elastic: bool = False, via_pulp: bool = False,
               threads: int = 1, mip_rel_gap: float = 5e-5, symmetry: bool = True,
               lp_search: bool = True) -> BackendResult:
    """Solve with HiGHS (PuLP/CBC without highspy). With EV current steps: first the LP branch and
    bound (`lp_search`), then the staged MILP (README "EV current steps")."""
    t0 = time.perf_counter()
    try:
        import highspy  # noqa: F401
        have_highs = True
    except ImportError:  # pragma: no cover - exercised only without highspy
        have_highs = False
    relaxed = None
    if have_highs and lp_search and not via_pulp and not elastic and any(
            (em.levels_kw or em.semicontinuous) and em.slots for em in cp.evs):
        relaxed = MilpModel(cp, symmetry=symmetry, relax_ev_steps=True)
        hr = relaxed.m.to_highs(max(0.05, time_limit_s - (time.perf_counter() - t0)), threads=threads,
                                mip_rel_gap=mip_rel_gap)
        build_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        now = time.perf_counter()  # the search gets 30 % of what is left; the staged MILP the rest
        res = _lp_branch_and_bound(cp, relaxed, hr, now + 0.3 * max(0.0, t0 + time_limit_s - now), mip_rel_gap)
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
    if mm.ev_steps and not elastic:
        start = _stepped_start(cp, mm, h, t0 + time_limit_s, threads, mip_rel_gap, relaxed)
    if start is not None and start.status == Status.OPTIMAL:
        res = start
    else:
        if start is not None:
            import highspy

            sol = highspy.HighsSolution()
            sol.col_value = start.detail.pop("x")
            sol.value_valid = True
            h.setSolution(sol)
            detail["start_objective"] = start.objective
        h.setOptionValue("time_limit", max(0.05, t0 + time_limit_s - time.perf_counter()))
        h.run()
        res = read_highs(mm, h)
    solve_ms = (time.perf_counter() - t1) * 1000
    res.build_ms, res.solve_ms = build_ms, solve_ms
    res.detail.update(detail)
    res.detail["solver"] = "highs"
    return res


def _lp_branch_and_bound(cp: Compiled, rm: MilpModel, h, deadline: float, gap: float,
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
    if len(cyc) != len(ints):
        return None  # other binaries (battery / grid mode, thermal on/off, EV on/off): not handled here
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
            steps = _rounded_steps(cp, rm.extract(xl), [xl[i] - (xl[e] if e is not None else 0.0)
                                                        for i, e in zip(rm.imp, rm.exp)])
            if steps is None:
                return None
            sv = [steps[eid][t] for eid, t, _ in evcols]
            h.changeColsBounds(len(ev_j), ev_j, sv, sv)
        value = None
        for lo, hi in _on_off_variants(semi, xl):
            if semi_j:
                h.changeColsBounds(len(semi_j), semi_j, lo, hi)
            h.run()
            lps += 1
            if h.getModelStatus() != S.kOptimal:
                continue
            v = h.getInfo().objective_function_value
            value = v if value is None else min(value, v)
            if best is None or v < best[0]:
                best = (v, list(h.getSolution().col_value))
        free = ev_j + semi_j
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


def _stepped_start(cp: Compiled, mm: MilpModel, h, deadline: float, threads: int,
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

    if prebuilt is None:
        rm = MilpModel(cp, symmetry=mm.symmetry, relax_ev_steps=True)
        hr = rm.m.to_highs(max(0.05, deadline - time.perf_counter()), threads=threads, mip_rel_gap=gap)
    else:
        rm, hr = prebuilt  # from `_lp_branch_and_bound`, left as built
        hr.setOptionValue("time_limit", max(0.05, deadline - time.perf_counter()))
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
    rounded = _rounded_steps(cp, relaxed, [xr[i] - (xr[e] if e is not None else 0.0)
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


def _rounded_steps(cp: Compiled, relaxed: Schedule, net: list[float]) -> Optional[dict[str, dict[int, float]]]:
    """Whole current steps (kW per EV slot) for the relaxed plan, within the delivered-energy bounds.

    A dynamic programme over the EV's slots and the delivered energy (in the steps' common unit,
    see `_step_rounded_energy`) picks the steps that cost least when every other device keeps its
    relaxed plan, i.e. each slot's net import moves by (step - relaxed power) at that slot's
    import/export price and must stay within the site limits and a hard grid request. Only a
    candidate: the caller re-solves the rest as an LP and accepts it only within the gap of the bound.
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

    for em in cp.evs:
        if em.levels_kw is None or not em.slots:
            continue
        levels = list(em.levels_kw)
        grid = _step_grid(em, dt)
        if grid is None:
            return None
        units, q = grid
        k_lo = max(0, math.ceil(em.need_kwh / q - 1e-7))
        k_hi = math.floor(em.max_kwh / q + 1e-7) if em.max_kwh is not None else None
        # states: delivered energy 0..S units; more than one top step above the need is not tried
        S = min(len(em.slots) * max(units), k_lo + max(units))
        if k_hi is not None:
            S = min(S, k_hi)
        if S < k_lo or S > 50000:
            return None
        V = np.full(S + 1, np.inf)
        V[0] = 0.0
        choice = []
        p_rel = relaxed.ev_kw[em.ev.id]
        steps = [0] + units
        cols = np.arange(S + 1)
        for t in em.slots:
            cand = np.full((len(steps), S + 1), np.inf)
            for k, u in enumerate(steps):
                c = slot_cost(t, net[t] + (0.0 if k == 0 else levels[k - 1]) - p_rel[t])
                if c != math.inf and u <= S:
                    cand[k, u:] = V[:S + 1 - u] + c
            arg = cand.argmin(axis=0)  # ties: the smaller step
            V = cand[arg, cols]
            choice.append(arg)
        if not np.isfinite(V[k_lo:]).any():
            return None
        s = k_lo + int(np.argmin(V[k_lo:]))
        kw = out.setdefault(em.ev.id, {})
        for t, arg in zip(reversed(em.slots), reversed(choice)):
            k = int(arg[s])
            kw[t] = 0.0 if k == 0 else levels[k - 1]
            net[t] += kw[t] - p_rel[t]
            s -= 0 if k == 0 else units[k - 1]
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


def read_highs(mm: MilpModel, h) -> BackendResult:
    import highspy

    ms = h.getModelStatus()
    info = h.getInfo()
    has_sol = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    S = highspy.HighsModelStatus
    if ms in (S.kInfeasible,) or (ms == S.kUnboundedOrInfeasible and not has_sol):
        return BackendResult(Status.INFEASIBLE, None)
    if not has_sol:
        return BackendResult(Status.NO_SOLUTION_IN_TIME, None, detail={"highs_status": h.modelStatusToString(ms)})
    x = h.getSolution().col_value
    obj = info.objective_function_value
    if mm.m.has_integers:
        bound = info.mip_dual_bound
        gap = rel_gap(obj, bound)
    else:
        bound, gap = obj, 0.0
    status = Status.OPTIMAL if ms == S.kOptimal else Status.FEASIBLE
    res = BackendResult(status, mm.extract(x), obj, bound, gap,
                        detail={"highs_status": h.modelStatusToString(ms), "nodes": int(info.mip_node_count)})
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
