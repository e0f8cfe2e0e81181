"""CP-SAT backend: the same model as milp.py in integers.

Units: power in W (0.1 W on small homes, down to 0.01 W with a battery taper: see power_units_per_kw; inputs are 1 W,
so the slot balance is exact),
stored energy in Wh/S with S chosen per device so that the efficiency
coefficients keep >= 5 significant digits (rounded conservatively: charging
floors, discharging/draining ceils, so every integer solution is feasible in
floats), objective in units of 1/K EUR with K chosen so that the largest
price coefficient is ~1e6; without storage prices sit on the devices' variables (see _add_site).
"""
from __future__ import annotations

import math
import time
from typing import Optional

from ortools.sat.python import cp_model

from ..compile import (THROUGHPUT_EPS_PER_KWH, Compiled, CycleModel, EVModel, capacity_cycle_floors,
                       capacity_ev_peak_floor, capacity_heater_peak_floor, capacity_windows, day_slot_groups,
                       device_terms, interchangeable_cycles, min_state_bounds, money_weight, power_cliques,
                       stores_energy)
from ..problem import Battery, PV, SpaceHeating, ThermalStorage
from ..result import Schedule, Status
from .common import BackendResult, rel_gap

def power_units_per_kw(cp: Compiled) -> float:
    """1 W, or finer when one W-slot is a noticeable part of the objective (small homes, long slots).

    CP-SAT's continuous devices move in whole units; the rounding loss is about
    one unit-slot per energy-limited storage, so the unit is chosen to keep that
    below ~1e-5 of the home's gross objective (sum of |weight| x base load). A battery
    taper binds the charge slot by slot, each slot losing up to a unit: there the loss is
    up to one unit per slot, and the unit may go down to 0.01 W (held-out `battery-1292`: CP-SAT's optimum 1.55e-4
    above HiGHS' at 1 W, `full-628` 1.07e-4 at 0.1 W).
    """
    wmax = max([abs(w) for w in cp.w_imp + cp.w_exp] + [1e-12])
    gross = sum(abs(cp.w_imp[t]) * cp.base_kw[t] * cp.dt_h for t in range(cp.n)) or 1.0
    per_w_slot = wmax * cp.dt_h / 1000.0
    finest = 1
    if any(b.charge_taper_above_soc_pct is not None or b.discharge_taper_below_soc_pct is not None
           for b in cp.problem.batteries):
        per_w_slot, finest = per_w_slot * cp.n, 2
    k = max(0, min(finest, math.ceil(math.log10(per_w_slot / (1e-5 * gross)))))
    return 1000.0 * 10 ** k


def _scale(coef_per_w: float) -> int:
    """Energy scale S (units per Wh) so that a coefficient of `coef_per_w` Wh per W-slot is >= 1e5 units."""
    return 10 ** max(0, math.ceil(math.log10(1e5 / max(coef_per_w, 1e-12))))


class CpsatModel:
    def __init__(self, cp: Compiled, symmetry: bool = True, hint: Optional[Schedule] = None):
        self.cp = cp
        self.W = power_units_per_kw(cp)
        self.md = cp_model.CpModel()
        n = cp.n
        self.loads: list[list[tuple[object, int]]] = [[] for _ in range(n)]
        self.const = [self.w(cp.base_kw[t]) - self.w(cp.pv_fixed_kw[t]) for t in range(n)]
        self.obj: list[tuple[object, float]] = []  # (var, objective units per unit of var)
        self.offset = 0.0
        self.busy: dict[str, list[list]] = {}
        self.busy_fixed: dict[str, list[int]] = {}
        self.cycle_x: dict[str, list[tuple[object, float]]] = {}
        self.cycle_fixed: dict[str, float] = {}
        self.ev_p: dict[str, list[tuple[int, list[tuple[object, int]]]]] = {}
        self.bat: dict[str, tuple[list, list]] = {}
        self.pv_u: dict[str, list] = {}
        self.th_p: dict[str, list[tuple[object, int]]] = {}
        self.ev_d: dict[str, list[tuple[int, object]]] = {}  # V2G discharge: per EV, (slot, W variable)
        self.hp_p: dict[str, tuple[str, list[tuple[object, int]]]] = {}  # space heating: id -> (device, per slot)
        self.imp: list = []
        self.exp: list = []
        self.symmetry = symmetry
        self.peaks: list[tuple[object, int, list[list[int]]]] = []  # capacity charges: (peak, L, windows)
        self.exclusive: list = []  # the exclusive-slot Booleans (battery mode, import or export): issue 14
        self.ordered: list[tuple[CycleModel, CycleModel]] = []  # interchangeable cycles the model runs in order
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
        self.K = _set_objective(self)
        if self.exclusive and restart_search(cp):  # negative prices: decide the few "charge or discharge" Booleans first
            self.md.add_decision_strategy(self.exclusive, cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)
        if hint is not None:
            self.add_hint(hint)

    def w(self, kw: float) -> int:
        return int(round(kw * self.W))

    def add_hint(self, sch: Schedule) -> None:
        """Another backend's plan as a hint: cycle starts, EV steps, heater on/off states. Interchangeable cycles
        swap starts into the order the model asks of them (`self.ordered`), an equal plan the model admits."""
        starts = dict(sch.cycle_start_min)
        for _ in self.ordered:  # bubble passes along the chains
            swapped = False
            for a, b in self.ordered:
                sa, sb = starts.get(a.cycle.id), starts.get(b.cycle.id)
                if sa is not None and sb is not None and sb < sa:
                    starts[a.cycle.id], starts[b.cycle.id] = sb, sa
                    swapped = True
            if not swapped:
                break
        for cid, opts in self.cycle_x.items():
            want = starts.get(cid)
            for x, sm in opts:
                self.md.add_hint(x, abs(sm - want) < 1e-6 if want is not None else False)
        for em in self.cp.evs:
            p = sch.ev_kw.get(em.ev.id)
            if em.levels_kw is None or p is None:
                continue
            for t, terms in self.ev_p[em.ev.id]:
                for y, w in terms:
                    self.md.add_hint(y, abs(p[t] * self.W - w) < 0.5 * self.W * 1e-3)
        for th in self.cp.problem.thermal_storages:
            p = sch.thermal_kw.get(th.id)
            if th.modulating or p is None:
                continue
            for t, (v, _coef) in enumerate(self.th_p[th.id]):
                self.md.add_hint(v, p[t] > 1e-6)
        for hp in self.cp.problem.heat_pumps:
            p = sch.heat_pump_kw.get(hp.id)
            if hp.modulating or p is None:
                continue
            for t, (v, _coef) in enumerate(self.hp_p[hp.id][1]):
                self.md.add_hint(v, p[t] > 1e-6)

    def complete_hint(self, time_limit_s: float, workers: int) -> str:
        """Turn the hint into a value for every variable: a short solve with the hinted Booleans fixed to the
        other backend's plan fills in the storage powers, states of charge and temperatures in CP-SAT's own rounded
        units. CP-SAT only repairs an incomplete hint heuristically (on `full-118` / `full-154` it did not start
        from the hinted plan at all); a complete one is its first solution. Returns the completion's status; on
        anything but a plan the hint stays as it was."""
        hint = self.md.proto.solution_hint
        if not hint.vars:
            return "no hint"
        fixed = self.md.clone()
        for v, x in zip(hint.vars, hint.values):
            dom = fixed.proto.variables[v].domain
            if dom[0] <= x <= dom[-1]:
                dom.clear()
                dom.extend([x, x])
        s = cp_model.CpSolver()
        s.parameters.num_workers = max(1, int(workers))
        s.parameters.max_time_in_seconds = max(0.01, time_limit_s)
        s.parameters.random_seed = 0
        s.parameters.linearization_level = 2
        s.parameters.stop_after_first_solution = True  # improving it is the real solve's work
        st = s.solve(fixed)
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            self.md.clear_hints()
            hint.vars.extend(range(len(self.md.proto.variables)))
            hint.values.extend(s.response_proto.solution)
        return s.status_name(st)

    def extract(self, s: cp_model.CpSolver) -> Schedule:
        cp, n = self.cp, self.cp.n
        sch = Schedule()
        for cid, opts in self.cycle_x.items():
            for x, sm in opts:
                if s.boolean_value(x):
                    sch.cycle_start_min[cid] = sm
                    break
        sch.cycle_start_min.update(self.cycle_fixed)
        for eid, slots in self.ev_p.items():
            p = [0.0] * n
            for t, terms in slots:
                p[t] = sum(c * s.value(v) for v, c in terms) / self.W
            sch.ev_kw[eid] = p
        for bid, (c, d) in self.bat.items():
            sch.battery_charge_kw[bid] = [s.value(v) / self.W for v in c]
            sch.battery_discharge_kw[bid] = [s.value(v) / self.W for v in d]
        for pv in cp.problem.pv:
            cols = self.pv_u.get(pv.id)
            sch.pv_kw[pv.id] = list(pv.forecast_kw) if cols is None else [s.value(v) / self.W for v in cols]
        for tid, terms in self.th_p.items():
            sch.thermal_kw[tid] = [c * s.value(v) / self.W for v, c in terms]
        _extract_physics(self, s, sch)
        return sch


def restart_search(cp: Compiled) -> bool:
    """Whether exclusive "charge or discharge" / "import or export" Booleans get decided first under quick restarts:
    not when cycle starts are the only decisions (no battery, EV, heater or heat pump), where the default search
    proved `many_cycles_4k6-173` (fixed PV, export paid above import in 25 slots) in 2.9 s of CPU and the restarts
    left it at a 0.7 % gap after 7.5 s (README "Many cycles")."""
    return stores_energy(cp)


def _add_cycle(mm: CpsatModel, cm: CycleModel) -> None:
    """One Boolean per allowed start, exactly one true; its profile (W) adds to the slot loads."""
    c, md, cp = cm.cycle, mm.md, mm.cp
    busy = mm.busy.setdefault(c.device, [[] for _ in range(cp.n)])
    fixed = mm.busy_fixed.setdefault(c.device, [0] * cp.n)
    if cm.fixed:
        o = cm.options[0]
        for k, pk in enumerate(o.profile_kw):
            mm.const[o.first_slot + k] += mm.w(pk)
        for t in range(*o.occupied):
            fixed[t] += 1
        mm.cycle_fixed[c.id] = o.start_min
        mm.offset += o.extra_cost
        return
    opts = []
    for o in cm.options:
        x = md.new_bool_var("")
        opts.append((x, o.start_min))
        if o.extra_cost:
            mm.obj.append((x, o.extra_cost))
        for k, pk in enumerate(o.profile_kw):
            if pk:
                mm.loads[o.first_slot + k].append((x, mm.w(pk)))
        for t in range(*o.occupied):
            busy[t].append(x)
    md.add_exactly_one([x for x, _ in opts])
    mm.cycle_x[c.id] = opts


def _add_no_overlap(mm: CpsatModel) -> None:
    """At most one busy cycle per appliance and slot; interchangeable cycles run in order; heavy starts
    that cannot share a slot under the import limit exclude each other (compile.power_cliques)."""
    cp, md = mm.cp, mm.md
    by_dev: dict[str, list[CycleModel]] = {}
    for cm in cp.cycles:
        by_dev.setdefault(cm.cycle.device, []).append(cm)
    for dev, cms in by_dev.items():
        if len(cms) < 2:
            continue
        busy, fixed = mm.busy[dev], mm.busy_fixed[dev]
        for t in range(cp.n):
            if fixed[t]:
                for x in busy[t]:
                    md.add(x == 0)
            elif len(busy[t]) > 1:
                md.add_at_most_one(busy[t])
    for items in power_cliques(cp):
        md.add_at_most_one([mm.cycle_x[cp.cycles[i].cycle.id][k][0] for i, k in items])
    if not mm.symmetry:
        return
    res = cp.problem.grid.resolution_min
    mm.ordered = interchangeable_cycles(cp)
    for a, b in mm.ordered:
        xa, xb = mm.cycle_x[a.cycle.id], mm.cycle_x[b.cycle.id]
        occ = a.options[0].occupied[1] - a.options[0].occupied[0]
        md.add(sum(int(round(s / res)) * x for x, s in xb) - sum(int(round(s / res)) * x for x, s in xa) >= occ)


def _add_ev(mm: CpsatModel, em: EVModel) -> None:
    """Power in W per available slot; steps as Booleans, semi-continuous via an on-literal."""
    e, md, cp = em.ev, mm.md, mm.cp
    dt = cp.dt_h
    slots = []
    total: list[tuple[object, int]] = []
    for t in em.slots:
        if em.levels_kw is not None:
            ys = [md.new_bool_var("") for _ in em.levels_kw]
            md.add_at_most_one(ys)
            terms = [(y, mm.w(lv)) for y, lv in zip(ys, em.levels_kw)]
        elif em.semicontinuous:
            p = md.new_int_var(0, mm.w(e.max_power_kw), "")
            on = md.new_bool_var("")
            md.add(p >= mm.w(e.min_power_kw)).only_enforce_if(on)
            md.add(p == 0).only_enforce_if(~on)
            terms = [(p, 1)]
        else:
            terms = [(md.new_int_var(0, mm.w(e.max_power_kw), ""), 1)]
        slots.append((t, terms))
        mm.loads[t].extend(terms)
        total.extend(terms)
    mm.ev_p[e.id] = slots
    per = e.efficiency * dt / mm.W  # kWh delivered per W-slot
    expr = sum(c * v for v, c in total)
    md.add(expr >= math.ceil(em.need_kwh / per - 1e-6))
    if em.max_kwh is not None and not e.v2g:  # with V2G the room is kept slot by slot
        md.add(expr <= math.floor((em.max_kwh + EV_ROOM_SLACK_KWH) / per))
    socs = _add_ev_discharge(mm, em, slots)
    _add_ev_min_state(mm, em, slots, per, socs)


def _add_ev_min_state(mm: CpsatModel, em: EVModel, slots: list, per: float,
                      socs: Optional[tuple[list[tuple[int, object]], int]]) -> None:
    """Delivered energy before boundary k >= the requirement: W-slots x `per` kWh, or for a V2G car its
    energy variable after the last slot before k (`socs`: those variables and their units per kWh)."""
    for k, kwh, _r in min_state_bounds(mm.cp.problem, em.ev.min_energy_at):
        if socs is not None:
            before = [v for t, v in socs[0] if t < k]
            if before:
                mm.md.add(before[-1] >= math.ceil(kwh * socs[1] - 1e-6))
            elif kwh > 1e-9:
                mm.md.add_bool_or([])  # nothing can be delivered before k
            continue
        terms = [(v, c) for t, ts in slots if t < k for v, c in ts]
        mm.md.add(sum(c * v for v, c in terms) >= math.ceil(kwh / per - 1e-6))


# Added to a car's room: with floored charging, a car that must end exactly full (need = room) would otherwise have
# to hit one integer value, often none (held-out home `full-370`: CP-SAT called a feasible home infeasible) or a
# number-theory puzzle CP-SAT cannot solve in time. Below the evaluator's 1e-3 kWh tolerance.
EV_ROOM_SLACK_KWH = 5e-4


def _add_ev_discharge(mm: CpsatModel, em: EVModel, slots: list[tuple[int, list[tuple[object, int]]]]
                      ) -> Optional[tuple[list[tuple[int, object]], int]]:
    """V2G (issue 14 item 3), as in the MILP: discharge in W, the car's energy in Wh/S after every slot within
    [floor, room] (charging floored, discharging ceiled: conservative), no charging while discharging where the
    MILP forbids it, and the delivered energy at departure >= the need. Returns the energy variables after
    each slot and their units per kWh (None without V2G)."""
    e, md, cp = em.ev, mm.md, mm.cp
    if not e.v2g or not slots:
        return None
    dt = cp.dt_h
    S = _scale(min(e.efficiency * dt, dt / e.discharge_efficiency))
    kc = math.floor(e.efficiency * dt * S)
    kd = math.ceil(dt / e.discharge_efficiency * S)
    E = mm.W * S  # units per kWh
    lo = math.ceil(e.floor_kwh * E - 1e-6)
    hi = (math.floor((em.max_kwh + EV_ROOM_SLACK_KWH) * E) if em.max_kwh is not None
          else kc * mm.w(e.max_power_kw) * len(slots))
    prev = 0
    cells, socs = [], []
    for t, terms in slots:
        d = md.new_int_var(0, mm.w(e.max_discharge_kw), "")
        cells.append((t, d))
        mm.loads[t].append((d, -1))
        soc = md.new_int_var(lo, max(lo, hi), "")
        charge = sum(c * v for v, c in terms)
        md.add(soc == prev + kc * charge - kd * d)
        socs.append((t, soc))
        prev = soc
        if t in cp.exclusive_battery_slots or em.levels_kw is not None or em.semicontinuous:
            if em.levels_kw is not None:  # steps: no discharge while a step is on
                md.add(d + mm.w(e.max_discharge_kw) * sum(y for y, _c in terms) <= mm.w(e.max_discharge_kw))
                continue
            z = md.new_bool_var("")
            md.add(charge == 0).only_enforce_if(~z)
            md.add(d == 0).only_enforce_if(z)
    md.add(prev >= math.ceil(em.need_kwh * E - 1e-6))
    mm.ev_d[e.id] = cells
    return socs, E


def _add_v2g_no_export(mm: CpsatModel) -> None:
    """A V2G car that may not export only covers the home's own consumption (as in the MILP)."""
    cp = mm.cp
    p = cp.problem
    if not any(e.v2g and not e.export_allowed for e in p.ev_sessions):
        return
    gen = {v.index for cols in mm.pv_u.values() for v in cols}
    gen |= {v.index for _c, d in mm.bat.values() for v in d}
    gen |= {v.index for e in p.ev_sessions if e.export_allowed for _t, v in mm.ev_d.get(e.id, [])}
    slots = {t for e in p.ev_sessions if not e.export_allowed for t, _v in mm.ev_d.get(e.id, [])}
    for t in sorted(slots):
        own = sum(c * v for v, c in mm.loads[t] if v.index not in gen)
        mm.md.add(own >= -(mm.const[t] + mm.w(cp.pv_fixed_kw[t])))


def _extract_physics(mm: CpsatModel, s: cp_model.CpSolver, sch: Schedule) -> None:
    """Issue 14 decisions: V2G discharge and space-heating power."""
    for eid, cells in mm.ev_d.items():
        d = [0.0] * mm.cp.n
        for t, v in cells:
            d[t] = s.value(v) / mm.W
        sch.ev_discharge_kw[eid] = d
    for hid, (_dev, terms) in mm.hp_p.items():
        sch.heat_pump_kw[hid] = [c * s.value(v) / mm.W for v, c in terms]


def _add_battery(mm: CpsatModel, b: Battery) -> None:
    """SoC in Wh/S; charge coefficient floored, discharge ceiled (conservative)."""
    md, cp = mm.md, mm.cp
    n, dt = cp.n, cp.dt_h
    S = _scale(min(b.charge_efficiency * dt, dt / b.discharge_efficiency))
    kc = math.floor(b.charge_efficiency * dt * S)
    kd = math.ceil(dt / b.discharge_efficiency * S)
    E = mm.W * S  # units per kWh
    lo = math.ceil(min(b.min_kwh, b.initial_kwh) * E - 1e-6)
    hi = math.floor(b.capacity_kwh * E + 1e-6)
    ini = math.floor(b.initial_kwh * E + 1e-6)
    lo = min(lo, ini)
    c = [md.new_int_var(0, mm.w(b.max_charge_kw), "") for _ in range(n)]
    d = [md.new_int_var(0, mm.w(b.max_discharge_kw), "") for _ in range(n)]
    soc = [md.new_int_var(lo, hi, "") for _ in range(n)]
    prev = ini
    for t in range(n):
        md.add(soc[t] == prev + kc * c[t] - kd * d[t])
        prev = soc[t]
        mm.loads[t].append((c[t], 1))
        mm.loads[t].append((d[t], -1))
        eps = THROUGHPUT_EPS_PER_KWH * dt / mm.W
        mm.obj.append((c[t], eps))
        mm.obj.append((d[t], eps))
        if t in cp.exclusive_battery_slots:
            z = md.new_bool_var("")
            mm.exclusive.append(z)
            md.add(c[t] == 0).only_enforce_if(~z)
            md.add(d[t] == 0).only_enforce_if(z)
    if b.final_kwh is not None:
        md.add(soc[-1] >= math.ceil(b.final_kwh * E - 1e-6))
    _add_battery_min_state(mm, b, soc, E)
    _add_battery_wear(mm, b, c, d, soc, E, hi)
    mm.bat[b.id] = (c, d)


def _add_battery_wear(mm: CpsatModel, b: Battery, c: list, d: list, soc: list, E: float, hi: int) -> None:
    """Wear cost, cycles per local day and the SoC taper (as milp_model), rounded so that every integer plan
    meets the float limits: slopes floored, allowances floored, SoC room measured to the (floored) capacity."""
    md, cp = mm.md, mm.cp
    dt = cp.dt_h
    wear = money_weight(cp.problem) * b.wear_cost_eur_per_kwh * dt / mm.W
    if wear:
        mm.obj.extend((v, wear) for v in c + d)
    if b.max_cycles_per_day is not None:
        for ts, share in day_slot_groups(cp.problem):
            allow = 2 * b.max_cycles_per_day * b.capacity_kwh * share / (dt / mm.W)
            md.add(sum(c[t] for t in ts) + sum(d[t] for t in ts) <= math.floor(allow + 1e-6))
    if b.charge_taper_above_soc_pct is not None:  # c <= full + k (cap - soc_end)
        cap = b.capacity_kwh
        k = (b.max_charge_kw - b.charge_kw_at_full) / (cap - cap * b.charge_taper_above_soc_pct / 100)
        M, A = _taper_scale(k * mm.W / E, mm.w(b.max_charge_kw))
        full = math.floor(M * b.charge_kw_at_full * mm.W)
        for t in range(cp.n):
            md.add(M * c[t] + A * soc[t] <= full + A * hi)
    if b.discharge_taper_below_soc_pct is not None:  # d <= empty + k soc_end
        k = (b.max_discharge_kw - b.discharge_kw_at_empty) / (b.capacity_kwh * b.discharge_taper_below_soc_pct / 100)
        M, A = _taper_scale(k * mm.W / E, mm.w(b.max_discharge_kw))
        empty = math.floor(M * b.discharge_kw_at_empty * mm.W)
        for t in range(cp.n):
            md.add(M * d[t] - A * soc[t] <= empty)


def _add_battery_min_state(mm: CpsatModel, b: Battery, soc: list, E: float) -> None:
    """Stored energy (E units per kWh) after k slots >= the requirement; k = 0 is a pre-check."""
    for k, kwh, _r in min_state_bounds(mm.cp.problem, b.min_energy_at):
        if k > 0:
            mm.md.add(soc[k - 1] >= math.ceil(kwh * E - 1e-6))


def _taper_scale(slope: float, p_max: int) -> tuple[int, int]:
    """(M, floor(slope * M)): a multiplier giving the slope (power units per SoC unit) >= 5 digits, capped so
    that M * p_max stays far inside CP-SAT's 64-bit range; the floored slope only tightens the taper."""
    M = 10 ** max(0, math.ceil(math.log10(1e5 / max(slope, 1e-30))))
    M = min(M, 10 ** max(0, int(math.log10(1e17 / max(p_max, 1)))))
    return M, math.floor(slope * M)


def _add_pv(mm: CpsatModel, pv: PV) -> None:
    if not pv.curtailable:
        return
    cols = [mm.md.new_int_var(0, mm.w(pv.forecast_kw[t]), "") for t in range(mm.cp.n)]
    for t, v in enumerate(cols):
        mm.loads[t].append((v, -1))
    mm.pv_u[pv.id] = cols


def _add_thermal(mm: CpsatModel, th: ThermalStorage) -> None:
    """Stored heat in Wh/S thermal; heating coefficient floored, draws ceiled."""
    md, cp = mm.md, mm.cp
    n, dt = cp.n, cp.dt_h
    S = _scale(th.cop * dt)
    kp = math.floor(th.cop * dt * S)
    E = mm.W * S
    P = mm.w(th.electric_power_kw)
    terms = []
    for t in range(n):
        if th.modulating:
            terms.append((md.new_int_var(0, P, ""), 1))
        else:
            terms.append((md.new_bool_var(""), P))
    lo = math.ceil(th.min_energy_kwh * E - 1e-6)
    hi = math.floor(th.max_energy_kwh * E + 1e-6)
    prev = math.floor(th.initial_energy_kwh * E + 1e-6)
    e = [md.new_int_var(lo, hi, "") for _ in range(n)]
    for t in range(n):
        v, coef = terms[t]
        drain = math.ceil((th.heat_demand_kw[t] + th.standing_loss_kw) * dt * E - 1e-6)
        md.add(e[t] == prev + kp * coef * v - drain)
        prev = e[t]
        mm.loads[t].append((v, coef))
    if th.final_energy_kwh is not None:
        md.add(e[-1] >= math.ceil(th.final_energy_kwh * E - 1e-6))
    mm.th_p[th.id] = terms


COMPLETE_HINT_SHARE = 0.25  # of CP-SAT's budget at most, to complete another backend's plan (CpsatModel.complete_hint)
HP_UNITS_PER_K = 10 ** 6  # indoor temperature in micro-kelvin
HP_DENOMINATOR = 10 ** 9  # the decay and gains as integers over this


def _add_heat_pump(mm: CpsatModel, hp: SpaceHeating) -> None:
    """Space heating as in the MILP, in integers: T[t+1] = floor((A T[t] + B[t] + K[t] P[t]) / D) with A, B, K the
    model's coefficients times D (temperatures in micro-kelvin). The floor and the rounded coefficients move T by
    at most `err` units per slot, which the decay keeps below err / (1 - a) in all: the comfort band is tightened
    by that much (the top by the floor too, which only lowers T), so every integer plan is in the band in floats."""
    md, cp = mm.md, mm.cp
    n, dt = cp.n, cp.dt_h
    U, D = HP_UNITS_PER_K, HP_DENOMINATOR
    a = hp.decay(dt)
    A = round(a * D)
    P = mm.w(hp.max_power_kw)
    terms = []
    for t in range(n):
        if hp.modulating:
            terms.append((md.new_int_var(0, P, ""), 1))
        else:
            terms.append((md.new_bool_var(""), P))
    t_max = max(max(abs(x) for x in hp.comfort_max_c), max(abs(x) for x in hp.comfort_min_c),
                abs(hp.initial_indoor_c)) * U
    K = [round(hp.gain_c_per_kw(t, dt) / mm.W * U * D) for t in range(n)]
    k_err = max(abs(K[t] - hp.gain_c_per_kw(t, dt) / mm.W * U * D) for t in range(n)) * P
    coef_err = (abs(A - a * D) * t_max + 0.5 + k_err) / D  # units per slot, either way
    lift = math.ceil(coef_err / (1 - a)) + 1
    drop = math.ceil((1 + coef_err) / (1 - a)) + 1  # the floor too
    prev = round(hp.initial_indoor_c * U)
    for t in range(n):
        lo = math.ceil(hp.comfort_min_c[t] * U) + lift
        hi = math.floor(hp.comfort_max_c[t] * U) - drop
        temp = md.new_int_var(lo, max(lo, hi), "")
        if hi < lo:
            md.add_bool_or([])  # a band narrower than the rounding: infeasible (pre-checks name it)
        v, coef = terms[t]
        B = round(hp.drift_c(t, dt) * U * D)
        md.add_linear_constraint(A * prev + K[t] * coef * v - D * temp, -B, D - 1 - B)
        prev = temp
        mm.loads[t].append((v, coef))
    if not hp.modulating:
        run, off = hp.run_slots(cp.problem.grid.resolution_min)
        on = [v for v, _ in terms]
        for t in range(n):
            before = [on[t - 1]] if t > 0 else []
            for tau in range(t + 1, min(n, t + run)):
                md.add_bool_or([on[tau], ~on[t]] + before)
            if t > 0:
                for tau in range(t + 1, min(n, t + off)):
                    md.add_bool_or([~on[tau], on[t], ~on[t - 1]])
    mm.hp_p[hp.id] = (hp.device, terms)


def _add_circuits(mm: CpsatModel) -> None:
    """Shared circuits: -limit <= the named devices' summed power <= limit in every slot."""
    n = mm.cp.n
    for ci in mm.cp.problem.circuits:
        terms: list[list[tuple[object, int]]] = [[] for _ in range(n)]
        const = [0] * n
        for dev in ci.devices:
            ts, cs = device_terms(mm, dev, mm.w)
            for t in range(n):
                terms[t] += ts[t]
                const[t] += cs[t]
        L = mm.w(ci.limit_kw)
        for t in range(n):
            if not terms[t]:
                if abs(const[t]) > L:
                    mm.md.add_bool_or([])  # a fixed load above the limit: infeasible, as in the MILP
                continue
            mm.md.add_linear_constraint(sum(c * v for v, c in terms[t]), -L - const[t], L - const[t])


def _add_site(mm: CpsatModel) -> None:
    md, cp = mm.md, mm.cp
    p = cp.problem
    site, gr = p.site, p.grid_request
    dt = cp.dt_h
    L, X = mm.w(site.import_limit_kw), mm.w(site.export_limit_kw)
    for t in range(cp.n):
        imp = md.new_int_var(0, L, "")
        exp = md.new_int_var(0, X, "") if cp.may_export[t] else None
        mm.imp.append(imp)
        mm.exp.append(exp)
        net = imp - exp if exp is not None else imp
        md.add(net == sum(c * v for v, c in mm.loads[t]) + mm.const[t])
        # Without storage, imp = net + exp is substituted: w_imp*imp + w_exp*exp = w_imp*(loads + const)
        # + (w_imp + w_exp)*exp, so the price lands on the devices' own variables (a cycle start carries its
        # whole cost), which CP-SAT's search uses well. With a battery or heat store it searched worse that
        # way (README "CP-SAT scaling"), so the price stays on imp there.
        wi = cp.w_imp[t] * dt / mm.W
        subst = prices_on_devices(cp)
        if subst:
            mm.offset += wi * mm.const[t]
            for v, c in mm.loads[t]:
                mm.obj.append((v, wi * c))
        else:
            mm.obj.append((imp, wi))
        if exp is not None:
            mm.obj.append((exp, ((cp.w_imp[t] if subst else 0.0) + cp.w_exp[t]) * dt / mm.W))
            if t in cp.exclusive_grid_slots:
                z = md.new_bool_var("")
                mm.exclusive.append(z)
                md.add(imp == 0).only_enforce_if(~z)
                md.add(exp == 0).only_enforce_if(z)
        if gr is None:
            continue
        lo, hi = gr.min_net_import_kw[t], gr.max_net_import_kw[t]
        soft = gr.penalty_eur_per_kwh
        if lo is not None:
            if soft is None:
                md.add(net >= math.ceil(lo * mm.W - 1e-6))
            else:
                s = md.new_int_var(0, L + X + abs(mm.w(lo)), "")
                md.add(net + s >= math.ceil(lo * mm.W - 1e-6))
                mm.obj.append((s, soft * dt / mm.W))
        if hi is not None:
            if soft is None:
                md.add(net <= math.floor(hi * mm.W + 1e-6))
            else:
                s = md.new_int_var(0, L + X + abs(mm.w(hi)), "")
                md.add(net - s <= math.floor(hi * mm.W + 1e-6))
                mm.obj.append((s, soft * dt / mm.W))


def prices_on_devices(cp: Compiled) -> bool:
    """Whether the import price goes onto the devices' own variables (see _add_site): in homes without a
    battery or heat store, where it made CP-SAT 2-4x faster; with either it was mostly slower."""
    return not cp.problem.batteries and not cp.problem.thermal_storages


def _add_capacity_charges(mm: CpsatModel) -> None:
    """As milp_model: the peak in units of 1/(W x L) kW, L the lcm of the window lengths, so that L / len(window)
    x the window's import is a whole number and the peak is exact."""
    md, p = mm.md, mm.cp.problem
    for cc in p.capacity_charges:
        windows = capacity_windows(p, cc)
        if not windows:
            continue
        L = math.lcm(*[len(ts) for ts in windows])
        floor = math.ceil(cc.peak_floor_kw * mm.W * L - 1e-6)
        least = floor
        if mm.symmetry:  # the peak an EV's whole steps force (compile.capacity_ev_peak_floor), rounded up to units
            least = max(floor, math.ceil(capacity_ev_peak_floor(mm.cp, windows) * mm.W * L - 1e-6))
            # ... and heater on-slots (compile.capacity_heater_peak_floor), floored: CP-SAT rounds heater draws
            least = max(least, math.floor(capacity_heater_peak_floor(mm.cp, windows) * mm.W * L + 1e-6))
        peak = md.new_int_var(least, max(least, L * mm.w(p.site.import_limit_kw)), "")
        for ts in windows:
            md.add(peak >= sum((L // len(ts)) * mm.imp[t] for t in ts))
        if mm.symmetry:  # the peak each cycle start forces (compile.capacity_cycle_floors), floored to units
            for i, floors in capacity_cycle_floors(mm.cp, windows):
                xs = [x for x, _sm in mm.cycle_x[mm.cp.cycles[i].cycle.id]]
                md.add(peak >= sum(math.floor(f * mm.W * L + 1e-6) * x for f, x in zip(floors, xs)))
        mm.obj.append((peak, money_weight(p) * cc.price_eur_per_kw / (mm.W * L)))
        mm.peaks.append((peak, L, windows))
        mm.offset -= money_weight(p) * cc.price_eur_per_kw * floor / (mm.W * L)


def _least_net_w(mm: CpsatModel) -> list[int]:
    """Per slot, the least net import (model units) of a home whose only decisions are cycle starts and PV
    curtailment: base load and fixed cycles minus all PV (`mm.const` less every curtailable PV's forecast)."""
    least = list(mm.const)
    for pv in mm.cp.problem.pv:
        if pv.id in mm.pv_u:
            for t in range(mm.cp.n):
                least[t] -= mm.w(pv.forecast_kw[t])
    return least


def _objective_floor(mm: CpsatModel, least: list[int]) -> int:
    """A lower bound on the integer objective of every plan: each cycle's cheapest start, each other variable at
    its cheapest value; an export that pays is at most what the home can export at its least net import (with
    imports paid, the slot's Boolean keeps import and export apart: `_add_site`)."""
    obj = mm.md.proto.objective
    coef = dict(zip(obj.vars, obj.coeffs))
    seen: set[int] = set()
    total = 0
    for opts in mm.cycle_x.values():
        idx = [x.index for x, _sm in opts]
        seen.update(idx)
        total += min(coef.get(i, 0) for i in idx)
    exp_room = {e.index: max(0, -least[t]) for t, e in enumerate(mm.exp)
                if e is not None and t in mm.cp.exclusive_grid_slots}
    for i, k in coef.items():
        if i in seen:
            continue
        dom = mm.md.proto.variables[i].domain
        lo, hi = dom[0], dom[len(dom) - 1]
        if k < 0 and i in exp_room:
            hi = min(hi, exp_room[i])
        total += min(k * lo, k * hi)
    return total


def peak_cuts(mm: CpsatModel, incumbent: int) -> int:
    """Capacity charges on a home whose only decisions are cycle starts: what a plan at least as good as the
    incumbent (integer objective `incumbent`) may peak at, and the starts that cannot share a metering window
    under that peak. The objective floor bounds every other term, so peak <= its least + (incumbent - floor) /
    its price; a window's import is at least its slots' max(0, least + loads), which grows by at least each
    start's own increment (max(0, .) is convex), so starts whose increments sum above the room are a clique.
    Valid for every plan no worse than the incumbent, which keeps the optimum. Returns the cliques added."""
    least = _least_net_w(mm)
    floor = _objective_floor(mm, least)
    obj = mm.md.proto.objective
    coef = dict(zip(obj.vars, obj.coeffs))
    cycles = [(mm.cp.cycles[i], mm.cycle_x[cm.cycle.id]) for i, cm in enumerate(mm.cp.cycles) if cm.cycle.id in mm.cycle_x]
    added = 0
    for peak, L, windows in mm.peaks:
        k = coef.get(peak.index, 0)
        if k <= 0:
            continue
        dom = mm.md.proto.variables[peak.index].domain
        pmax = dom[0] + (incumbent - floor) // k
        mm.md.add(peak <= pmax)
        slot_w = {t: w for w, ts in enumerate(windows) for t in ts}
        items: list[list[tuple[int, object, int]]] = [[] for _ in windows]
        for ci, (cm, opts) in enumerate(cycles):
            for (x, _sm), o in zip(opts, cm.options):
                inc: dict[int, int] = {}
                for j, pk in enumerate(o.profile_kw):
                    t = o.first_slot + j
                    w = slot_w.get(t)
                    if w is not None and pk:
                        f = L // len(windows[w])
                        inc[w] = inc.get(w, 0) + f * (max(0, least[t] + mm.w(pk)) - max(0, least[t]))
                for w, e in inc.items():
                    if e > 0:
                        items[w].append((e, x, ci))
        for w, ts in enumerate(windows):
            f = L // len(ts)
            room = pmax - sum(f * max(0, least[t]) for t in ts)
            its = sorted(items[w], key=lambda it: -it[0])
            for e, x, _ci in its:
                if e > room:
                    mm.md.add(x == 0)
            n = 1
            while n < len(its) and its[n - 1][0] + its[n][0] > room:
                n += 1
            if n >= 2 and len({ci for _e, _x, ci in its[:n]}) >= 2:
                mm.md.add_at_most_one([x for _e, x, _ci in its[:n]])
                added += 1
    return added


def _set_objective(mm: CpsatModel) -> float:
    """Scale the float coefficients (summed per variable) to integers; returns the scale K (units per EUR).

    The largest per-W-slot grid coefficient becomes ~1e6. `mm.rounding` bounds in EUR how much the
    integer objective can exceed the float one over the variables' domains; the proven bound is
    lowered by it, so a reported gap is never optimistic.
    """
    cp = mm.cp
    coef: dict[int, float] = {}
    var: dict[int, object] = {}
    for v, c in mm.obj:
        i = v.index
        coef[i] = coef.get(i, 0.0) + c
        var[i] = v
    ref = max([abs(w) for w in cp.w_imp + cp.w_exp] + [1e-12]) * cp.dt_h / mm.W
    K = 1e6 / ref
    group = {x.index: cid for cid, opts in mm.cycle_x.items() for x, _sm in opts}  # exactly one of them is true
    terms = []
    err = 0.0
    worst: dict[str, float] = {}
    for i, c in coef.items():
        if c == 0:
            continue
        k = int(round(c * K))
        if k == 0:
            k = 1 if c > 0 else -1
        dom = mm.md.proto.variables[i].domain  # (this binding reads dom[-1] as 0)
        most = max((k - c * K) * dom[0], (k - c * K) * dom[len(dom) - 1])  # most the rounding can add here
        if i in group:
            worst[group[i]] = max(worst.get(group[i], 0.0), most)
        else:
            err += most
        terms.append((var[i], k))
    mm.md.minimize(sum(k * v for v, k in terms))
    mm.rounding = (err + sum(worst.values())) / K
    return K


def peak_rounds(cp: Compiled) -> bool:
    """Whether a plan to start from gives CP-SAT `peak_cuts`: a capacity charge in a home whose only decisions are
    cycle starts (where `_objective_floor` holds)."""
    p = cp.problem
    return bool(p.capacity_charges) and money_weight(p) > 0 and not restart_search(cp) and prices_on_devices(cp)


def solve_cpsat(cp: Compiled, time_limit_s: float = 5.0, *, workers: int = 1, symmetry: bool = True,
                hint: Optional[Schedule] = None, rel_gap_limit: float = 5e-5,
                cutoff: Optional[float] = None, complete_hint: bool = True, improve: bool = False) -> BackendResult:
    """`cutoff`: the objective of a valid plan (the hint's, evaluated in floats); with `peak_rounds` the model then
    gets that plan's `peak_cuts`, which keep every plan at least as good, so its bound still holds for the home.
    `improve` (there, with the hint completed): only plans whose integer objective is below the hint's, so that no
    plan at all proves the hint optimal (the hint comes back as the plan). Searching below the plan rather than from
    it, in the portfolio's second round, reached `many_cycles_4k6-233`'s best known plan (the hinted search stayed
    3.8 % above) and proved `-479` in 4.2 s instead of 5.5 (README "Many cycles")."""
    t0 = time.perf_counter()
    mm = CpsatModel(cp, symmetry=symmetry, hint=hint)
    detail: dict = {"solver": "cp-sat"}
    if cutoff is not None and symmetry and peak_rounds(cp):
        # the integer objective exceeds K x (float objective - offset) by at most K x rounding; half the gap limit
        # more covers the powers' rounding to whole model units (the hint stays a plan of the model)
        u = math.floor((cutoff + 0.5 * rel_gap_limit * abs(cutoff) - mm.offset + mm.rounding) * mm.K) + 1
        detail["cutoff"] = cutoff
        detail["peak_cliques"] = peak_cuts(mm, u)
    if hint is not None and complete_hint:
        t = time.perf_counter()
        detail["hint_completion"] = mm.complete_hint(COMPLETE_HINT_SHARE * time_limit_s, workers)
        detail["hint_completion_ms"] = round((time.perf_counter() - t) * 1000, 1)
    below = None  # the hint's integer objective, where only better plans count
    if improve and "peak_cliques" in detail and detail["hint_completion"] in ("OPTIMAL", "FEASIBLE"):
        obj, hinted = mm.md.proto.objective, mm.md.proto.solution_hint
        value = dict(zip(hinted.vars, hinted.values))
        doms = [mm.md.proto.variables[v].domain for v in obj.vars]
        reach = sum(abs(c) * max(abs(d[0]), abs(d[len(d) - 1])) for c, d in zip(obj.coeffs, doms))
        if reach < 2 ** 62:  # a row CP-SAT accepts (int64)
            below = sum(c * value[v] for v, c in zip(obj.vars, obj.coeffs))
            mm.md.add(sum(c * mm.md.get_int_var_from_proto_index(v) for v, c in zip(obj.vars, obj.coeffs))
                      <= below - 1)
            mm.md.clear_hints()
            detail["improve_below"] = below
    build_ms = (time.perf_counter() - t0) * 1000
    s = _solver(mm, cp, workers, rel_gap_limit, time_limit_s - build_ms / 1000)
    if cutoff is not None:  # a gap in EUR: CP-SAT's relative one is of the integer objective, which lacks the offset
        # (`many_cycles_4k6-479`: 8.43 EUR against 3.49, so its 5e-5 was 1.2e-4 of the plan); half the gap limit of
        # the plan to beat, so that a plan found up to 4x better is still proven within the limit of its own
        s.parameters.relative_gap_limit = 0.0
        s.parameters.absolute_gap_limit = 0.5 * rel_gap_limit * abs(cutoff) * mm.K
    t1 = time.perf_counter()
    st = s.solve(mm.md)
    solve_ms = (time.perf_counter() - t1) * 1000
    detail.update({"cpsat_status": s.status_name(st), "booleans": s.num_booleans, "branches": s.num_branches,
                   "scale": mm.K, "rounding_eur": mm.rounding})
    if st == cp_model.INFEASIBLE and "peak_cliques" not in detail:
        return BackendResult(Status.INFEASIBLE, None, build_ms=build_ms, solve_ms=solve_ms, detail=detail)
    if below is not None and st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # no plan below the hint's objective (or none found): the hint is the plan, every plan of the model costs at
        # least `below` or what the bound says below that line, and the cuts keep every plan as good as the cutoff
        least = below if st == cp_model.INFEASIBLE else min(below, s.best_objective_bound)
        bound = min(cutoff, least / mm.K + mm.offset - mm.rounding)
        proven = cutoff - bound <= 2 * rel_gap_limit * max(abs(cutoff), 1.0)
        detail["proof"] = "no plan below the hint" if st == cp_model.INFEASIBLE else None
        return BackendResult(Status.OPTIMAL if proven else Status.FEASIBLE, hint, cutoff, bound, rel_gap(cutoff, bound),
                             build_ms, solve_ms, detail=detail)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if st == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT model invalid: {mm.md.validate()}")
        # (with a cutoff, INFEASIBLE only says that no plan beats it)
        return BackendResult(Status.NO_SOLUTION_IN_TIME, None, build_ms=build_ms, solve_ms=solve_ms, detail=detail)
    obj = s.objective_value / mm.K + mm.offset
    bound = s.best_objective_bound / mm.K + mm.offset - mm.rounding
    gap = rel_gap(obj, bound)
    # proven within the gap limit on the integer objective; the float objective may differ by the rounding
    # (tests' agreement rule: 1e-4 of the value, floored at 1 EUR)
    proven = st == cp_model.OPTIMAL and obj - bound <= 2 * rel_gap_limit * max(abs(obj), 1.0)
    status = Status.OPTIMAL if proven else Status.FEASIBLE
    return BackendResult(status, mm.extract(s), obj, bound, gap, build_ms, solve_ms, detail=detail)


def _solver(mm: CpsatModel, cp: Compiled, workers: int, rel_gap_limit: float, time_limit_s: float) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    prm = s.parameters
    prm.num_workers = max(1, int(workers))
    prm.max_time_in_seconds = max(0.05, time_limit_s)
    prm.relative_gap_limit = rel_gap_limit
    prm.random_seed = 0
    prm.linearization_level = 2
    prm.add_lp_constraints_lazily = False
    if mm.exclusive and restart_search(cp):
        # Negative prices next to a lossy battery: the default search left a 24-slot day at a 1 % gap after
        # 30 s (its LP burns energy at fractional Booleans); restarts over the decision strategy prove it in
        # ~1 s (README "Issue 14 physics").
        prm.search_branching = cp_model.PORTFOLIO_WITH_QUICK_RESTART_SEARCH
    return s
