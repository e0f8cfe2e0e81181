"""The unoptimized plan savings are measured against.

Cycles start when the user scheduled them (or as early as allowed), the EV
charges at full power from arrival (as far as the site's import limit and its circuits
leave room, as a load-managed charger does), batteries stay idle, PV is not curtailed
and thermal stores are kept full by a plain thermostat.
"""
from __future__ import annotations

from typing import Optional

from .compile import Compiled, compile_problem, min_state_bounds
from .evaluate import device_power_kw, evaluate
from .problem import Battery, Problem
from .result import Evaluation, Schedule


def baseline_schedule(problem: Problem, compiled: Optional[Compiled] = None) -> Schedule:
    cp = compiled or compile_problem(problem)
    g = problem.grid
    n, dt, res = g.slots, g.dt_h, g.resolution_min
    sch = Schedule()
    for cm in cp.cycles:
        c = cm.cycle
        if c.fixed_start is not None:
            sch.cycle_start_min[c.id] = g.offset_min(c.fixed_start)
            continue
        want = c.scheduled_start or c.earliest_start or g.start
        sm = max(0, round(g.offset_min(want) / res)) * res
        sch.cycle_start_min[c.id] = float(sm)
    for b in problem.batteries:
        sch.battery_charge_kw[b.id] = _battery_min_state_charge(problem, b)
        sch.battery_discharge_kw[b.id] = [0.0] * n
    for pv in problem.pv:
        sch.pv_kw[pv.id] = list(pv.forecast_kw)
    for th in problem.thermal_storages:
        e = th.initial_energy_kwh
        p = [0.0] * n
        for t in range(n):
            drain = (th.heat_demand_kw[t] + th.standing_loss_kw) * dt
            room = th.max_energy_kwh - e + drain  # heat that fits this slot
            full = th.cop * th.electric_power_kw * dt
            if th.modulating:
                x = max(0.0, min(th.electric_power_kw, room / (th.cop * dt)))
            else:
                x = th.electric_power_kw if full <= room + 1e-9 or e - drain < th.min_energy_kwh else 0.0
            p[t] = x
            e += th.cop * x * dt - drain
        sch.thermal_kw[th.id] = p
    for hp in problem.heat_pumps:
        sch.heat_pump_kw[hp.id] = _heat_pump_thermostat(hp, g.dt_h, res)
    for em in cp.evs:
        e = em.ev
        p = [0.0] * n
        left = max([em.need_kwh] + [kwh for _k, kwh, _r in min_state_bounds(problem, e.min_energy_at)])
        # a load-managed charger stays under its circuit and the site's import limit, given what runs already
        room = _room_kw(problem, cp, sch, e.device)
        for t in em.slots:
            if left <= 1e-9:
                break
            want = left / (e.efficiency * dt)
            if em.levels_kw is not None:
                ups = [x for x in em.levels_kw if x >= want - 1e-9]
                x = min(ups) if ups else max(em.levels_kw)
            else:
                x = min(e.max_power_kw, max(want, e.min_power_kw))
            if x > room[t] + 1e-9:
                fit = [lv for lv in (em.levels_kw or (room[t],)) if lv <= room[t] + 1e-9 and lv >= e.min_power_kw]
                x = max(fit) if fit else 0.0
            p[t] = x
            left -= x * e.efficiency * dt
        sch.ev_kw[e.id] = p
    return sch


def _battery_min_state_charge(problem: Problem, b: Battery) -> list[float]:
    """Idle, except charging at full power as early as needed to hold every minimum state in time."""
    n, dt = problem.grid.slots, problem.grid.dt_h
    reqs = min_state_bounds(problem, b.min_energy_at)
    c = [0.0] * n
    e = b.initial_kwh
    for t in range(n):
        want = max([kwh for k, kwh, _r in reqs if k > t] + [e])
        if want > e + 1e-9:
            x = min(_charge_limit_over_slot(b, e, dt), (want - e) / (b.charge_efficiency * dt))
            c[t] = x
            e += x * b.charge_efficiency * dt
    return c


def _charge_limit_over_slot(b: Battery, e: float, dt: float) -> float:
    """The highest charge power for a slot starting at `e` kWh that the taper allows at the slot's end."""
    if b.charge_taper_above_soc_pct is None:
        return b.max_charge_kw
    k = (b.max_charge_kw - b.charge_kw_at_full) / (b.capacity_kwh * (1 - b.charge_taper_above_soc_pct / 100))
    return max(0.0, min(b.max_charge_kw, (b.charge_kw_at_full + k * (b.capacity_kwh - e)) /
                        (1 + k * b.charge_efficiency * dt)) - 1e-6)


def _heat_pump_thermostat(hp, dt: float, res: int) -> list[float]:
    """A thermostat with optimum start, blind to prices: heat just enough (modulating) or switch on (on/off,
    keeping the minimum run and off times) when the house would fall below `need` by the end of the slot, the
    band's floor raised ahead of a step (the night setback's end) by what full power can recover."""
    n = len(hp.comfort_min_c)
    a = hp.decay(dt)
    run, off = hp.run_slots(res)
    need = list(hp.comfort_min_c)
    for t in range(n - 2, -1, -1):
        reach = hp.drift_c(t + 1, dt) + hp.gain_c_per_kw(t + 1, dt) * hp.max_power_kw
        need[t] = max(need[t], (need[t + 1] - reach) / a)
    temp, out, on_for, off_for = hp.initial_indoor_c, [], 0, off
    for t in range(n):
        free = a * temp + hp.drift_c(t, dt)  # the end-of-slot temperature without heating
        gain = hp.gain_c_per_kw(t, dt)
        if hp.modulating:
            x = min(hp.max_power_kw, max(0.0, (need[t] - free) / gain))
        else:
            want = free < need[t]
            if on_for and on_for < run:
                want = True
            elif not on_for and off_for < off:
                want = False
            x = hp.max_power_kw if want else 0.0
            on_for, off_for = (on_for + 1, 0) if want else (0, off_for + 1)
        out.append(x)
        temp = free + gain * x
    return out


def _room_kw(problem: Problem, cp: Compiled, sch: Schedule, device: str) -> list[float]:
    """Per slot, what `device` may draw under the site's import limit and its tightest shared circuit, given
    what is planned so far (a charger that would trip the main breaker is no plan to measure savings by)."""
    n = problem.grid.slots
    power = device_power_kw(problem, cp, sch)
    net = [cp.base_kw[t] + sum(p[t] for p in power.values()) for t in range(n)]
    room = [max(0.0, problem.site.import_limit_kw - net[t]) for t in range(n)]
    for ci in (ci for ci in problem.circuits if device in ci.devices):
        for t in range(n):
            others = sum(power.get(d, [0.0] * n)[t] for d in ci.devices if d != device)
            room[t] = min(room[t], max(0.0, ci.limit_kw - others))
    return room


def baseline(problem: Problem, compiled: Optional[Compiled] = None) -> Evaluation:
    """Evaluation (cost, CO2, violations) of the unoptimized plan."""
    cp = compiled or compile_problem(problem)
    return evaluate(problem, baseline_schedule(problem, cp), cp)
