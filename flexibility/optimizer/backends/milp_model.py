"""MILP formulation: the time-indexed model in kW / kWh / EUR as floats, one `_add_*` function per device.

Each device adds its columns and rows to a `LinModel` (`linear.py`); loads are
collected per slot and tied to import/export in `_add_site`. Solving is elsewhere:
`milp.py` (HiGHS / PuLP) and `milp_search.py` (the LP search for EV steps).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from ..compile import (THROUGHPUT_EPS_PER_KWH, Compiled, CycleModel, EVModel, capacity_cycle_floors,
                       capacity_ev_peak_floor, capacity_ev_window_cuts, capacity_heater_peak_floor, capacity_windows,
                       cycle_cost_floors, day_slot_groups, device_terms, heat_pump_mir_cuts, hp_count_cuts,
                       heating_count_bounds, heater_cliques, interchangeable_cycles, min_state_bounds, money_weight,
                       power_cliques, slot_cost_floors, step_grid, step_unit_kw)
from ..problem import Battery, PV, SpaceHeating, ThermalStorage
from ..result import Schedule, Violation
from .common import ELASTIC_PER_CYCLE, ELASTIC_PER_KWH
from .linear import INF, LinModel

Term = tuple[int, float]

class MilpModel:
    """The built model plus the column maps needed to read a schedule back."""

    def __init__(self, cp: Compiled, elastic: bool = False, symmetry: bool = True, relax_ev_steps: bool = False,
                 round_ev_energy: bool = True, heating_cuts: bool = True, cycle_cuts: bool = True):
        self.cp = cp
        self.cycle_cuts = cycle_cuts  # the exact power cliques between heavy cycle starts (off only for cross-checks)
        self.heating_cuts = heating_cuts  # the exact whole-heating-slot cut (off only for cross-checks)
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
        self.ev_d: dict[str, list[tuple[int, int]]] = {}  # V2G discharge: per EV, (slot, column)
        self.ev_z: dict[str, list[tuple[int, int]]] = {}  # V2G charge-or-discharge binaries: per EV, (slot, column)
        # V2G cars with steps, for `_separate_v2g_step_mir`: energy row, state-of-charge columns, rows bounding d[t]
        self.v2g_rows: dict[str, tuple[int, list[tuple[int, int]], dict[int, list[int]]]] = {}
        self.v2g_mir_rows: list[int] = []  # the cuts it added
        self.hp_p: dict[str, tuple[str, list[Term]]] = {}  # space-heating heat pumps: id -> (device, per slot)
        self.hp_count_cuts: list[tuple[int, int, float, float]] = []  # (S[t], S[s-1], lo, hi), see _add_heat_pump_counts
        self.hp_mir_cuts: list[tuple[int, int, int, float, float]] = []  # (S[t], S[s-1], T[s-1], coef, lb), ditto
        self.imp: list[int] = []
        self.exp: list[Optional[int]] = []
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
        for hp in cp.problem.heat_pumps:
            _add_heat_pump(self, hp)
        _add_circuits(self)
        _add_v2g_no_export(self)
        _add_site(self)
        _add_capacity_charges(self)
        _separate_heat_pump_counts(self)  # these three look at the LP of everything else
        _add_cycle_cost_floor(self)
        _separate_cliques_and_floors(self)
        _separate_v2g_step_mir(self)

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
        _extract_physics(self, x, sch)
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
    """Cycles of one appliance: at most one busy per slot (clique rows, tight in the LP); heavy starts
    that cannot share a slot under the import limit exclude each other (compile.power_cliques)."""
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
        _break_symmetry(mm)
    if mm.elastic or not mm.cycle_cuts:
        return  # elastic: the import limit and the cycles themselves may give way there
    for items in power_cliques(cp):
        cols = [mm.cycle_x[cp.cycles[i].cycle.id][k][0] for i, k in items]
        m.row(cols, [1.0] * len(cols), -INF, 1.0)


def _item_column(mm: MilpModel, item: tuple) -> int:
    """The column of a `compile.heater_cliques` item: a heater's on-binary in a slot, or a cycle start."""
    kind, a, b = item
    if kind == "th":
        return mm.th_p[a][b][0]
    if kind == "hp":
        return mm.hp_p[a][1][b][0]
    return mm.cycle_x[mm.cp.cycles[a].cycle.id][b][0]


def _break_symmetry(mm: MilpModel) -> None:
    """Interchangeable cycles of one appliance (compile.interchangeable_cycles) run in order."""
    res = mm.cp.problem.grid.resolution_min
    for a, b in interchangeable_cycles(mm.cp):
        xa, xb = mm.cycle_x[a.cycle.id], mm.cycle_x[b.cycle.id]
        # start(b) >= start(a) + duration (they cannot overlap anyway)
        occ = a.options[0].occupied[1] - a.options[0].occupied[0]
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
    if em.levels_kw is not None and not mm.elastic and mm.round_ev_energy and not e.v2g:
        lo_kwh, hi = _step_rounded_energy(em, dt, lo_kwh, hi)
    idx, val = _add_ev_discharge(mm, em, slots, idx, val)
    if mm.elastic:
        s = mm.slack(ELASTIC_PER_KWH, lambda v, e=e: Violation(e.id, "energy", v, "kWh", None,
                                                                f"EV '{e.name}' gets {v:.1f} kWh too little"))
        idx, val = idx + [s], val + [1.0]
    r = m.row(idx, val, lo_kwh, hi)
    if e.id in mm.v2g_rows:
        mm.v2g_rows[e.id] = (r,) + mm.v2g_rows[e.id][1:]
    _add_ev_min_state(mm, em, slots)


def _add_ev_min_state(mm: MilpModel, em: EVModel, slots: list[tuple[int, list[Term]]]) -> None:
    """Energy delivered (less any V2G discharge) in the slots before boundary k >= the requirement."""
    e, dt = em.ev, mm.cp.dt_h
    for k, kwh, r in min_state_bounds(mm.cp.problem, e.min_energy_at):
        terms = [(j, c * dt * e.efficiency) for t, ts in slots if t < k for j, c in ts]
        terms += [(d, -dt / e.discharge_efficiency) for t, d in mm.ev_d.get(e.id, []) if t < k]  # V2G
        idx, val = [j for j, _ in terms], [c for _, c in terms]
        if mm.elastic:
            s = mm.slack(ELASTIC_PER_KWH, lambda v, e=e, k=k: Violation(
                e.id, "min_energy_at", v, "kWh", max(0, k - 1), f"EV '{e.name}' gets {v:.1f} kWh too little by then"))
            idx, val = idx + [s], val + [1.0]
        mm.m.row(idx, val, kwh, INF)


def _add_ev_discharge(mm: MilpModel, em: EVModel, slots: list[tuple[int, list[Term]]], idx: list[int],
                      val: list[float]) -> tuple[list[int], list[float]]:
    """V2G (issue 14 item 3): discharge columns, the car's energy after every slot within [floor, room],
    and no charging while discharging where doing both could pay (the battery's slots) or where charging is
    stepped / on-off (else a step while discharging would fake an in-between power): with steps, the step
    binaries themselves keep the discharge at 0; otherwise a charge-or-discharge binary.
    Returns the delivered-energy row's terms with the discharge added."""
    e, m, cp = em.ev, mm.m, mm.cp
    if not e.v2g or not slots:
        return idx, val
    dt = cp.dt_h
    top = max(em.levels_kw) if em.levels_kw else e.max_power_kw
    room = em.max_kwh if em.max_kwh is not None else INF
    prev: Optional[int] = None
    cells = []
    socs: list[tuple[int, int]] = []
    bounding: dict[int, list[int]] = {}
    for t, terms in slots:
        d = m.var(0.0, e.max_discharge_kw)
        cells.append((t, d))
        mm.loads[t].append((d, -1.0))
        soc = m.var(e.floor_kwh, room)
        row = [soc] + [j for j, _ in terms] + [d] + ([prev] if prev is not None else [])
        coef = [1.0] + [-c * dt * e.efficiency for _, c in terms] + [dt / e.discharge_efficiency] + (
            [-1.0] if prev is not None else [])
        m.row(row, coef, 0.0, 0.0)
        prev = soc
        socs.append((t, soc))
        if em.levels_kw is not None and not mm.relax_ev_steps:
            # steps: no discharge while a step is on (the step binaries already say "charging")
            bounding[t] = [m.row([d] + [j for j, _ in terms], [1.0] + [e.max_discharge_kw] * len(terms), -INF,
                                 e.max_discharge_kw)]
        elif t in cp.exclusive_battery_slots or em.levels_kw is not None or em.semicontinuous:
            z = m.var(0.0, 1.0, 0.0, integer=True)
            mm.ev_z.setdefault(e.id, []).append((t, z))
            mm.int_rules.append((z, t, lambda s, net, t=t, eid=e.id: float(s.ev_kw[eid][t] > 1e-9), 1.0, 0.0, e.id))
            m.row([j for j, _ in terms] + [z], [c for _, c in terms] + [-top], -INF, 0.0)
            m.row([d, z], [1.0, e.max_discharge_kw], -INF, e.max_discharge_kw)
    mm.ev_d[e.id] = cells
    if em.levels_kw is not None and not mm.relax_ev_steps and not mm.elastic and step_unit_kw(em) is not None:
        mm.v2g_rows[e.id] = (-1, socs, bounding)
    return idx + [d for _, d in cells], val + [-dt / e.discharge_efficiency] * len(cells)


def _add_v2g_no_export(mm: MilpModel) -> None:
    """A V2G car that may not export only covers the home's own consumption: per slot, the net import
    plus what PV, batteries and the cars that may export produce stays >= 0 (issue 14 item 3)."""
    cp = mm.cp
    p = cp.problem
    if not any(e.v2g and not e.export_allowed for e in p.ev_sessions):
        return
    gen = {j for cols in mm.pv_u.values() for j in cols}
    gen |= {j for _c, d, _s in mm.bat.values() for j in d}
    gen |= {j for e in p.ev_sessions if e.export_allowed for _t, j in mm.ev_d.get(e.id, [])}
    slots = {t for e in p.ev_sessions if not e.export_allowed for t, _j in mm.ev_d.get(e.id, [])}
    for t in sorted(slots):
        terms = [(j, c) for j, c in mm.loads[t] if j not in gen]
        r = mm.m.row([j for j, _ in terms], [c for _, c in terms], -(mm.const[t] + cp.pv_fixed_kw[t]), INF)
        for e in p.ev_sessions:
            if not e.export_allowed and e.id in mm.v2g_rows and t in mm.v2g_rows[e.id][2]:
                mm.v2g_rows[e.id][2][t].append(r)


def _extract_physics(mm: MilpModel, x, sch: Schedule) -> None:
    """Issue 14 decisions: V2G discharge and space-heating power."""
    for eid, cells in mm.ev_d.items():
        d = [0.0] * mm.cp.n
        for t, j in cells:
            d[t] = _clean(x[j])
        sch.ev_discharge_kw[eid] = d
    for hid, (_dev, terms) in mm.hp_p.items():
        sch.heat_pump_kw[hid] = [_clean(c * x[j]) for j, c in terms]


def _step_rounded_energy(em: EVModel, dt: float, lo: float, hi: float) -> tuple[float, float]:
    """Energy bounds rounded to what whole current steps can deliver (an exact cut, README "EV current steps").

    `lo` rounds up and `hi` down to the grid of `step_grid`. Valid for every integer plan, and
    it also holds for the relaxed EV power of the relaxed model, whose bound therefore stays a
    lower bound of the real model while getting tighter.
    """
    grid = step_grid(em, dt)
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
    _add_battery_min_state(mm, b, soc)
    _add_battery_wear(mm, b, c, d, soc)
    mm.bat[b.id] = (c, d, soc)


def _add_battery_wear(mm: MilpModel, b: Battery, c: list[int], d: list[int], soc: list[int]) -> None:
    """Wear cost per kWh through the battery, a cap on full-equivalent cycles per local day, and the SoC
    taper of charge / discharge power (linear in the SoC at the slot's end: concave, so no binaries)."""
    m, cp = mm.m, mm.cp
    dt, cap = cp.dt_h, b.capacity_kwh
    wear = money_weight(cp.problem) * b.wear_cost_eur_per_kwh * dt
    for j in c + d:
        m.cost[j] += wear
    if b.max_cycles_per_day is not None:
        for ts, share in day_slot_groups(cp.problem):
            cols = [c[t] for t in ts] + [d[t] for t in ts]
            m.row(cols, [dt] * len(cols), -INF, 2 * b.max_cycles_per_day * cap * share)
    # the limit at the slot's end SoC, where the taper is lowest, holds the power below the curve all slot long
    if b.charge_taper_above_soc_pct is not None:  # c <= full + k (cap - soc_end)
        k = (b.max_charge_kw - b.charge_kw_at_full) / (cap - cap * b.charge_taper_above_soc_pct / 100)
        for t in range(cp.n):
            m.row([c[t], soc[t]], [1.0, k], -INF, b.charge_kw_at_full + k * cap)
    if b.discharge_taper_below_soc_pct is not None:  # d <= empty + k soc_end
        k = (b.max_discharge_kw - b.discharge_kw_at_empty) / (cap * b.discharge_taper_below_soc_pct / 100)
        for t in range(cp.n):
            m.row([d[t], soc[t]], [1.0, -k], -INF, b.discharge_kw_at_empty)


def _add_battery_min_state(mm: MilpModel, b: Battery, soc: list[int]) -> None:
    """Stored energy after k slots >= the requirement (k = 0, the initial state, is a pre-check)."""
    for k, kwh, r in min_state_bounds(mm.cp.problem, b.min_energy_at):
        if k == 0:
            continue
        if mm.elastic:
            s = mm.slack(ELASTIC_PER_KWH, lambda v, b=b, r=r, k=k: Violation(
                b.id, "min_energy_at", v, "kWh", k - 1, f"battery '{b.name}' holds {v:.1f} kWh too little"))
            mm.m.row([soc[k - 1], s], [1.0, 1.0], kwh, INF)
        else:
            mm.m.lb[soc[k - 1]] = max(mm.m.lb[soc[k - 1]], kwh)


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
    if not th.modulating and not mm.elastic and mm.heating_cuts:
        _add_heating_counts(mm, th, [j for j, _ in terms])


def _add_heating_counts(mm: MilpModel, th: ThermalStorage, on: list[int]) -> None:
    """Whole heating slots: S_t, the number of on-slots up to t, is an integer, so the comfort band's
    bounds on it round inward (an exact Chvatal-Gomory cut, see `compile.heating_count_bounds`)."""
    m = mm.m
    lo, hi, suffix = heating_count_bounds(th, mm.cp.n, mm.cp.dt_h)
    S: list[int] = []
    for t in range(mm.cp.n):
        j = m.var(lo[t], max(lo[t], hi[t]))
        m.row([j, on[t]] + S[-1:], [1.0, -1.0] + [-1.0] * len(S[-1:]), 0.0, 0.0)
        S.append(j)
    for t, need in suffix:
        m.row([S[-1], S[t]], [1.0, -1.0], float(need), INF)


def _add_capacity_charges(mm: MilpModel) -> None:
    """Peak import per billing period: peak >= every window's average import, >= the period's peak so far;
    the objective pays the price on the peak above that floor."""
    m, p = mm.m, mm.cp.problem
    for cc in p.capacity_charges:
        peak = m.var(cc.peak_floor_kw, INF, money_weight(p) * cc.price_eur_per_kw)
        m.offset -= money_weight(p) * cc.price_eur_per_kw * cc.peak_floor_kw
        windows = capacity_windows(p, cc)
        for ts in windows:
            m.row([mm.imp[t] for t in ts] + [peak], [1.0 / len(ts)] * len(ts) + [-1.0], -INF, 0.0)
        if mm.cycle_cuts and not mm.elastic:  # the peak EV steps and heater on-slots force (compile.capacity_*_floor)
            m.lb[peak] = max(m.lb[peak], capacity_ev_peak_floor(mm.cp, windows),
                             capacity_heater_peak_floor(mm.cp, windows))
            _add_ev_window_cuts(mm, peak, windows)
        if mm.cycle_cuts and not mm.elastic:  # the peak each cycle start forces (compile.capacity_cycle_floors)
            for i, floors in capacity_cycle_floors(mm.cp, windows):
                xs = [j for j, _sm in mm.cycle_x[mm.cp.cycles[i].cycle.id]]
                m.row(xs + [peak], floors + [-1.0], -INF, 0.0)


def _add_ev_window_cuts(mm: MilpModel, peak: int, windows: list[list[int]]) -> None:
    """What an EV with steps or on/off charging draws in a metering window, bounded by whole steps at the peak's
    floor and rising with the peak above it (compile.capacity_ev_window_cuts)."""
    p0 = mm.m.lb[peak]
    for i, slots, a0, slope in capacity_ev_window_cuts(mm.cp, windows, p0):
        cells = dict(mm.ev_p[mm.cp.evs[i].ev.id])
        terms = [(j, c) for t in slots for j, c in cells[t]]
        mm.m.row([j for j, _ in terms] + [peak], [c for _, c in terms] + [-slope], -INF, a0 - slope * p0)


def _add_cycle_cost_floor(mm: MilpModel) -> None:
    """The grid cost is at least what each cycle's whole start costs on its own (compile.cycle_cost_floors).

    Added only when the LP relaxation of the rest violates it: where the LP already keeps it, the row lifts
    nothing and only changed HiGHS' path (`appliances-258`: 1.5 -> 4.1 s of CPU, README "Many cycles")."""
    cp = mm.cp
    floors = cycle_cost_floors(cp) if mm.cycle_cuts and not mm.elastic else None
    if floors is None:
        return
    slots, f0, per_cycle = floors
    idx, val = [], []
    for t in slots:
        idx.append(mm.imp[t])
        val.append(cp.w_imp[t] * cp.dt_h)
        if mm.exp[t] is not None:
            idx.append(mm.exp[t])
            val.append(cp.w_exp[t] * cp.dt_h)
    for i, extra in per_cycle:
        for (j, _sm), e in zip(mm.cycle_x[cp.cycles[i].cycle.id], extra):
            idx.append(j)
            val.append(-e)
    lo = f0 - 1e-9 * max(1.0, abs(f0))
    x = _lp_solution(mm)
    if x is not None and sum(v * x[j] for j, v in zip(idx, val)) >= lo - 1e-7 * max(1.0, abs(f0)):
        return  # the LP keeps it already
    mm.m.row(idx, val, lo, INF)


def _separate_cliques_and_floors(mm: MilpModel, rounds: int = 3) -> None:
    """On/off heaters and cycle starts that cannot run together in a slot (compile.heater_cliques: at most one) and
    each PV-surplus slot's grid cost by whole starts and on-slots (compile.slot_cost_floors), added as the LP
    relaxation violates them (up to `rounds` LP solves; none where neither applies). All at once they slowed HiGHS
    where they lift nothing (`battery-152`, HiGHS alone: 1.4 s of CPU -> 1.8-3.6 s; separated 1.5 s)."""
    cp = mm.cp
    if not mm.cycle_cuts or mm.elastic:
        return  # elastic: the import limit and the cycles may give way there
    pending: list[tuple[list[int], list[float], float]] = []  # rows idx . val >= lo
    for items in heater_cliques(cp):
        cols = [_item_column(mm, it) for it in items]
        pending.append((cols, [-1.0] * len(cols), -1.0))
    for t, f0, items in slot_cost_floors(cp):
        idx, val = [mm.imp[t]], [cp.w_imp[t] * cp.dt_h]
        if mm.exp[t] is not None:
            idx.append(mm.exp[t])
            val.append(cp.w_exp[t] * cp.dt_h)
        for item, extra in items:
            idx.append(_item_column(mm, item))
            val.append(-extra)
        pending.append((idx, val, f0 - 1e-9 * max(1.0, abs(f0))))
    for _ in range(rounds):
        x = _lp_solution(mm) if pending else None
        if x is None:
            return
        hit = [k for k, (idx, val, lo) in enumerate(pending)
               if sum(v * x[j] for j, v in zip(idx, val)) < lo - 1e-7 * max(1.0, abs(lo))]
        if not hit:
            return
        for k in hit:
            idx, val, lo = pending[k]
            mm.m.row(idx, val, lo, INF)
        gone = set(hit)
        pending = [r for k, r in enumerate(pending) if k not in gone]


def _lp_solution(mm: MilpModel) -> Optional[list[float]]:
    """The LP relaxation's optimal columns (HiGHS), or None (no highspy, or no optimum)."""
    try:
        import highspy
    except ImportError:  # pragma: no cover - exercised only without highspy
        return None
    h = mm.m.to_highs(5.0, relax=True)
    h.setOptionValue("output_flag", False)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return list(h.getSolution().col_value)


def _add_export_slack(mm: MilpModel, exp: int, t: int) -> None:
    """Explanation mode: export above the limit at a price (PV that cannot be curtailed must go somewhere)."""
    E = mm.cp.problem.site.export_limit_kw
    mm.m.ub[exp] = INF
    s = mm.slack(ELASTIC_PER_KWH * mm.cp.dt_h, lambda v, t=t: Violation("site", "export_limit", v, "kW", t,
                                                                        f"export {v:.2f} kW above the limit"))
    mm.m.row([exp, s], [1.0, -1.0], -INF, E)


def _add_heat_pump(mm: MilpModel, hp: SpaceHeating) -> None:
    """Space heating (issue 14 item 5): indoor temperature after each slot from the first-order building model
    (`SpaceHeating`), inside the comfort band (elastic: slack per K, priced as the heat it stands for); power
    modulating, or on/off with minimum run and off times."""
    m, cp = mm.m, mm.cp
    n, dt = cp.n, cp.dt_h
    a = hp.decay(dt)
    terms: list[Term] = []
    on: list[int] = []
    for t in range(n):
        if hp.modulating:
            terms.append((m.var(0.0, hp.max_power_kw), 1.0))
        else:
            j = m.var(0.0, 1.0, 0.0, integer=True)
            mm.int_rules.append((j, t, lambda s, net, t=t, hid=hp.id: float(s.heat_pump_kw[hid][t] > 1e-6), 1.0, 0.0,
                                 hp.id))
            terms.append((j, hp.max_power_kw))
            on.append(j)
    prev: Optional[int] = None
    temps: list[int] = []
    for t in range(n):
        lo, hi = (-INF, INF) if mm.elastic else (hp.comfort_min_c[t], hp.comfort_max_c[t])
        temp = m.var(lo, hi)
        temps.append(temp)
        j, coef = terms[t]
        idx, val = [temp, j], [1.0, -hp.gain_c_per_kw(t, dt) * coef]
        rhs = hp.drift_c(t, dt) + (a * hp.initial_indoor_c if prev is None else 0.0)
        if prev is not None:
            idx.append(prev)
            val.append(-a)
        m.row(idx, val, rhs, rhs)
        prev = temp
        mm.loads[t].append((j, coef))
        if mm.elastic:
            per_k = ELASTIC_PER_KWH * hp.heat_capacity_kwh_per_k
            s1 = mm.slack(per_k, lambda v, t=t: Violation(hp.id, "comfort_min", v, "K", t,
                                                          f"'{hp.name}' {v:.2f} K below its comfort band"))
            s2 = mm.slack(per_k, lambda v, t=t: Violation(hp.id, "comfort_max", v, "K", t,
                                                          f"'{hp.name}' {v:.2f} K above its comfort band"))
            m.row([temp, s1], [1.0, 1.0], hp.comfort_min_c[t], INF)
            m.row([temp, s2], [1.0, -1.0], -INF, hp.comfort_max_c[t])
    if on:
        _add_min_run_off(mm, hp, on)
        if not mm.elastic and mm.heating_cuts:
            _add_heat_pump_counts(mm, hp, on, temps)
    mm.hp_p[hp.id] = (hp.device, terms)


def _add_heat_pump_counts(mm: MilpModel, hp: SpaceHeating, on: list[int], temps: list[int]) -> None:
    """Whole on-slots over intervals (exact cuts, see `compile.heat_pump_count_cuts` and `heat_pump_mir_cuts`) on
    the running count S[t] = on[0] + ... + on[t] and the temperature T[s-1] before the interval: the counts from
    the start are bounds on S[t]; the others wait for `_separate_heat_pump_counts`, which adds only the ones the
    LP relaxation violates."""
    m = mm.m
    S: list[int] = []
    for t in range(len(on)):
        j = m.var(0.0, t + 1.0)
        m.row([j, on[t]] + S[-1:], [1.0, -1.0] + [-1.0] * len(S[-1:]), 0.0, 0.0)
        S.append(j)
    for s, t, lo, hi in hp_count_cuts(mm.cp, hp):
        if s == 0:
            m.lb[S[t]], m.ub[S[t]] = max(m.lb[S[t]], float(lo)), min(m.ub[S[t]], float(hi))
        else:
            mm.hp_count_cuts.append((S[t], S[s - 1], float(lo), float(hi)))
    for s, t, coef, rhs in heat_pump_mir_cuts(hp, len(on), mm.cp.dt_h):
        # S[t] - S[s-1] + coef (T[s-1] - floor[s-1]) >= rhs
        mm.hp_mir_cuts.append((S[t], S[s - 1], temps[s - 1], coef, rhs + coef * hp.comfort_min_c[s - 1]))


def _separate_heat_pump_counts(mm: MilpModel, rounds: int = 4) -> None:
    """Adds the interval counts the LP relaxation violates, LP after LP (at most `rounds`). All of them at once
    (2,800 rows on `battery-8`) lifted nothing there and slowed HiGHS on most on/off heat-pump homes; the violated
    ones lift `thermal-33`'s LP as far as all of them (gap 6.9 % with the counts from the start alone -> 6.4 %)."""
    import numpy as np

    pending = mm.hp_count_cuts
    mir = np.array(mm.hp_mir_cuts, dtype=float).reshape(-1, 5)  # thousands of them at 5 minutes: checked at once
    cols = mir[:, :3].astype(int)
    for _ in range(rounds):
        x = _lp_solution(mm) if pending or len(mir) else None
        if x is None:
            return
        hit = [c for c in pending if not c[2] - 1e-6 <= x[c[0]] - x[c[1]] <= c[3] + 1e-6]
        xs = np.asarray(x)
        hit_mir = xs[cols[:, 0]] - xs[cols[:, 1]] + mir[:, 3] * xs[cols[:, 2]] < mir[:, 4] - 1e-6
        if not hit and not hit_mir.any():
            return
        for a, b, lo, hi in hit:
            mm.m.row([a, b], [1.0, -1.0], lo, hi)
        for (a, b, temp), (coef, lb) in zip(cols[hit_mir].tolist(), mir[hit_mir, 3:].tolist()):
            mm.m.row([a, b, temp], [1.0, -1.0, coef], lb, INF)
        added = set(hit)
        pending = [c for c in pending if c not in added]
        mir, cols = mir[~hit_mir], cols[~hit_mir]


def _add_min_run_off(mm: MilpModel, hp: SpaceHeating, on: list[int]) -> None:
    """Minimum run and off times in the start-up / shut-down form of Rajan and Takriti (whose LP is the convex
    hull of the on/off patterns): on[t] - on[t-1] = up[t] - down[t], the starts of the last `run` slots are at
    most on[t], the stops of the last `off` slots at most 1 - on[t] (off before the horizon; cut at its end)."""
    m = mm.m
    run, off = hp.run_slots(mm.cp.problem.grid.resolution_min)
    n = len(on)
    up = [m.var(0.0, 1.0) for _ in range(n)]
    down = [m.var(0.0, 1.0) for _ in range(n)]
    for t in range(n):
        before = [on[t - 1]] if t > 0 else []
        m.row([on[t], up[t], down[t]] + before, [1.0, -1.0, 1.0] + [-1.0] * len(before), 0.0, 0.0)
        if run > 1:
            starts = up[max(0, t - run + 1):t + 1]
            m.row(starts + [on[t]], [1.0] * len(starts) + [-1.0], -INF, 0.0)
        if off > 1:
            stops = down[max(0, t - off + 1):t + 1]
            m.row(stops + [on[t]], [1.0] * len(stops) + [1.0], -INF, 1.0)


def _add_circuits(mm: MilpModel) -> None:
    """Shared circuits: -limit <= the named devices' summed power <= limit in every slot (elastic: slack)."""
    m = mm.m
    for ci in mm.cp.problem.circuits:
        terms: list[list[Term]] = [[] for _ in range(mm.cp.n)]
        const = [0.0] * mm.cp.n
        for dev in ci.devices:
            ts, cs = device_terms(mm, dev, float)
            for t in range(mm.cp.n):
                terms[t] += ts[t]
                const[t] += cs[t]
        L = ci.limit_kw
        for t in range(mm.cp.n):
            idx, val = [j for j, _ in terms[t]], [c for _, c in terms[t]]
            if not idx:
                if abs(const[t]) <= L + 1e-9:
                    continue
                idx, val = [m.var(0.0, 0.0)], [1.0]  # fixed loads alone above the limit (the pre-check says so)
            if mm.elastic:
                # a breaker is physics: the explanation rather gives up energy or a cycle than the limit
                s = mm.slack(10 * ELASTIC_PER_KWH * mm.cp.dt_h, lambda v, t=t, ci=ci: Violation(
                    ci.id, "circuit_limit", v, "kW", t, f"circuit '{ci.name}' {v:.2f} kW above its limit"))
                m.row(idx + [s], val + [-1.0], -INF, L - const[t])
                s2 = mm.slack(10 * ELASTIC_PER_KWH * mm.cp.dt_h, lambda v, t=t, ci=ci: Violation(
                    ci.id, "circuit_limit", v, "kW", t, f"circuit '{ci.name}' {v:.2f} kW above its limit"))
                m.row(idx + [s2], val + [1.0], -L - const[t], INF)
            else:
                m.row(idx, val, -L - const[t], L - const[t])


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
        if mm.elastic and exp is not None:
            _add_export_slack(mm, exp, t)
        idx = [imp] + ([exp] if exp is not None else []) + [j for j, _ in mm.loads[t]]
        val = [1.0] + ([-1.0] if exp is not None else []) + [-c for _, c in mm.loads[t]]
        m.row(idx, val, mm.const[t], mm.const[t])
        if mm.elastic:
            s = mm.slack(ELASTIC_PER_KWH * dt, lambda v, t=t: Violation("site", "import_limit", v, "kW", t,
                                                                         f"import {v:.2f} kW above the limit"))
            m.row([imp, s], [1.0, -1.0], -INF, L)
        if exp is not None and t in cp.exclusive_grid_slots:
            z = m.var(0.0, 1.0, 0.0, integer=True)
            mm.int_rules.append((z, t, lambda s, net, t=t: float(net[t] > 1e-9), 1.0, 0.0, "site"))
            m.row([imp, z], [1.0, -(L if not mm.elastic else 1e4)], -INF, 0.0)
            m.row([exp, z], [1.0, E if not mm.elastic else 1e4], -INF, E if not mm.elastic else 1e4)
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


def _separate_v2g_step_mir(mm: MilpModel, rounds: int = 3) -> None:
    """Gomory's mixed-integer rounding on the energy of a V2G car with current steps (README "V2G cars with
    steps: the MIR cut"), the violated ones, LP after LP. Its charging is a whole number of units
    q = efficiency x dt x gcd(steps) but its discharge is continuous, so the plain cars' rounding of the energy row
    does not apply; the LP then charges a fraction of a unit more and discharges it where discharging pays most
    (`ev-115`). The base row is the energy delivered after slot a >= need - state at a (a: none or a slot where
    the LP's state is at the floor), each discharge the LP uses replaced by the slack of its tightest bounding row
    ("no export", "no discharge while a step is on"; its column's bound is left to `_mir`); rounding that row
    divided by q is valid for every integer plan (it is an aggregation of valid rows; integer columns >= 0,
    continuous ones within their bounds)."""
    if not mm.v2g_rows:
        return
    for _ in range(rounds):
        x = _lp_solution(mm)
        if x is None:
            return
        cuts = [c for eid, rows in mm.v2g_rows.items() for c in _v2g_mir_cuts(mm, eid, rows, x)]
        if not cuts:
            return
        for idx, val, lo in cuts:
            mm.v2g_mir_rows.append(mm.m.row(idx, val, lo, INF))


def _row_terms(m: LinModel, r: int) -> dict[int, float]:
    a, b = m.row_start[r], m.row_start[r + 1]
    out: dict[int, float] = {}
    for j, v in zip(m.row_idx[a:b], m.row_val[a:b]):
        out[j] = out.get(j, 0.0) + v
    return out


def _v2g_mir_cuts(mm: MilpModel, eid: str, rows: tuple[int, list[tuple[int, int]], dict[int, list[int]]],
                  x: list[float]) -> list[tuple[list[int], list[float], float]]:
    """The most violated MIR cut of one V2G car with steps (at most one), as (columns, coefficients, lower bound)."""
    m = mm.m
    energy, socs, bounding = rows
    em = next(em for em in mm.cp.evs if em.ev.id == eid)
    e = em.ev
    q = step_grid(em, mm.cp.dt_h)[1]
    need = m.row_lo[energy]
    if not math.isfinite(need) or need <= 0:
        return []
    d_col = dict(mm.ev_d[eid])
    charge = {t: terms for t, terms in mm.ev_p[eid]}
    w_c, w_d = mm.cp.dt_h * e.efficiency, mm.cp.dt_h / e.discharge_efficiency
    starts = [None] + [(t, s) for t, s in socs if x[s] <= m.lb[s] + 1e-7]
    best = None
    for start in starts:
        base: dict[int, float] = {}
        b = need
        for t, terms in charge.items():
            if start is None or t > start[0]:
                for j, c in terms:
                    base[j] = base.get(j, 0.0) + c * w_c
                base[d_col[t]] = base.get(d_col[t], 0.0) - w_d
        if start is not None:
            base[start[1]] = 1.0  # the state at a, >= its floor (continuous, complemented at its lower bound)
        slacks: list[tuple[float, dict[int, float], float]] = []  # (coefficient, slack = terms + constant)
        for t, _terms in charge.items():
            d = d_col[t]
            if d not in base or x[d] <= 1e-9:
                continue
            choice = None
            for r in bounding.get(t, []):
                rt = _row_terms(m, r)
                mu = -base[d] / rt[d]
                if mu < 0 and math.isfinite(m.row_lo[r]):
                    sl = ({j: v for j, v in rt.items()}, -m.row_lo[r], -mu)
                elif mu > 0 and math.isfinite(m.row_hi[r]):
                    sl = ({j: -v for j, v in rt.items()}, m.row_hi[r], mu)
                else:
                    continue
                val = sum(v * x[j] for j, v in sl[0].items()) + sl[1]
                if choice is None or val < choice[0]:
                    choice = (val, mu, rt, sl)
            if choice is None or choice[0] * 2.0 > x[d]:
                continue  # no bound near the LP's discharge: leave it (dropped or complemented below)
            _val, mu, rt, (terms, const, coef) = choice
            for j, v in rt.items():
                base[j] = base.get(j, 0.0) + mu * v  # the discharge column cancels
            b += coef * const  # mu x the bound of the side used (coef x const on either side)
            slacks.append((coef, terms, const))
        cut = _mir(m, base, b, slacks, q, x)
        if cut is not None and (best is None or cut[3] > best[3]):
            best = cut
    return [best[:3]] if best is not None else []


def _mir(m: LinModel, base: dict[int, float], b: float, slacks: list[tuple[float, dict[int, float], float]],
         q: float, x: list[float]) -> Optional[tuple[list[int], list[float], float, float]]:
    """Rounds base . x + sum(coef x slack) >= b (slacks >= 0) divided by q: integer columns >= 0 get
    floor(a) + min(frac(a), f) / f, continuous ones are moved to a bound (dropped where that only weakens the row,
    kept over f otherwise), the slacks kept over f; >= ceil(b / q). (columns, coefficients, lower bound,
    violation at x) or None where it is not a violated cut."""
    beta = b / q
    kept: dict[int, float] = {}  # continuous part, before division by f
    const = 0.0  # kept terms' constants (left side)
    ints: dict[int, float] = {}
    for j, v in base.items():
        a = v / q
        if abs(a) < 1e-12:
            continue
        if m.integer[j]:
            if m.lb[j] != 0.0:
                return None
            ints[j] = float(round(a)) if abs(a - round(a)) < 1e-9 else a
        elif a > 0:
            if not math.isfinite(m.lb[j]):
                return None
            beta -= a * m.lb[j]
            kept[j] = kept.get(j, 0.0) + a
            const -= a * m.lb[j]
        elif math.isfinite(m.ub[j]) and (not math.isfinite(m.lb[j]) or m.ub[j] - x[j] < x[j] - m.lb[j]):
            beta -= a * m.ub[j]  # a x = a ub + (-a)(ub - x): complemented
            kept[j] = kept.get(j, 0.0) + a
            const -= a * m.ub[j]
        elif math.isfinite(m.lb[j]):
            beta -= a * m.lb[j]  # a (x - lb) <= 0: dropped
        else:
            return None
    for coef, terms, c0 in slacks:
        for j, v in terms.items():
            kept[j] = kept.get(j, 0.0) + coef * v / q
        const += coef * c0 / q
    f = beta - math.floor(beta)
    if f < 1e-3 or f > 1 - 1e-3:
        return None
    cut = {j: (math.floor(a) + min(a - math.floor(a), f) / f) for j, a in ints.items()}
    for j, v in kept.items():
        cut[j] = cut.get(j, 0.0) + v / f
    lo = math.ceil(beta) - const / f
    cut = {j: v for j, v in cut.items() if abs(v) > 1e-12}
    lhs = sum(v * x[j] for j, v in cut.items())
    scale = max(1.0, abs(lo))
    if lhs >= lo - 1e-6 * scale:
        return None
    return list(cut), list(cut.values()), lo - 1e-9 * scale, (lo - lhs) / scale
