"""Slot-level facts shared by both backends, the evaluator and the baseline.

Turning instants into slot indices, resampling cycle profiles and choosing
objective weights happens once, here, so that the MILP model, the CP-SAT model
and the evaluator cannot disagree about what the problem means.
"""
from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from .problem import (CapacityCharge, EVSession, MinimumState, Problem, ShiftableCycle, SpaceHeating, ThermalStorage,
                      TimeGrid, q_kw)

THROUGHPUT_EPS_PER_KWH = 1e-6  # objective units per kWh cycled through a battery (breaks c/d ties)
EPS = 1e-9


def resample_profile(cycle: ShiftableCycle, offset_min: float, res_min: int, n_slots: int) -> dict[int, float]:
    """Average power (kW, 1 W resolution) per slot for a cycle starting `offset_min` after the grid start.

    Resampling preserves energy (a 2.6 kW phase covering a third of a slot adds
    0.867 kW to it), it does not spread the peak.
    """
    acc: dict[int, float] = {}
    t = offset_min
    for ph in cycle.phases:
        a, b = t, t + ph.duration_min
        t = b
        if ph.power_w <= 0:
            continue
        k0 = max(0, int(math.floor(a / res_min + EPS)))
        k1 = min(n_slots, int(math.ceil(b / res_min - EPS)))
        for k in range(k0, k1):
            lo, hi = max(a, k * res_min), min(b, (k + 1) * res_min)
            if hi > lo:
                acc[k] = acc.get(k, 0.0) + ph.power_w * (hi - lo)
    return {k: q_kw(wmin / res_min / 1000.0) for k, wmin in sorted(acc.items())}


@dataclass
class CycleOption:
    start_min: float  # minutes from the grid start (negative: started before the horizon)
    first_slot: int
    profile_kw: tuple[float, ...]  # power of slots first_slot, first_slot+1, ...
    occupied: tuple[int, int]  # slots [a, b) the machine is busy (for no-overlap)
    extra_cost: float  # tie-break + comfort penalty, objective units

    def load(self) -> dict[int, float]:
        return {self.first_slot + k: p for k, p in enumerate(self.profile_kw)}


@dataclass
class CycleModel:
    cycle: ShiftableCycle
    options: list[CycleOption]
    fixed: bool
    why_none: list[str] = field(default_factory=list)


@dataclass
class EVModel:
    ev: EVSession
    slots: list[int]
    need_kwh: float
    max_kwh: Optional[float]
    levels_kw: Optional[tuple[float, ...]]
    semicontinuous: bool


@dataclass
class Compiled:
    problem: Problem
    n: int
    dt_h: float
    base_kw: list[float]
    pv_fixed_kw: list[float]  # non-curtailable PV
    w_imp: list[float]  # objective units per kWh imported
    w_exp: list[float]  # objective units per kWh exported (usually <= 0)
    cycles: list[CycleModel]
    evs: list[EVModel]
    exclusive_battery_slots: set[int]
    exclusive_grid_slots: set[int]
    may_export: list[bool]
    cost_norm: float
    co2_norm: float
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # see `hp_count_cuts`


def option_extra_cost(p: Problem, c: ShiftableCycle, start_min: float, end_slot: int) -> float:
    ref = c.scheduled_start or c.earliest_start
    late = 0.0
    if c.late_penalty_eur_per_h > 0 and ref is not None:
        late = c.late_penalty_eur_per_h * max(0.0, start_min - p.grid.offset_min(ref)) / 60.0
    return p.objective.early_finish_eur_per_slot * end_slot + late


def cycle_model(p: Problem, c: ShiftableCycle, base_kw: list[float], max_relief_kw: list[float]) -> CycleModel:
    g = p.grid
    n, res = g.slots, g.resolution_min
    dur = c.duration_min
    if c.fixed_start is not None:
        off = g.offset_min(c.fixed_start)
        prof = resample_profile(c, off, res, n)
        first = min(prof) if prof else max(0, min(n, int(math.floor(off / res))))
        last = max(prof) + 1 if prof else first
        profile = tuple(prof.get(k, 0.0) for k in range(first, last))
        a = max(0, int(math.floor(off / res + EPS)))
        b = min(n, int(math.ceil((off + dur) / res - EPS)))
        opt = CycleOption(off, first, profile, (a, max(a, b)), option_extra_cost(p, c, off, last))
        return CycleModel(c, [opt], True)
    rel = resample_profile(c, 0.0, res, 10 ** 6)
    dslots = max(rel) + 1 if rel else 1
    profile = tuple(rel.get(k, 0.0) for k in range(dslots))
    es = g.offset_min(c.earliest_start) if c.earliest_start else 0.0
    le = g.offset_min(c.latest_end) if c.latest_end else n * res
    le = min(le, n * res)
    dnd = [(g.offset_min(i.start), g.offset_min(i.end)) for i in p.do_not_disturb] if c.respect_do_not_disturb else []
    options = []
    why = {"window": 0, "dnd": 0, "power": 0}
    for s in range(max(0, int(math.ceil(es / res - EPS))), n):
        sm = s * res
        if sm + dur > le + EPS:
            why["window"] += 1
            break
        if any(a < sm + dur - EPS and b > sm + EPS for a, b in dnd):
            why["dnd"] += 1
            continue
        if any(base_kw[s + k] + pk - max_relief_kw[s + k] > p.site.import_limit_kw + EPS for k, pk in enumerate(profile)):
            why["power"] += 1
            continue
        end_slot = s + dslots
        options.append(CycleOption(sm, s, profile, (s, end_slot), option_extra_cost(p, c, sm, end_slot)))
    reasons = []
    if not options:
        if c.earliest_start and c.latest_end and g.offset_min(c.latest_end) - es < dur - EPS:
            reasons.append("window")
        elif why["power"]:
            reasons.append("power")
        elif why["dnd"]:
            reasons.append("dnd")
        else:
            reasons.append("horizon")
    return CycleModel(c, options, False, reasons)


def interchangeable_cycles(cp: "Compiled") -> list[tuple[CycleModel, CycleModel]]:
    """Pairs (a, b) of cycles of one appliance where some optimal plan starts b after a ends.

    Both have the same profile and no comfort penalty (so a start costs both the same), and
    swapping their starts in any plan where b runs first is again a plan: every start of b that
    lies before a start of a is also one of a's, and every start of a after one of b's is also one
    of b's. Identical windows are the plain case (symmetry); nested or shifted windows are a
    dominance. Chained in list order within each group of identical cycles, so it is exact.
    """
    groups: dict[tuple, list[CycleModel]] = {}
    for cm in cp.cycles:
        if cm.fixed or not cm.options or cm.cycle.late_penalty_eur_per_h:
            continue
        groups.setdefault((cm.cycle.device, cm.options[0].profile_kw), []).append(cm)
    pairs = []
    for same in groups.values():
        same.sort(key=lambda cm: (cm.options[0].start_min, cm.options[-1].start_min))
        for a, b in zip(same, same[1:]):
            sa = {o.start_min for o in a.options}
            sb = {o.start_min for o in b.options}
            if all(q >= max(sa) for q in sb - sa) and all(p <= min(sb) for p in sa - sb):
                pairs.append((a, b))
    return pairs


def power_cliques(cp: "Compiled") -> list[list[tuple[int, int]]]:
    """Per slot, the cycle starts whose load there is above half of the room under the import limit.

    Any two of them together exceed the limit even with all PV and battery output, so at most one
    can be chosen (an exact clique cut, across appliances). The slot row alone lets the LP run two
    heating phases at 0.8 each; this row does not. Items are (cycle index, option index); only
    sets spanning two cycles or more are returned. Valid only while `relief` holds every source that
    can lower net import (PV, battery and V2G discharge): a new source must be added there.
    """
    p = cp.problem
    room = [p.site.import_limit_kw - x for x in least_net_import_kw(cp)]
    heavy: list[list[tuple[int, int]]] = [[] for _ in range(cp.n)]
    least = min(room, default=0.0)
    for i, cm in enumerate(cp.cycles):
        if cm.fixed or not cm.options or 2 * max(cm.options[0].profile_kw, default=0.0) <= least + EPS:
            continue  # (a free start's profile is the same at every start)
        for k, o in enumerate(cm.options):
            for j, pk in enumerate(o.profile_kw):
                if 2 * pk > room[o.first_slot + j] + EPS:
                    heavy[o.first_slot + j].append((i, k))
    out = []
    for items in heavy:
        if len({i for i, _ in items}) > 1:
            out.append(items)
    return out


def heater_cliques(cp: "Compiled") -> list[list[tuple]]:
    """Per slot, on/off heaters (water heaters, heat pumps) and cycle starts of which no two fit together under
    the import limit, or under a shared circuit holding only loads, whatever else the home does (an exact
    clique cut, like `power_cliques`, with heaters in it). Sorted by their load in the slot, the largest such
    set is the longest prefix whose two smallest loads exceed the room. The slot row alone lets the LP run a
    2.55 kW heat pump and a 2.5 kW water heater at 0.6 each under 3.45 kVA (`thermal-33`: its LP bound is
    6 % below the optimum while each heater alone, the other relaxed, is 0.5 %). Items: ("th", id, t) and
    ("hp", id, t) for a heater's on-Boolean in slot t, ("cycle", i, k) for start k of cycle i; only sets with a
    heater and two items or more are returned (`power_cliques` has those of cycles alone)."""
    p = cp.problem
    heaters = [("th", th.id, th.device, th.electric_power_kw) for th in p.thermal_storages if not th.modulating]
    heaters += [("hp", hp.id, hp.device, hp.max_power_kw) for hp in p.heat_pumps if not hp.modulating]
    if not heaters:
        return []
    loads: list[list[tuple[float, str, tuple]]] = [[] for _ in range(cp.n)]  # (kW, device, item) per slot
    for kind, hid, dev, kw in heaters:
        for t in range(cp.n):
            loads[t].append((kw, dev, (kind, hid, t)))
    fixed = [0.0] * cp.n  # fixed cycles per device are counted in `least` (site) or below (circuits)
    by_dev_fixed: dict[str, list[float]] = {}
    for i, cm in enumerate(cp.cycles):
        if cm.fixed:
            acc = by_dev_fixed.setdefault(cm.cycle.device, list(fixed))
            for t, pk in cm.options[0].load().items():
                acc[t] += pk
            continue
        for k, o in enumerate(cm.options):
            for j, pk in enumerate(o.profile_kw):
                if pk > EPS:
                    loads[o.first_slot + j].append((pk, cm.cycle.device, ("cycle", i, k)))
    limits = [(p.site.import_limit_kw, None, [-x for x in least_net_import_kw(cp)])]
    for ci in p.circuits:  # only circuits of loads: nothing on them can give power back
        devs = set(ci.devices)
        if any(b.device in devs for b in p.batteries) or any(pv.device in devs for pv in p.pv) or any(
                e.device in devs and e.v2g for e in p.ev_sessions):
            continue
        own = [sum(by_dev_fixed.get(d, fixed)[t] for d in devs) for t in range(cp.n)]
        limits.append((ci.limit_kw, devs, [-x for x in own]))
    out = []
    for limit, devs, free in limits:
        for t in range(cp.n):
            room = limit + free[t]
            items = sorted((x for x in loads[t] if devs is None or x[1] in devs), key=lambda x: -x[0])
            k = 1
            while k < len(items) and items[k - 1][0] + items[k][0] > room + 1e-6:
                k += 1
            clique = [x[2] for x in items[:k]]
            if k >= 2 and any(it[0] != "cycle" for it in clique):
                out.append(clique)
    return out


def least_net_import_kw(cp: "Compiled") -> list[float]:
    """Per slot, the lowest net import the home can have before its free cycles, EVs and heaters add load:
    base load and fixed cycles minus every source that can lower it (all PV, every battery and V2G car
    discharging at full power). A new source must be subtracted here (power cliques and capacity floors
    rely on it)."""
    p = cp.problem
    relief = [sum(pv.forecast_kw[t] for pv in p.pv) + sum(b.max_discharge_kw for b in p.batteries)
              for t in range(cp.n)]
    for em in cp.evs:  # a V2G car can discharge while plugged in
        if em.ev.v2g:
            for t in em.slots:
                relief[t] += em.ev.max_discharge_kw
    least = [cp.base_kw[t] - relief[t] for t in range(cp.n)]
    for cm in cp.cycles:
        if cm.fixed:
            for t, pk in cm.options[0].load().items():
                least[t] += pk
    return least


def capacity_cycle_floors(cp: "Compiled", windows: list[list[int]]) -> list[tuple[int, list[float]]]:
    """Capacity charges: per free cycle, the peak (kW) each of its starts forces at least, wherever the rest
    of the home goes: max over the metering windows of the window's average of max(0, least net import +
    the cycle's load). So `peak >= sum over starts of x[s] * floor[s]` is valid (a cycle runs exactly once)
    and exact for whole starts, while the window rows alone let the LP spread a cycle over many starts at a
    fraction each, its load smeared under the peak. Items are (cycle index, floor per option); cycles
    whose floors are all within 1 W of the home's own floor are left out."""
    least = least_net_import_kw(cp)
    imp0 = [max(0.0, x) for x in least]
    where = {t: k for k, ts in enumerate(windows) for t in ts}
    sums = [sum(imp0[t] for t in ts) for ts in windows]
    own = max((sm / len(ts) for sm, ts in zip(sums, windows)), default=0.0)
    out = []
    for i, cm in enumerate(cp.cycles):
        if cm.fixed or len(cm.options) < 2:
            continue
        floors = []
        for o in cm.options:
            add: dict[int, float] = {}
            for t, pk in o.load().items():
                k = where.get(t)
                if k is not None:
                    add[k] = add.get(k, 0.0) + max(0.0, least[t] + pk) - imp0[t]
            floors.append(max([own] + [(sums[k] + a) / len(windows[k]) for k, a in add.items()]))
        if max(floors) > own + 1e-3:
            out.append((i, floors))
    return out


def capacity_ev_peak_floor(cp: "Compiled", windows: list[list[int]]) -> float:
    """Capacity charges: the least peak (kW) at which some EV still gets its energy, in whole steps.

    In a metering window the import adds up to at least the home's least net import (`least_net_import_kw`)
    plus what the EV draws there, so a peak P lets the EV draw at most P x len(window) - sum(least) kW-slots in
    that window, and with current steps only the sums that whole steps can make (an on/off EV: nothing below its
    minimum); slots outside every window are free. The least P at which those caps still add up to the energy
    the EV needs (in all, and by each minimum state's time) is a valid lower bound on the peak of every plan
    (other loads only add to the import), while the LP relaxation spreads fractions of the lowest step under a
    lower peak (`ev-241`: LP 5 % under the optimum). Continuous EVs, where the LP already is exact on this,
    give 0. Not for an elastic (explanation) model, where the EV may fall short. One EV at a time."""
    least = least_net_import_kw(cp)
    out = 0.0
    for em in cp.evs:
        if not em.slots or not (em.levels_kw or em.semicontinuous):
            continue
        needs = [(em.slots, em.need_kwh)] + [([t for t in em.slots if t < k], kwh)
                                             for k, kwh, _r in min_state_bounds(cp.problem, em.ev.min_energy_at)]
        for slots, need_kwh in needs:
            if slots and need_kwh > 0:
                out = max(out, _ev_peak_floor(cp, em, slots, need_kwh, windows, least))
    return out


def capacity_heater_peak_floor(cp: "Compiled", windows: list[list[int]]) -> float:
    """Capacity charges: the least peak (kW) the on/off heaters' whole on-slots force.

    An on/off water heater or heat pump that must be on at least k times in some slots (`heating_count_bounds`
    from the start and towards the end, `heat_pump_count_cuts` over every interval) is on in k different ones, and
    an on-slot t lifts its metering window's average to at least f(t) = (the window's least net import with the
    heater's full power added in t) / the window's length. So every plan's peak is at least the k-th smallest f
    over those slots, while the LP relaxation spreads fractions of an on-slot under a lower peak (`thermal-447`:
    LP 5 % under the optimum, this floor 2.94 -> 3.96 kW against a 4.42 kW plan). Not for an elastic
    (explanation) model, where comfort and stored heat may give way."""
    p = cp.problem
    heaters = [th for th in p.thermal_storages if not th.modulating]
    pumps = [hp for hp in p.heat_pumps if not hp.modulating]
    if not heaters and not pumps:
        return 0.0
    least = least_net_import_kw(cp)
    imp0 = [max(0.0, x) for x in least]
    where = {t: k for k, ts in enumerate(windows) for t in ts}
    sums = [sum(imp0[t] for t in ts) for ts in windows]

    def lifted(power_kw: float) -> list[float]:
        return [0.0 if (k := where.get(t)) is None else
                (sums[k] + max(0.0, least[t] + power_kw) - imp0[t]) / len(windows[k]) for t in range(cp.n)]

    def kth(values: list[float], k: int) -> float:
        return heapq.nsmallest(k, values)[-1] if 0 < k <= len(values) else 0.0

    out = 0.0
    for th in heaters:
        f = lifted(th.electric_power_kw)
        lo, _hi, suffix = heating_count_bounds(th, cp.n, cp.dt_h)
        firsts = [t for t in range(cp.n) if lo[t] >= 1 and (t == 0 or lo[t] > lo[t - 1])]  # the rest are weaker
        out = max([out] + [kth(f[:t + 1], int(lo[t])) for t in firsts] + [kth(f[t + 1:], need) for t, need in suffix])
    for hp in pumps:
        f = lifted(hp.max_power_kw)
        out = max([out] + [kth(f[s:t + 1], lo) for s, t, lo, _hi in hp_count_cuts(cp, hp) if lo >= 1])
    return max(0.0, out - 1e-7)


def capacity_ev_window_cuts(cp: "Compiled", windows: list[list[int]], peak0_kw: float
                            ) -> list[tuple[int, list[int], float, float]]:
    """Capacity charges: per EV with steps or on/off charging and per metering window, `what the EV draws in the
    window (kW-slots) <= a0 + slope x (peak - peak0_kw)`, valid for every plan whose peak is at least `peak0_kw`.

    At the peak P the EV may draw at most r(P) = P x len(window) - sum(least net import) there (as in
    `capacity_ev_peak_floor`), and only what whole steps sum to: a0, the largest such sum within r(peak0_kw), until
    the peak reaches the next sum a1 at P1 = peak0_kw + (a1 - r) / len(window). The line through (peak0_kw, a0) and
    (P1, a1) lies above that staircase and above r(P) from there on (its slope is at least len(window)), so no plan
    is cut. The LP relaxation filled each window exactly up to r with fractions of a step (`ev-223`: 0.2 % under the
    optimum with the starts fixed). Items: (EV index, its slots in the window, a0, slope); only where a0 < r."""
    least = least_net_import_kw(cp)
    out = []
    for i, em in enumerate(cp.evs):
        if not em.slots or not (em.levels_kw or em.semicontinuous):
            continue
        mine = set(em.slots)
        unit = step_unit_kw(em)
        for ts in windows:
            slots = [t for t in ts if t in mine]
            r = peak0_kw * len(ts) - sum(least[t] for t in ts)
            if not slots or r <= 1e-9:
                continue
            if em.levels_kw:
                if unit is None:
                    continue
                g, units = unit[0], set(unit[1])
                sums = {0}
                for _ in range(len(slots)):
                    sums |= {a + u for a in sums for u in units}
                reach = sorted(a * g for a in sums)
                k = bisect.bisect_right(reach, r + 1e-9)
                a0 = reach[k - 1]
                if k == len(reach):
                    continue  # the EV cannot draw more than a0 anyway
                a1 = reach[k]
            elif r < em.ev.min_power_kw:
                a0, a1 = 0.0, em.ev.min_power_kw
            else:
                continue
            if a0 < r - 1e-6 and a1 - a0 <= 100 * (a1 - r):  # (a steeper line would be a badly scaled row)
                out.append((i, slots, a0, len(ts) * (a1 - a0) / (a1 - r)))
    return out


def step_unit_kw(em: EVModel) -> Optional[tuple[float, list[int]]]:
    """The common unit of the EV's current steps (kW, the gcd of the steps in W) and each step as a whole multiple
    of it, in the steps' order; None if a step is not a whole number of watts."""
    watts = [int(round(lv * 1000)) for lv in em.levels_kw or ()]
    g = 0
    for w in watts:
        g = math.gcd(g, w)
    if g <= 0 or any(abs(w - lv * 1000) > 1e-6 for w, lv in zip(watts, em.levels_kw)):
        return None
    return g / 1000.0, [w // g for w in watts]


def step_grid(em: EVModel, dt: float) -> Optional[tuple[list[int], float]]:
    """Every current step as a whole multiple of the steps' common unit, and that unit in delivered kWh per slot.

    Steps are whole watts (1 W power resolution), so any plan delivers a multiple of
    q = efficiency * dt * gcd(steps in W). None if a step is not a whole number of watts.
    """
    unit = step_unit_kw(em)
    if unit is None:
        return None
    return unit[1], em.ev.efficiency * dt * unit[0]


def _ev_peak_floor(cp: "Compiled", em: EVModel, slots: list[int], need_kwh: float, windows: list[list[int]],
                   least: list[float]) -> float:
    """`capacity_ev_peak_floor` for one EV that must deliver `need_kwh` in `slots` (0 if it says nothing)."""
    dt, e = cp.dt_h, em.ev
    mine = set(slots)
    in_window = {t for ts in windows for t in ts}
    free = sum(1 for t in slots if t not in in_window)
    if em.levels_kw:
        unit = step_unit_kw(em)
        if unit is None:
            return 0.0
        unit_kw, units = unit[0], sorted(set(unit[1]))
        need = math.ceil(need_kwh / (e.efficiency * dt * unit_kw) - 1e-7)  # whole units of kW-slots
        top = units[-1]
    else:
        unit_kw, need, top = 1.0, need_kwh / (e.efficiency * dt) - 1e-9, e.max_power_kw
    need -= free * top
    cells = []  # per window: (its length, sum of least net import, sorted reachable EV sums, EV slots in it)
    for ts in windows:
        k = sum(1 for t in ts if t in mine)
        if not k:
            continue
        reach: Optional[list[float]] = None
        if em.levels_kw:
            sums = {0}
            for _ in range(k):
                sums |= {a + u for a in sums for u in units}
            reach = sorted(sums)
        cells.append((len(ts), sum(least[t] for t in ts), reach, k))
    if need <= 0 or not cells:
        return 0.0

    def room(peak: float) -> float:
        """What the EV can draw in all windows at this peak (units of `unit_kw` kW-slots)."""
        total = 0.0
        for n_w, base, reach, k in cells:
            cap = (peak * n_w - base) / unit_kw
            if reach is not None:
                i = bisect.bisect_right(reach, cap + 1e-9)
                total += reach[i - 1] if i else 0.0
            elif cap >= e.min_power_kw - 1e-9:
                total += min(cap, k * e.max_power_kw)
        return total

    lo, hi = 0.0, max((top * unit_kw * k + base) / n_w for n_w, base, _r, k in cells)
    if room(hi) < need - 1e-9 or room(lo) >= need - 1e-9:
        return 0.0  # the windows cannot hold it (the model is infeasible), or no peak is forced
    for _ in range(60):  # room() is monotone in the peak
        mid = 0.5 * (lo + hi)
        if room(mid) >= need - 1e-9:
            hi = mid
        else:
            lo = mid
    return lo - 1e-7  # lo cannot hold it: every plan's peak is above (a little margin for floats)


def _grid_cost_by_slot(cp: "Compiled") -> Optional[Callable[[int, float], float]]:
    """The grid terms' cost of one slot, f(t, net import kW), where it is convex and non-decreasing in the net import
    (import weight >= export revenue >= 0: no negative prices) and nothing can lower the net import below
    `least_net_import_kw` (no battery, no V2G car); else None. What `cycle_cost_floors` and `slot_cost_floors`
    rest on: there every other load only raises what a start or an on-slot costs on top of the least."""
    p = cp.problem
    if p.batteries or any(em.ev.v2g for em in cp.evs):
        return None
    if any(cp.w_imp[t] < 0 or cp.w_exp[t] > 0 or cp.w_imp[t] + cp.w_exp[t] < 0 for t in range(cp.n)):
        return None
    dt, E = cp.dt_h, p.site.export_limit_kw

    def f(t: int, n: float) -> float:
        n = max(n, -E)
        return dt * (cp.w_imp[t] * n if n >= 0 else cp.w_exp[t] * -n)

    return f


def cycle_cost_floors(cp: "Compiled") -> Optional[tuple[list[int], float, list[tuple[int, list[float]]]]]:
    """A lower bound on the grid cost (the objective's import and export terms) of the slots some cycle start
    touches, by whole cycle starts: `grid cost over those slots >= F0 + sum over cycles and starts of x[s] *
    extra[s]`, F0 their cost at the home's least net import, extra[s] what the cycle's load costs on top of
    that alone (only those slots: a dense row over the whole horizon slowed HiGHS' simplex). Valid when each slot's cost is convex and
    non-decreasing in the net import (import weight >= export revenue >= 0: no negative prices) and nothing can
    lower the net import below the least (no battery, no V2G): then every other load only raises each cycle's
    cost (convexity), and curtailing PV costs nothing here (the slot cost is flat below the export limit).
    Exact for whole starts; the slot rows alone let the LP cut a cycle into fractions that fill a PV surplus
    exactly, which whole starts cannot (README "Many cycles"). None where it does not hold, or where the LP
    implies it (no slot a cycle touches can export)."""
    f = _grid_cost_by_slot(cp)
    if f is None or not any(not cm.fixed for cm in cp.cycles):
        return None
    least = least_net_import_kw(cp)
    free = [(i, cm) for i, cm in enumerate(cp.cycles) if not cm.fixed and cm.options]
    ts = sorted({t for _, cm in free for o in cm.options for t in range(o.first_slot, o.first_slot + len(o.profile_kw))})
    if all(least[t] >= 0 for t in ts):
        # Every slot a cycle touches imports at least `least`: the slot's cost is linear above it, so the LP's
        # own rows (import >= net import, import weight + export weight >= 0) already imply the floor.
        return None
    out = [(i, [sum(f(t, least[t] + pk) - f(t, least[t]) for t, pk in o.load().items()) for o in cm.options])
           for i, cm in free]
    return ts, sum(f(t, least[t]) for t in ts), out


def slot_cost_floors(cp: "Compiled") -> list[tuple[int, float, list[tuple[tuple, float]]]]:
    """`cycle_cost_floors` slot by slot, for on/off heaters: in each slot t with a PV surplus (least net import
    below zero) where a heater's on-slot adds load, `grid cost of t >= f(least) + sum over the heaters' on-slots and
    the cycle starts loading t of x * (f(least + load) - f(least))` (valid by the same convexity: increments on a
    common base add up to at most the joint one; exact for whole starts and on-slots). The LP fills a surplus with
    a fraction of a 3 kW water heater that whole on-slots cannot: `thermal-237` (576 x 5 min, PV) closed its 0.33 %
    root gap in 45 sub-MIPs and 1.1 s. Slots without a surplus need no row (the cost is linear there). Slots where
    only cycles add load get none either: those rows halve the LP gap of the 8-cycle homes with PV
    (`many_cycles_4k6-107` 4.1 % -> 1.4 %), but CP-SAT proves those homes (with the rows it was slower, 2-3x), and
    HiGHS got slower where they lift little (`appliances-258` 1.1 -> 2.3 s of CPU). Items: (t, f(least),
    [(item, extra)]), items as in `heater_cliques`."""
    f = _grid_cost_by_slot(cp)
    if f is None:
        return []
    p = cp.problem
    least = least_net_import_kw(cp)
    per: dict[int, list[tuple[tuple, float]]] = {}

    def add(t: int, item: tuple, kw: float) -> None:
        if least[t] < 0 and kw > 0:
            per.setdefault(t, []).append((item, f(t, least[t] + kw) - f(t, least[t])))

    for i, cm in enumerate(cp.cycles):
        if not cm.fixed:
            for k, o in enumerate(cm.options):
                for t, pk in o.load().items():
                    add(t, ("cycle", i, k), pk)
    for th in p.thermal_storages:
        if not th.modulating:
            for t in range(cp.n):
                add(t, ("th", th.id, t), th.electric_power_kw)
    for hp in p.heat_pumps:
        if not hp.modulating:
            for t in range(cp.n):
                add(t, ("hp", hp.id, t), hp.max_power_kw)
    return [(t, f(t, least[t]), items) for t, items in sorted(per.items()) if any(it[0] != "cycle" for it, _e in items)]


HP_COUNT_MAX_SLOTS = 96  # longest interval of `heat_pump_count_cuts` (8 h at 5 min, 24 h at 15 min)


def heat_pump_count_cuts(hp: SpaceHeating, n: int, dt_h: float) -> list[tuple[int, int, int, int]]:
    """Whole on-slots of an on/off heat pump over every interval [s, t] (exact, like `heating_count_bounds`).

    Over [s, t] the house ends at T[t] = a^L T[s-1] + f(s, t) + sum over tau in [s, t] of w[t, tau] on[tau]
    (L = t - s + 1 slots, f the unheated drift, w[t, tau] = a^(t - tau) gain[tau] P). T[s-1] lies in the band
    of slot s-1 (the initial temperature for s = 0) and T[t] in that of slot t, so the on-slots of [s, t]
    number at least (floor[t] - a^L top[s-1] - f) / max w, rounded up, and at most
    (top[t] - a^L floor[s-1] - f) / min w, rounded down. The LP keeps fractions of one slot's heat spread
    over many slots; whole counts close that gap where the band is narrow against one slot's heat (HiGHS
    stayed at 2 % on `thermal-33`). Returns (s, t, lo, hi) for lo <= on[s] + ... + on[t] <= hi, only the
    intervals not implied by a shorter one ending at t (a longer interval holds at least as many on-slots)."""
    a = hp.decay(dt_h)
    P = hp.max_power_kw
    lo_c, hi_c = hp.comfort_min_c, hp.comfort_max_c
    gain = [hp.gain_c_per_kw(t, dt_h) * P for t in range(n)]
    drift = [hp.drift_c(t, dt_h) for t in range(n)]
    out = []
    for t in range(n):
        f, w_max, w_min, decay = 0.0, 0.0, math.inf, 1.0
        best_lo, best_hi = 0, math.inf
        for s in range(t, max(-1, t - HP_COUNT_MAX_SLOTS), -1):  # growing the interval backwards from t
            f += decay * drift[s]
            w = decay * gain[s]
            w_max, w_min = max(w_max, w), min(w_min, w)
            decay *= a
            top_before = hp.initial_indoor_c if s == 0 else hi_c[s - 1]
            floor_before = hp.initial_indoor_c if s == 0 else lo_c[s - 1]
            lo = math.ceil((lo_c[t] - decay * top_before - f) / w_max - 1e-9) if w_max > 0 else 0
            hi = math.floor((hi_c[t] - decay * floor_before - f) / w_min + 1e-9) if w_min > 0 else t - s + 1
            lo, hi = max(0, lo), min(t - s + 1, hi)
            if lo > best_lo or hi < best_hi:
                out.append((s, t, lo, max(lo, hi)))
            best_lo, best_hi = max(best_lo, lo), min(best_hi, hi)
    return out


def hp_count_cuts(cp: Compiled, hp: SpaceHeating) -> list[tuple[int, int, int, int]]:
    """`heat_pump_count_cuts` of the home, computed once: the MILP's counts (in each model built: the staged EV search
    builds two) and the capacity charge's heater floor read them, and at 576 slots they take 50 ms."""
    key = ("heat_pump_count_cuts", hp.id)
    if key not in cp.memo:
        cp.memo[key] = heat_pump_count_cuts(hp, cp.n, cp.dt_h)
    return cp.memo[key]


HP_MIR_MIN_FRACTION = 0.02  # smaller fractional parts give huge temperature coefficients (and nothing the count lacks)
HP_MIR_MAX_SLOT_SHARE = 0.1  # of the comfort band one on-slot may heat for `heat_pump_mir_cuts` (README "Sixth round")


def heat_pump_mir_cuts(hp: SpaceHeating, n: int, dt_h: float) -> list[tuple[int, int, float, int]]:
    """Whole on-slots over [s, t] (s >= 1) against the temperature before s: Gomory's mixed-integer rounding.

    With z the on-slots of [s, t], T = T[s-1] and the notation of `heat_pump_count_cuts`: w_max z >= floor[t] -
    a^L T - f, i.e. z + c y >= b with y = T - floor[s-1] >= 0, c = a^L / w_max, b = (floor[t] - a^L floor[s-1]
    - f) / w_max. z is whole, so z + c y / frac(b) >= ceil(b) holds for every plan. The count cut is the same
    row with T at the top of its band; where the LP holds the house at its floor on fractions of a slot, this one
    cuts it off (`ev-271`'s LP gap to the optimum 0.18 % -> 0.14 %, `thermal-141` 0.41 % -> 0.27 %). Returns
    (s, t, coef, rhs) for z + coef (T[s-1] - floor[s-1]) >= rhs; b is lowered by 1e-9 before rounding (only
    weaker), and fractions below HP_MIR_MIN_FRACTION are left out (huge temperature coefficients, and the count
    cut nearly as strong). None where one on-slot heats more than HP_MIR_MAX_SLOT_SHARE of the band (hourly slots):
    there the cuts lifted the LP (`thermal-33` 67.82 -> 68.56, optimum 70.22) but HiGHS took longer to prove."""
    a = hp.decay(dt_h)
    P = hp.max_power_kw
    lo_c = hp.comfort_min_c
    gain = [hp.gain_c_per_kw(t, dt_h) * P for t in range(n)]
    drift = [hp.drift_c(t, dt_h) for t in range(n)]
    band = min(b - c for b, c in zip(hp.comfort_max_c[:n], lo_c[:n]))
    out: list[tuple[int, int, float, int]] = []
    if max(gain, default=0.0) > HP_MIR_MAX_SLOT_SHARE * band:
        return out
    for t in range(n):
        f, w_max, decay = 0.0, 0.0, 1.0
        for s in range(t, max(0, t - HP_COUNT_MAX_SLOTS), -1):  # growing [s, t] backwards, as in the count cuts
            f += decay * drift[s]
            w_max = max(w_max, decay * gain[s])
            decay *= a
            if w_max <= 0:
                continue
            b = (lo_c[t] - decay * lo_c[s - 1] - f) / w_max - 1e-9
            frac = b - math.floor(b)
            if b > 0 and frac >= HP_MIR_MIN_FRACTION:
                out.append((s, t, decay / w_max / frac, math.ceil(b)))
    return out


def heating_count_bounds(th: ThermalStorage, n: int, dt_h: float) -> tuple[list[float], list[float], list[tuple[int, int]]]:
    """Bounds on S_t, the number of on-slots of an on/off heater up to slot t, and suffix needs.

    Stored heat is e_t = initial + chunk * S_t - D_t (D_t the heat drawn up to t, chunk the heat of
    one on-slot), so min <= e_t <= max reads (D_t + min - initial) / chunk <= S_t <= (D_t + max -
    initial) / chunk, and the final energy needs S_n - S_t >= (final - max + D_n - D_t) / chunk. S_t is
    a whole number in every plan, so these bounds round inward: valid for every plan (a Chvatal-Gomory
    cut), while the LP relaxation keeps them fractional. Rounded, they lift the LP bound by up to a
    chunk's worth per binding slot, which is what left HiGHS seconds short of the proof next to a battery.
    Returns (lo[t], hi[t], [(t, need)]) for the suffixes with a positive need.
    """
    chunk = th.cop * dt_h * th.electric_power_kw
    drawn, D = 0.0, []
    for t in range(n):
        drawn += (th.heat_demand_kw[t] + th.standing_loss_kw) * dt_h
        D.append(drawn)
    ini = th.initial_energy_kwh
    lo, hi = [], []
    for t in range(n):
        lo.append(max(0.0, math.ceil((D[t] + th.min_energy_kwh - ini) / chunk - 1e-9)))
        hi.append(min(t + 1.0, math.floor((D[t] + th.max_energy_kwh - ini) / chunk + 1e-9)))
    suffix = []
    if th.final_energy_kwh is not None:
        lo[-1] = max(lo[-1], math.ceil((D[-1] + th.final_energy_kwh - ini) / chunk - 1e-9))
        for t in range(n - 1):
            need = math.ceil((th.final_energy_kwh - th.max_energy_kwh + D[-1] - D[t]) / chunk - 1e-9)
            if need > 0:
                suffix.append((t, need))
    return lo, hi, suffix


def ev_model(p: Problem, e: EVSession) -> EVModel:
    g = p.grid
    res = g.resolution_min
    a, b = g.offset_min(e.arrival), g.offset_min(e.departure)
    slots = [t for t in range(g.slots) if t * res >= a - EPS and (t + 1) * res <= b + EPS]
    levels = e.power_levels_kw()
    em = EVModel(e, slots, e.energy_kwh, e.max_energy_kwh, levels, levels is None and e.min_power_kw > 0)
    return replace(em, need_kwh=_whole_step_need_kwh(em, g.dt_h))


def _whole_step_need_kwh(em: EVModel, dt_h: float) -> float:
    """The need of a car on current steps that must leave (nearly) full: whole steps deliver multiples of q =
    efficiency x slot x gcd of the steps, and where no multiple lies between the need and the room (a car that must
    leave full, target 100 %: held-out homes `ev-781`, `full-1150` were infeasible by 0.03-0.04 kWh) the car leaves
    with the largest multiple within its room, less than q short (the car's own charger tops it up). Unchanged
    elsewhere, and for a V2G car (whose discharge is not on the grid)."""
    e = em.ev
    grid = step_grid(em, dt_h) if em.levels_kw else None
    if grid is None or e.v2g or em.max_kwh is None or em.need_kwh > em.max_kwh + 1e-9:
        return em.need_kwh
    q = grid[1]
    fits = math.floor(em.max_kwh / q + 1e-7) * q
    if math.ceil(em.need_kwh / q - 1e-7) * q <= fits + 1e-9:
        return em.need_kwh
    return max(0.0, fits)


def _v2g_may_export(evs: list[EVModel], may_export: list[bool]) -> None:
    """A V2G car that may export can feed the grid in every slot it is plugged in (issue 14 item 3)."""
    for em in evs:
        if em.ev.v2g and em.ev.export_allowed:
            for t in em.slots:
                may_export[t] = True


def compile_problem(p: Problem) -> Compiled:
    g, s = p.grid, p.site
    n = g.slots
    base = list(s.base_load_kw)
    pv_fixed = [0.0] * n
    pv_max = [0.0] * n
    for pv in p.pv:
        for t in range(n):
            pv_max[t] += pv.forecast_kw[t]
            if not pv.curtailable:
                pv_fixed[t] += pv.forecast_kw[t]
    relief = [pv_max[t] + sum(b.max_discharge_kw for b in p.batteries) for t in range(n)]
    obj = p.objective
    pi, pe, co2 = s.import_price_eur_per_kwh, s.export_price_eur_per_kwh, s.co2_g_per_kwh
    cost_norm = sum(abs(x) for x in pi) / n or 1.0
    co2_norm = (sum(co2) / n / 1000.0) or 1.0
    if obj.kind == "economic":
        w_imp, w_exp = list(pi), [-x for x in pe]
    elif obj.kind == "ecologic":
        w_imp, w_exp = [c / 1000.0 for c in co2], [0.0] * n
    else:
        w = obj.cost_weight
        w_imp = [w * pi[t] / cost_norm + (1 - w) * co2[t] / 1000.0 / co2_norm for t in range(n)]
        w_exp = [-w * pe[t] / cost_norm for t in range(n)]
    gr = p.grid_request
    excl_bat = set()
    for t in range(n):
        if (w_imp[t] < 0 or w_exp[t] > 0 or (gr is not None and gr.min_net_import_kw[t] is not None)
                or pv_fixed[t] - base[t] > s.export_limit_kw + EPS):
            excl_bat.add(t)
    excl_grid = {t for t in range(n) if w_imp[t] + w_exp[t] < -EPS}
    has_flex_gen = bool(p.batteries) or bool(p.pv)
    may_export = [has_flex_gen and (pv_max[t] > 0 or bool(p.batteries)) for t in range(n)]
    for t in range(n):
        if base[t] - pv_max[t] - sum(b.max_discharge_kw for b in p.batteries) >= 0:
            may_export[t] = False
    cycles = [cycle_model(p, c, base, relief) for c in p.cycles]
    evs = [ev_model(p, e) for e in p.ev_sessions]
    _v2g_may_export(evs, may_export)
    return Compiled(p, n, g.dt_h, base, pv_fixed, w_imp, w_exp, cycles, evs, excl_bat, excl_grid, may_export,
                    cost_norm, co2_norm)


def min_state_bounds(p: Problem, reqs: tuple[MinimumState, ...]) -> list[tuple[int, float, MinimumState]]:
    """(boundary k, kWh, requirement) for each minimum state: the state after k slots must hold kWh.

    An instant inside a slot binds both of its boundaries (the state is linear in between); boundaries
    after the horizon end are dropped (a later plan sees them). k = 0 is the initial state.
    """
    g = p.grid
    out: dict[int, tuple[float, MinimumState]] = {}
    for r in reqs:
        x = g.offset_min(r.at) / g.resolution_min
        for k in {int(math.floor(x + EPS)), int(math.ceil(x - EPS))}:
            if 0 <= k <= g.slots and r.energy_kwh > out.get(k, (-1.0, r))[0]:
                out[k] = (r.energy_kwh, r)
    return [(k, kwh, r) for k, (kwh, r) in sorted(out.items())]


def has_battery_or_ev(cp: Compiled) -> bool:
    """A battery, or an EV plugged in within the horizon: the continuous storage the backend rules look at."""
    return bool(cp.problem.batteries or any(em.slots for em in cp.evs))


def stores_energy(cp: Compiled) -> bool:
    """A battery, a water heater, a heat pump's house or an EV within the horizon: decisions beyond cycle starts."""
    p = cp.problem
    return bool(has_battery_or_ev(cp) or p.thermal_storages or p.heat_pumps)


def money_weight(p: Problem) -> float:
    """Objective units per EUR of a cost beside the energy prices (battery wear, capacity charge)."""
    kind = p.objective.kind
    if kind == "economic":
        return 1.0
    if kind == "ecologic":
        return 0.0
    norm = sum(abs(x) for x in p.site.import_price_eur_per_kwh) / p.grid.slots or 1.0
    return p.objective.cost_weight / norm


def day_slot_groups(p: Problem) -> list[tuple[list[int], float]]:
    """The slots of each local day of the horizon, and the share of that day they cover (DST-aware)."""
    g = p.grid
    days: dict = {}
    for t in range(g.slots):
        days.setdefault(g.local(g.slot_start(t)).date(), []).append(t)
    out = []
    for day, ts in days.items():
        nxt = TimeGrid.for_local_day(day, g.timezone, g.resolution_min)
        out.append((ts, len(ts) * g.resolution_min / (nxt.slots * nxt.resolution_min)))
    return out


def capacity_windows(p: Problem, cc: CapacityCharge) -> list[list[int]]:
    """The horizon's slots of each metering window of a capacity charge, windows counted from the period's
    start; a window cut by the horizon's edges averages over the slots it has (never lower than the meter)."""
    g = p.grid
    groups: dict[int, list[int]] = {}
    for t in range(g.slots):
        a = g.slot_start(t)
        if cc.start <= a < cc.end:
            groups.setdefault(int((a - cc.start).total_seconds() // 60 // max(cc.window_min, g.resolution_min)),
                              []).append(t)
    return [ts for _w, ts in sorted(groups.items())]


def device_terms(mm, device: str, unit) -> tuple[list[list[tuple]], list]:
    """Per slot, the variables (with coefficients) and the constant power of one physical device (consumption
    positive), read from the maps both backends' `_add_*` functions leave on their model `mm` (`cycle_x`, `ev_p`,
    `ev_d`, `bat`, `pv_u`, `th_p`, `hp_p`: same names, same shapes). Variables that already are powers get +-1;
    `unit(kw)` turns a fixed power in kW into the backend's power unit (kW in the MILP, W or 0.1 W in CP-SAT), for
    cycle profiles and uncurtailable PV. Used for shared circuits (issue 14 item 4)."""
    cp = mm.cp
    terms: list[list[tuple]] = [[] for _ in range(cp.n)]
    const = [unit(0.0)] * cp.n
    for cm in cp.cycles:
        if cm.cycle.device != device:
            continue
        if cm.fixed:
            o = cm.options[0]
            for k, pk in enumerate(o.profile_kw):
                const[o.first_slot + k] += unit(pk)
            continue
        for (x, _sm), o in zip(mm.cycle_x.get(cm.cycle.id, []), cm.options):
            for k, pk in enumerate(o.profile_kw):
                if pk:
                    terms[o.first_slot + k].append((x, unit(pk)))
    for e in cp.problem.ev_sessions:
        if e.device == device:
            for t, ts in mm.ev_p.get(e.id, []):
                terms[t].extend(ts)
            for t, v in mm.ev_d.get(e.id, []):  # V2G discharge, if any
                terms[t].append((v, -1))
    for b in cp.problem.batteries:
        if b.device == device:
            c, d = mm.bat[b.id][:2]
            for t in range(cp.n):
                terms[t] += [(c[t], 1), (d[t], -1)]
    for pv in cp.problem.pv:
        if pv.device == device:
            cols = mm.pv_u.get(pv.id)
            for t in range(cp.n):
                if cols is None:
                    const[t] -= unit(pv.forecast_kw[t])
                else:
                    terms[t].append((cols[t], -1))
    for th in cp.problem.thermal_storages:
        if th.device == device:
            for t, term in enumerate(mm.th_p[th.id]):
                terms[t].append(term)
    for hp_device, hp_terms in mm.hp_p.values():  # space-heating heat pumps, if any
        if hp_device == device:
            for t, term in enumerate(hp_terms):
                terms[t].append(term)
    return terms, const
