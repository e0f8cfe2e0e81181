"""Exact envelope of a home whose only free device is one battery, without an LP per slot.

Why: the LP path (`envelope_solver`) re-solves HiGHS twice per slot (192 runs for a 96-slot day, ~0.2 ms of
set-up each before any iteration), which caps offers at a few homes per second per process. For this class
of home the fixed-plan LP is a one-dimensional storage problem, solved here exactly by dynamic programming
over the state of charge (SoC):

* each slot's cost as a function of the SoC change is convex piecewise linear (PWL): the site's import /
  export prices and the battery's throughput costs, within the device and site power limits; with losses a
  kWh stored costs 1 / charge efficiency kWh imported and a kWh drawn gives discharge efficiency kWh, which
  keeps the slopes rising as long as export earns no more than import costs (checked per slot);
* F_t(s), the least cost of slots 0..t ending at SoC s, and B_t(s), the least cost of slots t+1.. from SoC s,
  are convex PWL: one forward and one backward pass of inf-convolutions (merging slope-sorted segments),
  each clipped to that slot's SoC bounds;
* the highest (lowest) net import at slot t is the largest (smallest) SoC change that joins dom F_{t-1} to
  dom B_t within the slot's power limits; the cheapest way to hold it minimises F_{t-1}(s) + B_t(s + change)
  over s, a convex function of one variable, checked at the breakpoints of both.

This is the LP path's answer (same objective: max net import first, then least cost), not an approximation,
with one difference where the battery has losses: the LP may charge and discharge in one slot, burning energy
through the losses to import more (or store less) than one setpoint per slot can, and then reports a limit
wider by up to max charge power x (1 - charge x discharge efficiency), which the MILP re-plan of an activation
cannot hold (it is infeasible there, or needs both at once). The DP path's limits are the ones a hub can follow.
`tests/optimizer/test_envelope_storage.py` compares both on random homes, with and without losses, and pins
and solves every limit where they differ. Each PWL segment carries its
objective slope (what is minimised, in the model's cost units) and its energy-cost slope (EUR, what the
offer reports); among equally cheap solutions the one with the lower energy cost is taken.

`storage_model` says whether a built model is of this class (exactly the site's and the battery's columns
and rows, no integer column, no gain from importing and exporting, or charging and discharging, at once);
anything else (and a slot whose cost is not convex in the SoC change) goes through the LP path.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from operator import itemgetter
from dataclasses import dataclass
from typing import Optional

TOL = 1e-9


class Pwl:
    """A convex PWL function on [a, b]: values at a, segments sorted by objective slope.

    `segs`: (length, objective slope, energy-cost slope); `fa`/`ea`: objective / energy cost at a.
    The breakpoints and the values there are computed once (`at` is a binary search)."""
    __slots__ = ("a", "fa", "ea", "segs", "xs", "fs", "es")

    def __init__(self, a: float, fa: float, ea: float, segs: list[tuple[float, float, float]]):
        self.a, self.fa, self.ea, self.segs = a, fa, ea, segs
        xs, fs, es = [a], [fa], [ea]
        for length, sf, se in segs:
            xs.append(xs[-1] + length)
            fs.append(fs[-1] + length * sf)
            es.append(es[-1] + length * se)
        self.xs, self.fs, self.es = xs, fs, es

    @property
    def b(self) -> float:
        return self.xs[-1]

    def at(self, x: float) -> tuple[float, float]:
        """(objective, energy cost) at x (clamped to the domain)."""
        xs = self.xs
        i = bisect_right(xs, x) - 1
        if i < 0:
            return self.fa, self.ea
        if i >= len(self.segs):
            return self.fs[-1], self.es[-1]
        step = x - xs[i]
        _, sf, se = self.segs[i]
        return self.fs[i] + step * sf, self.es[i] + step * se

    def breakpoints(self) -> list[float]:
        return self.xs

    def mirrored(self) -> "Pwl":
        """x -> f(-x)."""
        return Pwl(-self.b, self.fs[-1], self.es[-1], [(length, -sf, -se) for length, sf, se in reversed(self.segs)])


def infconv(f: Pwl, g: Pwl, lo: float = -math.inf, hi: float = math.inf) -> Optional[Pwl]:
    """(f □ g)(z) = min over x of f(x) + g(z - x), on [lo, hi]: the segments of both, merged by slope (equal
    slopes are one segment, which keeps the functions short), cut to [lo, hi] in the same pass; None when
    that leaves nothing."""
    segs = sorted(f.segs + g.segs, key=_SLOPES)
    a0 = f.a + g.a
    a, b = max(a0, lo), min(a0 + sum(s[0] for s in segs), hi)
    if a > b + TOL:
        return None
    b = max(a, b)
    fa, ea, pos = f.fa + g.fa, f.ea + g.ea, a0
    out: list[tuple[float, float, float]] = []
    for length, sf, se in segs:
        if pos >= b:
            break
        end = pos + length
        if pos < a:  # left of the cut: only its value counts
            step = min(length, a - pos)
            fa, ea = fa + step * sf, ea + step * se
            pos += step
        take = min(end, b) - pos
        if take > TOL:
            if out and abs(out[-1][1] - sf) <= 1e-12 and abs(out[-1][2] - se) <= 1e-12:
                out[-1] = (out[-1][0] + take, sf, se)
            else:
                out.append((take, sf, se))
        pos = end
    return Pwl(a, fa, ea, out)


_SLOPES = itemgetter(1, 2)


@dataclass
class StorageSlot:
    """One slot: net import = const_kw + battery power p (kW), p in [p_min, p_max]; costs per kW over the slot."""
    const_kw: float
    p_min_kw: float
    p_max_kw: float
    imp_cost: float  # objective per kW imported over the slot (column cost)
    exp_cost: float  # objective per kW exported
    imp_eur: float  # EUR per kW imported over the slot
    exp_eur: float  # EUR per kW exported (positive: what export earns)
    charge_cost: float
    discharge_cost: float
    soc_lo_kwh: float  # SoC bounds at the slot's end
    soc_hi_kwh: float
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0

    def soc_change_kwh(self, p_kw: float, dt: float) -> float:
        """The SoC change of battery power p over the slot (charging stores less, discharging draws more)."""
        return p_kw * dt * self.charge_efficiency if p_kw > 0 else p_kw * dt / self.discharge_efficiency

    def power_kw(self, change_kwh: float, dt: float) -> float:
        """The battery power that changes the SoC by `change_kwh` over the slot (inverse of soc_change_kwh)."""
        return (change_kwh / (dt * self.charge_efficiency) if change_kwh > 0
                else change_kwh * self.discharge_efficiency / dt)


def storage_model(mm, problem) -> Optional[tuple[float, list[StorageSlot]]]:
    """(initial SoC kWh, slots) when the built model `mm` (a MilpModel) is a one-battery home whose only free
    columns are the site's and that battery's; None for any other model."""
    cp, m = mm.cp, mm.m
    n = cp.n
    if mm.int_rules or len(mm.bat) != 1 or len(problem.batteries) != 1 or mm.slacks:
        return None
    b = problem.batteries[0]
    c, d, soc = mm.bat[b.id]
    n_exp = sum(1 for j in mm.exp if j is not None)
    if m.num_cols != 4 * n + n_exp or m.num_rows != 2 * n:
        return None  # any other column or row (devices, tapers, cycle caps, grid requests, peaks...)
    dt = cp.dt_h
    pi, pe = problem.site.import_price_eur_per_kwh, problem.site.export_price_eur_per_kwh
    slots = []
    for t in range(n):
        if mm.loads[t] != [(c[t], 1.0), (d[t], -1.0)]:
            return None
        imp, exp = mm.imp[t], mm.exp[t]
        if m.lb[imp] != 0.0 or m.lb[c[t]] != 0.0 or m.lb[d[t]] != 0.0 or (exp is not None and m.lb[exp] != 0.0):
            return None
        exp_cost = m.cost[exp] if exp is not None else 0.0
        if exp is not None and m.cost[imp] + exp_cost <= 1e-12:
            return None  # importing and exporting at once would pay (or tie): not a one-dimensional slot
        if m.cost[c[t]] + m.cost[d[t]] < 0.0:
            return None
        const = mm.const[t]
        e_max = m.ub[exp] if exp is not None else 0.0
        p_lo = max(-m.ub[d[t]], -e_max - const)
        p_hi = min(m.ub[c[t]], m.ub[imp] - const)
        if p_lo > p_hi + TOL:
            return None
        slots.append(StorageSlot(const, p_lo, max(p_lo, p_hi), m.cost[imp], exp_cost, pi[t] * dt,
                                 pe[t] * dt if exp is not None else 0.0, m.cost[c[t]], m.cost[d[t]],
                                 m.lb[soc[t]], m.ub[soc[t]], b.charge_efficiency, b.discharge_efficiency))
    return b.initial_kwh, slots


def _slot_costs(s: StorageSlot, p: float) -> tuple[float, float]:
    """(objective, energy cost EUR) of battery power p in slot s."""
    q = s.const_kw + p
    f = (s.imp_cost * q if q > 0 else -s.exp_cost * q) + (s.charge_cost * p if p > 0 else -s.discharge_cost * p)
    e = s.imp_eur * q if q > 0 else s.exp_eur * q
    return f, e


def _slot_pwl(s: StorageSlot, dt: float) -> Optional[Pwl]:
    """The slot's cost as a function of its SoC change (kWh); None when it is not convex (losses that pay,
    as with a negative import price: the LP would charge and discharge at once, which one SoC change cannot
    say)."""
    pts = sorted({s.p_min_kw, s.p_max_kw} | {k for k in (0.0, -s.const_kw) if s.p_min_kw < k < s.p_max_kw})
    fa, ea = _slot_costs(s, pts[0])
    segs = []
    prev = (fa, ea)
    for p0, p1 in zip(pts, pts[1:]):
        cur = _slot_costs(s, p1)
        length = s.soc_change_kwh(p1, dt) - s.soc_change_kwh(p0, dt)
        if length > TOL:
            segs.append((length, (cur[0] - prev[0]) / length, (cur[1] - prev[1]) / length))
            if len(segs) > 1 and segs[-1][1] < segs[-2][1] - 1e-12:
                return None
        prev = cur
    return Pwl(s.soc_change_kwh(pts[0], dt), fa, ea, segs)


def _best_join(f: Pwl, g: Pwl, shift: float) -> Optional[tuple[float, float]]:
    """min over s of f(s) + g(s + shift): (objective, energy cost), the lower energy cost among ties."""
    lo, hi = max(f.a, g.a - shift), min(f.b, g.b - shift)
    if lo > hi + 1e-7:
        return None
    hi = max(lo, hi)
    best = None
    for s in {lo, hi} | {x for x in f.breakpoints() if lo < x < hi} | {x - shift for x in g.breakpoints()
                                                                      if lo < x - shift < hi}:
        f1, e1 = f.at(s)
        f2, e2 = g.at(s + shift)
        cand = (f1 + f2, e1 + e2)
        if best is None or cand[0] < best[0] - 1e-12 or (abs(cand[0] - best[0]) <= 1e-12 and cand[1] < best[1]):
            best = cand
    return best


def storage_envelope(initial_kwh: float, slots: list[StorageSlot], dt: float
                     ) -> Optional[tuple[list[tuple[float, float, float, float]], float]]:
    """Per slot (max net kW, its energy cost EUR, min net kW, its energy cost EUR), and the energy cost of the
    least-cost plan; None when the model has no solution (the caller then takes the LP path)."""
    n = len(slots)
    g = [_slot_pwl(s, dt) for s in slots]
    if any(f is None for f in g):
        return None
    fwd: list[Pwl] = []
    cur = Pwl(initial_kwh, 0.0, 0.0, [])
    for t in range(n):
        cur = infconv(cur, g[t], slots[t].soc_lo_kwh, slots[t].soc_hi_kwh)
        if cur is None:
            return None
        fwd.append(cur)
    bwd: list[Optional[Pwl]] = [None] * n
    last = slots[-1]
    cur = Pwl(last.soc_lo_kwh, 0.0, 0.0, [(last.soc_hi_kwh - last.soc_lo_kwh, 0.0, 0.0)]
              if last.soc_hi_kwh - last.soc_lo_kwh > TOL else [])
    bwd[n - 1] = cur
    for t in range(n - 1, 0, -1):  # B_{t-1}(s) = min over x of G_t(x - s) + B_t(x)
        cur = infconv(g[t].mirrored(), cur, slots[t - 1].soc_lo_kwh, slots[t - 1].soc_hi_kwh)
        if cur is None:
            return None
        bwd[t - 1] = cur
    plan = min(((f, e) for f, e in (fwd[-1].at(x) for x in fwd[-1].breakpoints())),
               key=lambda v: (round(v[0], 12), v[1]))
    out = []
    for t in range(n):
        before = fwd[t - 1] if t > 0 else Pwl(initial_kwh, 0.0, 0.0, [])
        after = bwd[t]
        lo_change = max(g[t].a, after.a - before.b)
        hi_change = min(g[t].b, after.b - before.a)
        if lo_change > hi_change + 1e-7:
            return None
        row = []
        for change in (hi_change, lo_change):
            join = _best_join(before, after, change)
            if join is None:
                return None
            fs, es = g[t].at(change)
            row += [slots[t].const_kw + slots[t].power_kw(change, dt), join[1] + es]
        out.append(tuple(row))
    return out, plan[1]
