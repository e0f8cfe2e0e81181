"""Recompute cost/CO2/objective of a schedule from floats and list every violated requirement.

Both backends report costs through this function, so they are compared on
the same numbers, never on their internal (scaled, integer) objectives.
"""
from __future__ import annotations

from typing import Optional

from .compile import (THROUGHPUT_EPS_PER_KWH, Compiled, compile_problem, min_state_bounds, option_extra_cost,
                      resample_profile)
from .compile import capacity_windows, day_slot_groups, money_weight
from .problem import Battery, Problem
from .result import Evaluation, Schedule, Violation

TOL_KW = 1e-3
TOL_KWH = 1e-3
TOL_C = 1e-3


def evaluate(problem: Problem, schedule: Schedule, compiled: Optional[Compiled] = None) -> Evaluation:
    cp = compiled or compile_problem(problem)
    g, site = problem.grid, problem.site
    n, dt, res = g.slots, g.dt_h, g.resolution_min
    net = list(site.base_load_kw)
    viol: list[Violation] = []
    extra = 0.0

    def v(device: str, req: str, amount: float, unit: str, msg: str, slot: Optional[int] = None) -> None:
        viol.append(Violation(device, req, amount, unit, slot, msg))

    # cycles
    busy: dict[str, list[tuple[float, float, str]]] = {}
    for cm in cp.cycles:
        c = cm.cycle
        if c.id not in schedule.cycle_start_min:
            v(c.id, "scheduled", 1, "cycle", f"cycle '{c.name}' is not scheduled")
            continue
        sm = schedule.cycle_start_min[c.id]
        dur = c.duration_min
        if c.fixed_start is not None:
            if abs(sm - g.offset_min(c.fixed_start)) > 1e-6:
                v(c.id, "fixed_start", abs(sm - g.offset_min(c.fixed_start)), "min", f"'{c.name}' must keep its start")
        else:
            es = g.offset_min(c.earliest_start) if c.earliest_start else 0.0
            le = min(g.offset_min(c.latest_end) if c.latest_end else n * res, n * res)
            if abs(sm / res - round(sm / res)) > 1e-9:
                v(c.id, "slot_aligned", sm, "min", f"'{c.name}' must start on a slot boundary")
            if sm < es - 1e-6:
                v(c.id, "window", es - sm, "min", f"'{c.name}' starts before its earliest start")
            if sm + dur > le + 1e-6:
                v(c.id, "window", sm + dur - le, "min", f"'{c.name}' ends after its latest end / the horizon")
            if c.respect_do_not_disturb:
                for iv in problem.do_not_disturb:
                    a, b = g.offset_min(iv.start), g.offset_min(iv.end)
                    if a < sm + dur - 1e-6 and b > sm + 1e-6:
                        v(c.id, "do_not_disturb", min(b, sm + dur) - max(a, sm), "min", f"'{c.name}' runs in a do-not-disturb window")
        busy.setdefault(c.device, []).append((sm, sm + dur, c.id))
        prof = resample_profile(c, sm, res, n)
        for k, pk in prof.items():
            net[k] += pk
        end_slot = (max(prof) + 1) if prof else 0
        extra += option_extra_cost(problem, c, sm, end_slot)
    for dev, ivs in busy.items():
        ivs.sort()
        for (a1, b1, i1), (a2, b2, i2) in zip(ivs, ivs[1:]):
            if a2 < b1 - 1e-6:
                v(i2, "no_overlap", b1 - a2, "min", f"cycles '{i1}' and '{i2}' of {dev} overlap")

    # EVs
    for em in cp.evs:
        e = em.ev
        p = schedule.ev_kw.get(e.id, [0.0] * n)
        allowed = set(em.slots)
        for t in range(n):
            x = p[t]
            if x < -TOL_KW:
                v(e.id, "power", -x, "kW", f"EV '{e.name}' negative power", t)
            if x > TOL_KW and t not in allowed:
                v(e.id, "availability", x, "kW", f"EV '{e.name}' charges while away", t)
            if x > TOL_KW:
                if em.levels_kw is not None:
                    if min(abs(x - lv) for lv in em.levels_kw) > TOL_KW:
                        v(e.id, "current_step", x, "kW", f"EV '{e.name}' power not an allowed step", t)
                elif x < e.min_power_kw - TOL_KW or x > e.max_power_kw + TOL_KW:
                    v(e.id, "power", x, "kW", f"EV '{e.name}' power outside [min, max]", t)
            net[t] += x
        energy = sum(p) * dt * e.efficiency
        if energy < em.need_kwh - TOL_KWH:
            v(e.id, "energy", em.need_kwh - energy, "kWh", f"EV '{e.name}' gets {energy:.2f} of {em.need_kwh:.2f} kWh")
        if em.max_kwh is not None and energy > em.max_kwh + TOL_KWH and not e.v2g:  # V2G: `_check_v2g`
            v(e.id, "capacity", energy - em.max_kwh, "kWh", f"EV '{e.name}' overfilled")
        d = schedule.ev_discharge_kw.get(e.id, [0.0] * n)  # V2G: what the car gave back counts against it
        delivered = [0.0]
        for t in range(n):
            delivered.append(delivered[-1] + (p[t] * e.efficiency - d[t] / e.discharge_efficiency) * dt)
        _check_min_state(problem, e.id, f"EV '{e.name}'", e.min_energy_at, delivered, v)

    # batteries
    soc: dict[str, list[float]] = {}
    throughput = 0.0
    for b in problem.batteries:
        c = schedule.battery_charge_kw.get(b.id, [0.0] * n)
        d = schedule.battery_discharge_kw.get(b.id, [0.0] * n)
        e = b.initial_kwh
        traj = [e]
        for t in range(n):
            if c[t] < -TOL_KW or c[t] > b.max_charge_kw + TOL_KW:
                v(b.id, "charge_power", c[t], "kW", f"battery '{b.name}' charge power out of range", t)
            if d[t] < -TOL_KW or d[t] > b.max_discharge_kw + TOL_KW:
                v(b.id, "discharge_power", d[t], "kW", f"battery '{b.name}' discharge power out of range", t)
            if t in cp.exclusive_battery_slots and c[t] > TOL_KW and d[t] > TOL_KW:
                v(b.id, "exclusive", min(c[t], d[t]), "kW", f"battery '{b.name}' charges and discharges at once", t)
            e += (b.charge_efficiency * c[t] - d[t] / b.discharge_efficiency) * dt
            traj.append(e)
            if e < min(b.min_kwh, b.initial_kwh) - TOL_KWH:
                v(b.id, "min_soc", min(b.min_kwh, b.initial_kwh) - e, "kWh", f"battery '{b.name}' below its reserve", t)
            if e > b.capacity_kwh + TOL_KWH:
                v(b.id, "capacity", e - b.capacity_kwh, "kWh", f"battery '{b.name}' over capacity", t)
            net[t] += c[t] - d[t]
            throughput += (c[t] + d[t]) * dt
        if b.final_kwh is not None and e < b.final_kwh - TOL_KWH:
            v(b.id, "final_soc", b.final_kwh - e, "kWh", f"battery '{b.name}' ends below its final SoC")
        _check_min_state(problem, b.id, f"battery '{b.name}'", b.min_energy_at, traj, v)
        extra += _check_battery_wear(problem, b, c, d, traj, v)
        soc[b.id] = traj
    extra += THROUGHPUT_EPS_PER_KWH * throughput

    # PV
    for pv in problem.pv:
        u = schedule.pv_kw.get(pv.id, list(pv.forecast_kw))
        for t in range(n):
            f = pv.forecast_kw[t]
            if u[t] > f + TOL_KW or u[t] < -TOL_KW or (not pv.curtailable and u[t] < f - TOL_KW):
                v(pv.id, "pv", u[t], "kW", f"PV '{pv.name}' output not allowed", t)
            net[t] -= u[t]

    # thermal
    for th in problem.thermal_storages:
        p = schedule.thermal_kw.get(th.id, [0.0] * n)
        e = th.initial_energy_kwh
        traj = [e]
        for t in range(n):
            x = p[t]
            _check_heater_power(th.id, th.name, x, th.electric_power_kw, th.modulating, t, v)
            e += (th.cop * x - th.heat_demand_kw[t] - th.standing_loss_kw) * dt
            traj.append(e)
            if e < th.min_energy_kwh - TOL_KWH:
                v(th.id, "comfort_min", th.min_energy_kwh - e, "kWh", f"'{th.name}' below its comfort band", t)
            if e > th.max_energy_kwh + TOL_KWH:
                v(th.id, "comfort_max", e - th.max_energy_kwh, "kWh", f"'{th.name}' above its comfort band", t)
            net[t] += x
        if th.final_energy_kwh is not None and e < th.final_energy_kwh - TOL_KWH:
            v(th.id, "final_energy", th.final_energy_kwh - e, "kWh", f"'{th.name}' ends below its final energy")
        soc[th.id] = traj

    _check_circuits(problem, cp, schedule, v)
    temps = _check_heat_pumps(problem, schedule, v, net)
    _check_v2g(problem, cp, schedule, v, net)  # last: the car may cover every consumption in `net`, the heat pump's too

    # site
    cost = co2 = pen = obj = 0.0
    gr = problem.grid_request
    for t in range(n):
        x = net[t]
        imp, exp = max(x, 0.0), max(-x, 0.0)
        if imp > site.import_limit_kw + TOL_KW:
            v("site", "import_limit", imp - site.import_limit_kw, "kW", "import above the contracted limit", t)
        if exp > site.export_limit_kw + TOL_KW:
            v("site", "export_limit", exp - site.export_limit_kw, "kW", "export above the limit", t)
        cost += (imp * site.import_price_eur_per_kwh[t] - exp * site.export_price_eur_per_kwh[t]) * dt
        co2 += imp * site.co2_g_per_kwh[t] * dt / 1000.0
        obj += (imp * cp.w_imp[t] + exp * cp.w_exp[t]) * dt
        if gr is not None:
            lo, hi = gr.min_net_import_kw[t], gr.max_net_import_kw[t]
            short = max(0.0, (lo - x) if lo is not None else 0.0, (x - hi) if hi is not None else 0.0)
            if short > TOL_KW:
                if gr.penalty_eur_per_kwh is None:
                    v("site", "grid_request", short, "kW", "net import outside the grid request", t)
            if gr.penalty_eur_per_kwh is not None:
                pen += short * dt * gr.penalty_eur_per_kwh
    capacity = capacity_view(problem, net)
    obj += extra + pen + money_weight(problem) * sum(c["added_eur"] for c in capacity)
    return Evaluation(cost, co2, pen, obj, net, soc, viol, capacity, temps)


def _check_heater_power(dev: str, name: str, x: float, max_kw: float, modulating: bool, t: int, v) -> None:
    """A water heater's or heat pump's power: within [0, max], and all or nothing where it is on/off."""
    if x < -TOL_KW or x > max_kw + TOL_KW:
        v(dev, "power", x, "kW", f"'{name}' power out of range", t)
    elif not modulating and TOL_KW < x < max_kw - TOL_KW:
        v(dev, "on_off", x, "kW", f"'{name}' is on/off", t)


def _check_min_state(problem: Problem, dev: str, what: str, reqs, traj: list[float], v) -> None:
    """Each minimum state against the trajectory (traj[k]: the state after k slots)."""
    for k, kwh, r in min_state_bounds(problem, reqs):
        if traj[k] < kwh - TOL_KWH:
            v(dev, "min_energy_at", kwh - traj[k], "kWh",
              f"{what} holds {traj[k]:.2f} kWh at {problem.grid.local(r.at):%H:%M}, needs {kwh:.2f}", max(0, k - 1))


def _check_battery_wear(problem: Problem, b: Battery, c: list[float], d: list[float], traj: list[float], v) -> float:
    """SoC taper (at each slot's end SoC) and cycles per day against the plan; returns the wear cost in
    objective units."""
    dt = problem.grid.dt_h
    for t in range(problem.grid.slots):
        e = traj[t + 1]
        if c[t] > b.charge_limit_kw(e) + TOL_KW:
            v(b.id, "charge_taper", c[t] - b.charge_limit_kw(e), "kW",
              f"battery '{b.name}' charges faster than its taper allows at {e:.2f} kWh", t)
        if d[t] > b.discharge_limit_kw(e) + TOL_KW:
            v(b.id, "discharge_taper", d[t] - b.discharge_limit_kw(e), "kW",
              f"battery '{b.name}' discharges faster than its taper allows at {e:.2f} kWh", t)
    if b.max_cycles_per_day is not None:
        for ts, share in day_slot_groups(problem):
            through = sum(c[t] + d[t] for t in ts) * dt
            allow = 2 * b.max_cycles_per_day * b.capacity_kwh * share
            if through > allow + TOL_KWH:
                v(b.id, "cycles_per_day", through - allow, "kWh",
                  f"battery '{b.name}' cycles {through / (2 * b.capacity_kwh):.2f} times in a day", ts[0])
    return money_weight(problem) * b.wear_cost_eur_per_kwh * sum(c[t] + d[t] for t in range(problem.grid.slots)) * dt


def capacity_view(problem: Problem, net_import_kw: list[float]) -> list[dict]:
    """Per capacity charge: the planned peak (highest window average import), the peak so far, what the
    period's capacity charge comes to with this plan and what the plan adds to it (EUR)."""
    out = []
    for cc in problem.capacity_charges:
        windows = capacity_windows(problem, cc)
        peak = max([sum(max(net_import_kw[t], 0.0) for t in ts) / len(ts) for ts in windows] + [0.0])
        billed = max(peak, cc.peak_floor_kw)
        out.append({"start": cc.start.isoformat(), "end": cc.end.isoformat(), "planned_peak_kw": round(peak, 4),
                    "peak_floor_kw": cc.peak_floor_kw, "peak_kw": round(billed, 4),
                    "price_eur_per_kw": cc.price_eur_per_kw, "charge_eur": round(billed * cc.price_eur_per_kw, 6),
                    "added_eur": (billed - cc.peak_floor_kw) * cc.price_eur_per_kw})
    return out


def device_power_kw(problem: Problem, cp: Compiled, schedule: Schedule) -> dict[str, list[float]]:
    """Per physical device (`device` field), its power per slot in kW (consumption positive)."""
    n, res = problem.grid.slots, problem.grid.resolution_min
    out: dict[str, list[float]] = {}

    def add(device: str, t: int, kw: float) -> None:
        out.setdefault(device, [0.0] * n)[t] += kw

    for cm in cp.cycles:
        sm = schedule.cycle_start_min.get(cm.cycle.id)
        if sm is not None:
            for k, pk in resample_profile(cm.cycle, sm, res, n).items():
                add(cm.cycle.device, k, pk)
    for e in problem.ev_sessions:
        for t, x in enumerate(schedule.ev_kw.get(e.id, [0.0] * n)):
            add(e.device, t, x)
        for t, x in enumerate(schedule.ev_discharge_kw.get(e.id, [0.0] * n)):
            add(e.device, t, -x)
    for b in problem.batteries:
        c = schedule.battery_charge_kw.get(b.id, [0.0] * n)
        d = schedule.battery_discharge_kw.get(b.id, [0.0] * n)
        for t in range(n):
            add(b.device, t, c[t] - d[t])
    for pv in problem.pv:
        for t, x in enumerate(schedule.pv_kw.get(pv.id, list(pv.forecast_kw))):
            add(pv.device, t, -x)
    for th in problem.thermal_storages:
        for t, x in enumerate(schedule.thermal_kw.get(th.id, [0.0] * n)):
            add(th.device, t, x)
    for hp in problem.heat_pumps:
        for t, x in enumerate(schedule.heat_pump_kw.get(hp.id, [0.0] * n)):
            add(hp.device, t, x)
    return out


def _check_circuits(problem: Problem, cp: Compiled, schedule: Schedule, v) -> None:
    """Shared circuits: the named devices' summed power within +-limit_kw in every slot."""
    if not problem.circuits:
        return
    power = device_power_kw(problem, cp, schedule)
    for ci in problem.circuits:
        for t in range(problem.grid.slots):
            x = sum(power.get(d, [0.0] * problem.grid.slots)[t] for d in ci.devices)
            if abs(x) > ci.limit_kw + TOL_KW:
                v(ci.id, "circuit_limit", abs(x) - ci.limit_kw, "kW",
                  f"circuit '{ci.name}' carries {abs(x):.2f} kW, above its limit of {ci.limit_kw:.2f} kW", t)


def _check_v2g(problem: Problem, cp: Compiled, schedule: Schedule, v, net: list[float]) -> None:
    """V2G sessions (issue 14 item 3): discharge limits, the car's energy within [floor, room] after every slot
    and at least the need at departure, no charging and discharging at once where the model forbids it, and
    no export from a car that may not export. Subtracts the discharge from `net`."""
    n, dt = problem.grid.slots, problem.grid.dt_h
    for em in cp.evs:
        e = em.ev
        d = schedule.ev_discharge_kw.get(e.id, [0.0] * n)
        if not e.v2g:
            if any(x > TOL_KW for x in d):
                v(e.id, "discharge", max(d), "kW", f"EV '{e.name}' may not discharge")
            continue
        c = schedule.ev_kw.get(e.id, [0.0] * n)
        allowed = set(em.slots)
        both_forbidden = em.levels_kw is not None or em.semicontinuous
        acc = 0.0
        for t in range(n):
            if d[t] < -TOL_KW or d[t] > e.max_discharge_kw + TOL_KW:
                v(e.id, "discharge_power", d[t], "kW", f"EV '{e.name}' discharge power out of range", t)
            if d[t] > TOL_KW and t not in allowed:
                v(e.id, "availability", d[t], "kW", f"EV '{e.name}' discharges while away", t)
            if c[t] > TOL_KW and d[t] > TOL_KW and (both_forbidden or t in cp.exclusive_battery_slots):
                v(e.id, "exclusive", min(c[t], d[t]), "kW", f"EV '{e.name}' charges and discharges at once", t)
            acc += (c[t] * e.efficiency - d[t] / e.discharge_efficiency) * dt
            if acc < e.floor_kwh - TOL_KWH:
                v(e.id, "min_soc", e.floor_kwh - acc, "kWh", f"EV '{e.name}' below its minimum SoC", t)
            if em.max_kwh is not None and acc > em.max_kwh + TOL_KWH:
                v(e.id, "capacity", acc - em.max_kwh, "kWh", f"EV '{e.name}' overfilled", t)
            net[t] -= d[t]
        if acc < em.need_kwh - TOL_KWH:
            v(e.id, "energy", em.need_kwh - acc, "kWh", f"EV '{e.name}' leaves with {acc:.2f} of {em.need_kwh:.2f} kWh")
    no_export = [e for e in problem.ev_sessions if e.v2g and not e.export_allowed]
    if not no_export:
        return
    for t in range(n):
        if not any(schedule.ev_discharge_kw.get(e.id, [0.0] * n)[t] > TOL_KW for e in no_export):
            continue
        # what may be exported: PV, and what batteries and exporting cars give beyond their own charging (one
        # converter each: charging and discharging at once is no export of theirs)
        gen = sum(schedule.pv_kw.get(pv.id, list(pv.forecast_kw))[t] for pv in problem.pv)
        gen += sum(max(0.0, schedule.battery_discharge_kw.get(b.id, [0.0] * n)[t]
                       - schedule.battery_charge_kw.get(b.id, [0.0] * n)[t]) for b in problem.batteries)
        gen += sum(max(0.0, schedule.ev_discharge_kw.get(e.id, [0.0] * n)[t] - schedule.ev_kw.get(e.id, [0.0] * n)[t])
                   for e in problem.ev_sessions if e.v2g and e.export_allowed)
        if net[t] + gen < -TOL_KW:
            v("site", "v2g_export", -(net[t] + gen), "kW", "an EV that may not export feeds the grid", t)


def _check_heat_pumps(problem: Problem, schedule: Schedule, v, net: list[float]) -> dict[str, list[float]]:
    """Space heating (issue 14 item 5): power range or on/off with minimum run and off times, the indoor
    temperature replayed through the building model inside the comfort band. Adds the power to `net`;
    returns the temperature trajectories (slots + 1 values)."""
    g = problem.grid
    n, dt = g.slots, g.dt_h
    out: dict[str, list[float]] = {}
    for hp in problem.heat_pumps:
        p = schedule.heat_pump_kw.get(hp.id, [0.0] * n)
        a = hp.decay(dt)
        temp = hp.initial_indoor_c
        traj = [temp]
        for t in range(n):
            x = p[t]
            _check_heater_power(hp.id, hp.name, x, hp.max_power_kw, hp.modulating, t, v)
            temp = a * temp + hp.drift_c(t, dt) + hp.gain_c_per_kw(t, dt) * x
            traj.append(temp)
            if temp < hp.comfort_min_c[t] - TOL_C:
                v(hp.id, "comfort_min", hp.comfort_min_c[t] - temp, "K", f"'{hp.name}' below its comfort band", t)
            if temp > hp.comfort_max_c[t] + TOL_C:
                v(hp.id, "comfort_max", temp - hp.comfort_max_c[t], "K", f"'{hp.name}' above its comfort band", t)
            net[t] += x
        if not hp.modulating:
            run, off = hp.run_slots(g.resolution_min)
            on = [x > hp.max_power_kw / 2 for x in p]
            for t in range(n):
                was = on[t - 1] if t > 0 else False
                if on[t] and not was and not all(on[t:t + run]):
                    v(hp.id, "min_run", 1, "slot", f"'{hp.name}' stops before its minimum run time", t)
                if t > 0 and was and not on[t] and any(on[t:t + off]):
                    v(hp.id, "min_off", 1, "slot", f"'{hp.name}' restarts before its minimum off time", t)
        out[hp.id] = traj
    return out
