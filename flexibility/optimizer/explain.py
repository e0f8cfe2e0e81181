"""Why a problem is infeasible, in words a person understands.

Two stages: cheap per-device pre-checks (each names the device and the
requirement with numbers), then, if the solver still proves infeasibility,
an elastic MILP where groups of requirements (import limit, EV energy,
final SoC, comfort band, grid request, cycle placement) may be violated at a
large penalty; the violations that remain are what must give.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from .compile import Compiled, min_state_bounds
from .problem import Problem
from .result import Violation


def _hm(p: Problem, when: datetime) -> str:
    return p.grid.local(when).strftime("%H:%M")


def _slot_hm(p: Problem, t: int) -> str:
    return _hm(p, p.grid.slot_start(t))


def _kwh(x: float) -> str:
    return f"{x:.1f} kWh"


def _kwh_apart(a: float, b: float) -> tuple[str, str]:
    """Both amounts with as many decimals (1-3) as it takes to tell them apart: "needs 34.1 kWh but can take at
    most 34.1 kWh" reads as no problem at all."""
    for d in (1, 2, 3):
        x, y = f"{a:.{d}f} kWh", f"{b:.{d}f} kWh"
        if x != y:
            break
    return x, y


def precheck(cp: Compiled) -> list[Violation]:
    """Necessary conditions checked device by device, without a solver."""
    p = cp.problem
    g, site = p.grid, p.site
    n, dt = cp.n, cp.dt_h
    out: list[Violation] = []
    relief = [sum(pv.forecast_kw[t] for pv in p.pv) + sum(b.max_discharge_kw for b in p.batteries) for t in range(n)]
    headroom = [max(0.0, site.import_limit_kw - cp.base_kw[t] + relief[t]) for t in range(n)]

    for t in range(n):
        if cp.base_kw[t] - relief[t] > site.import_limit_kw + 1e-9:
            out.append(Violation("site", "import_limit", cp.base_kw[t] - relief[t] - site.import_limit_kw, "kW", t,
                                 f"The base load of {cp.base_kw[t]:.2f} kW at {_slot_hm(p, t)} exceeds the import "
                                 f"limit of {site.import_limit_kw:.2f} kW even with all PV and battery output"))
            break

    _precheck_export_limit(cp, out)

    for cm in cp.cycles:
        if cm.options:
            continue
        c = cm.cycle
        dur = c.duration_min
        peak = max(ph.power_w for ph in c.phases) / 1000
        why = cm.why_none[0] if cm.why_none else "horizon"
        es = c.earliest_start or g.start
        le = c.latest_end or g.end
        if why == "window":
            msg = (f"Cycle '{c.name}' needs {dur:.0f} min but its window {_hm(p, es)}-{_hm(p, le)} "
                   f"is only {(le - es).total_seconds() / 60:.0f} min")
        elif why == "power":
            msg = (f"Cycle '{c.name}' draws up to {peak:.2f} kW but the import limit of {site.import_limit_kw:.2f} kW "
                   f"leaves too little room above the base load at every start between {_hm(p, es)} and {_hm(p, le)}")
        elif why == "dnd":
            msg = f"Cycle '{c.name}' cannot run between {_hm(p, es)} and {_hm(p, le)} without entering a do-not-disturb window"
        else:
            msg = f"Cycle '{c.name}' ({dur:.0f} min) does not fit between {_hm(p, es)} and the end of the planning horizon"
        out.append(Violation(c.id, why, 1, "cycle", None, msg))

    for em in cp.evs:
        e = em.ev
        cap = _ev_reach_kwh(cp, em, headroom, cp.n)
        if em.need_kwh > cap + 1e-6:
            need, most = _kwh_apart(em.need_kwh, cap)
            out.append(Violation(e.id, "energy", em.need_kwh - cap, "kWh", None,
                                 f"EV '{e.name}' needs {need} before {_hm(p, e.departure)} but can take at most {most}"))
        _precheck_ev_min_state(cp, em, headroom, out)
        if em.max_kwh is not None and em.need_kwh > em.max_kwh + 1e-6:
            need, room = _kwh_apart(em.need_kwh, em.max_kwh)
            out.append(Violation(e.id, "capacity", em.need_kwh - em.max_kwh, "kWh", None,
                                 f"EV '{e.name}' needs {need} but has room for only {room}"))

    for b in p.batteries:
        _precheck_battery_min_state(cp, b, out)
        _precheck_battery_cycles(cp, b, out)
        fin = b.final_kwh
        if fin is None:
            continue
        reach = min(b.capacity_kwh, b.initial_kwh + b.max_charge_kw * b.charge_efficiency * dt * n)
        if fin > reach + 1e-6:
            want, most = _kwh_apart(fin, reach)
            out.append(Violation(b.id, "final_soc", fin - reach, "kWh", None,
                                 f"Battery '{b.name}' must end at {b.final_soc_pct:.0f}% ({want}) by "
                                 f"{_hm(p, g.end)} but can reach at most {most}"))

    for th in p.thermal_storages:
        e_hi = th.initial_energy_kwh
        e_lo = th.initial_energy_kwh
        bad = None
        for t in range(n):
            drain = (th.heat_demand_kw[t] + th.standing_loss_kw) * dt
            e_hi = min(th.max_energy_kwh, e_hi + th.cop * th.electric_power_kw * dt - drain)
            e_lo = max(th.min_energy_kwh, e_lo - drain)
            if e_hi < th.min_energy_kwh - 1e-6:
                bad = t
                break
            if e_lo > th.max_energy_kwh + 1e-6:
                holds, top = _kwh_apart(e_lo, th.max_energy_kwh)
                out.append(Violation(th.id, "comfort_max", e_lo - th.max_energy_kwh, "kWh", t,
                                     f"'{th.name}' holds {holds} at {_slot_hm(p, t)}, above its maximum {top}, "
                                     f"even without heating"))
                break
        if bad is not None:
            floor, only = _kwh_apart(th.min_energy_kwh, max(e_hi, 0.0))
            out.append(Violation(th.id, "comfort_min", th.min_energy_kwh - e_hi, "kWh", bad,
                                 f"'{th.name}' cannot keep {floor} at {_slot_hm(p, bad)}: heating at "
                                 f"{th.electric_power_kw:.1f} kW reaches only {only}"))
        elif th.final_energy_kwh is not None and e_hi < th.final_energy_kwh - 1e-6:
            want, most = _kwh_apart(th.final_energy_kwh, e_hi)
            out.append(Violation(th.id, "final_energy", th.final_energy_kwh - e_hi, "kWh", None,
                                 f"'{th.name}' must end with {want} but can reach at most {most}"))

    gr = p.grid_request
    if gr is not None and gr.penalty_eur_per_kwh is None:
        for t in range(n):
            lo, hi = gr.min_net_import_kw[t], gr.max_net_import_kw[t]
            if lo is not None and lo > site.import_limit_kw + 1e-9:
                out.append(Violation("site", "grid_request", lo - site.import_limit_kw, "kW", t,
                                     f"The grid request asks for at least {lo:.2f} kW at {_slot_hm(p, t)}, above the "
                                     f"import limit of {site.import_limit_kw:.2f} kW"))
                break
            floor = cp.base_kw[t] - relief[t]
            if hi is not None and hi < max(floor, -site.export_limit_kw) - 1e-9:
                out.append(Violation("site", "grid_request", max(floor, -site.export_limit_kw) - hi, "kW", t,
                                     f"The grid request allows at most {hi:.2f} kW at {_slot_hm(p, t)} but the home "
                                     f"cannot go below {max(floor, -site.export_limit_kw):.2f} kW"))
                break
    out.extend(_circuit_prechecks(cp))
    out.extend(_heat_pump_prechecks(cp))
    return out


def _circuit_prechecks(cp: Compiled) -> list[Violation]:
    """A cycle whose peak, or an EV whose energy, cannot fit under its shared circuit's limit."""
    p = cp.problem
    n = cp.n
    out: list[Violation] = []
    for ci in p.circuits:
        on = set(ci.devices)
        relief = [sum(b.max_discharge_kw for b in p.batteries if b.device in on)
                  + sum(pv.forecast_kw[t] for pv in p.pv if pv.device in on) for t in range(n)]
        for cm in cp.cycles:
            if cm.cycle.device not in on or not cm.options:
                continue
            peak = max(cm.options[0].profile_kw, default=0.0)
            if all(peak > ci.limit_kw + relief[o.first_slot] + 1e-9 for o in cm.options):
                out.append(Violation(cm.cycle.id, "circuit_limit", peak - ci.limit_kw, "kW", None,
                                     f"Cycle '{cm.cycle.name}' draws up to {peak:.2f} kW but its circuit "
                                     f"'{ci.name}' allows only {ci.limit_kw:.2f} kW"))
        for em in cp.evs:
            e = em.ev
            if e.device not in on:
                continue
            cap = _ev_reach_kwh(cp, em, [ci.limit_kw + r for r in relief], cp.n)
            if em.need_kwh > cap + 1e-6:
                need, most = _kwh_apart(em.need_kwh, cap)
                out.append(Violation(e.id, "circuit_limit", em.need_kwh - cap, "kWh", None,
                                     f"EV '{e.name}' needs {need} before {_hm(p, e.departure)} but its "
                                     f"circuit '{ci.name}' of {ci.limit_kw:.2f} kW lets it take at most {most}"))
    return out


def _heat_pump_prechecks(cp: Compiled) -> list[Violation]:
    """Space heating: the house falls below the comfort band even heating flat out, or is above it without heating
    (bounds that ignore minimum run / off times)."""
    p = cp.problem
    out: list[Violation] = []
    for hp in p.heat_pumps:
        a = hp.decay(cp.dt_h)
        hot = cold = hp.initial_indoor_c
        for t in range(cp.n):
            gain = hp.gain_c_per_kw(t, cp.dt_h) * hp.max_power_kw
            hot = min(hp.comfort_max_c[t], a * hot + hp.drift_c(t, cp.dt_h) + gain)
            cold = max(hp.comfort_min_c[t], a * cold + hp.drift_c(t, cp.dt_h))
            if hot < hp.comfort_min_c[t] - 1e-6:
                out.append(Violation(hp.id, "comfort_min", hp.comfort_min_c[t] - hot, "K", t,
                                     f"'{hp.name}' cannot keep the house at {hp.comfort_min_c[t]:.1f} °C at "
                                     f"{_slot_hm(p, t)}: heating flat out at {hp.max_power_kw:.1f} kW (COP "
                                     f"{hp.cop_at(hp.outdoor_temperature_c[t]):.1f} at "
                                     f"{hp.outdoor_temperature_c[t]:.1f} °C outside) reaches only {hot:.1f} °C"))
                break
            if cold > hp.comfort_max_c[t] + 1e-6:
                out.append(Violation(hp.id, "comfort_max", cold - hp.comfort_max_c[t], "K", t,
                                     f"'{hp.name}': the house is at {cold:.1f} °C at {_slot_hm(p, t)}, above its "
                                     f"comfort maximum of {hp.comfort_max_c[t]:.1f} °C, even without heating"))
                break
    return out


def _precheck_export_limit(cp: Compiled, out: list[Violation]) -> None:
    """PV that cannot be curtailed must go somewhere: the home's loads at their most, or export under the limit
    (sunny hours of negative prices make this bind when nothing may absorb it)."""
    p = cp.problem
    cycles_kw = sum(max(ph.power_w for ph in cm.cycle.phases) / 1000 for cm in cp.cycles)
    for t in range(cp.n):
        absorb = (cp.base_kw[t] + cycles_kw + sum(b.max_charge_kw for b in p.batteries)
                  + sum(em.ev.max_power_kw for em in cp.evs if t in em.slots)
                  + sum(th.electric_power_kw for th in p.thermal_storages))
        excess = cp.pv_fixed_kw[t] - absorb
        if excess > p.site.export_limit_kw + 1e-9:
            names = ", ".join(f"'{pv.name}'" for pv in p.pv if not pv.curtailable)
            out.append(Violation("site", "export_limit", excess - p.site.export_limit_kw, "kW", t,
                                 f"PV {names} that cannot be curtailed produces {cp.pv_fixed_kw[t]:.2f} kW at "
                                 f"{_slot_hm(p, t)}; the home can use at most {absorb:.2f} kW and export "
                                 f"{p.site.export_limit_kw:.2f} kW"))
            return


def _precheck_battery_min_state(cp: Compiled, b, out: list[Violation]) -> None:
    """A battery cannot hold more at an instant than charging at full power from the start reaches."""
    p = cp.problem
    for k, kwh, r in min_state_bounds(p, b.min_energy_at):
        reach = min(b.capacity_kwh, b.initial_kwh + b.max_charge_kw * b.charge_efficiency * cp.dt_h * k)
        if kwh > reach + 1e-6:
            want, most = _kwh_apart(kwh, reach)
            out.append(Violation(b.id, "min_energy_at", kwh - reach, "kWh", max(0, k - 1),
                                 f"Battery '{b.name}' must hold {want} at {_hm(p, r.at)} but can reach at most "
                                 f"{most} by then (it holds {_kwh(b.initial_kwh)} now and charges at up to "
                                 f"{b.max_charge_kw:.1f} kW)"))
            return


def _ev_reach_kwh(cp: Compiled, em, headroom: list[float], before: int) -> float:
    """The most an EV can take in its slots before `before`: the highest allowed power under the headroom."""
    e, cap = em.ev, 0.0
    for t in em.slots:
        if t >= before:
            break
        room = min(e.max_power_kw, headroom[t])
        if em.levels_kw is not None:
            fit = [lv for lv in em.levels_kw if lv <= room + 1e-9]
            room = max(fit) if fit else 0.0
        elif room < e.min_power_kw - 1e-9:
            room = 0.0
        cap += room * cp.dt_h * e.efficiency
    return cap


def _precheck_battery_cycles(cp: Compiled, b, out: list[Violation]) -> None:
    """The charging a battery's final SoC and minimum states need must fit in its cycles per day."""
    if b.max_cycles_per_day is None:
        return
    from .compile import day_slot_groups

    want = max([b.final_kwh or 0.0] + [kwh for _k, kwh, _r in min_state_bounds(cp.problem, b.min_energy_at)])
    need = max(0.0, want - b.initial_kwh) / b.charge_efficiency  # kWh through the battery, at the least
    allow = sum(2 * b.max_cycles_per_day * b.capacity_kwh * share for _ts, share in day_slot_groups(cp.problem))
    if need > allow + 1e-6:
        out.append(Violation(b.id, "cycles_per_day", need - allow, "kWh", None,
                             f"Battery '{b.name}' may cycle {b.max_cycles_per_day:g} times a day ({_kwh(allow)} "
                             f"through it over the plan) but needs {_kwh(need)} of charging to hold "
                             f"{_kwh(want)}"))


def _precheck_ev_min_state(cp: Compiled, em, headroom: list[float], out: list[Violation]) -> None:
    """An EV cannot have more by an instant than full power (under the import limit) since arrival gives."""
    p, e = cp.problem, em.ev
    for k, kwh, r in min_state_bounds(p, e.min_energy_at):
        cap = _ev_reach_kwh(cp, em, headroom, k)
        if kwh > cap + 1e-6:
            need, most = _kwh_apart(kwh, cap)
            out.append(Violation(e.id, "min_energy_at", kwh - cap, "kWh", max(0, k - 1),
                                 f"EV '{e.name}' must have {need} by {_hm(p, r.at)} but can take at most {most} by then"))
            return


def describe(cp: Compiled, violations: list[Violation]) -> list[str]:
    """Summarize elastic-model violations per device and requirement."""
    p = cp.problem
    names = {d.id: d.name for grp in (p.cycles, p.ev_sessions, p.batteries, p.pv, p.thermal_storages, p.heat_pumps)
             for d in grp}
    by: dict[tuple[str, str], list[Violation]] = {}
    for v in violations:
        by.setdefault((v.device, v.requirement), []).append(v)
    out = []
    for (dev, req), vs in by.items():
        worst = max(vs, key=lambda v: v.amount)
        more = f" (and {len(vs) - 1} other slots)" if len(vs) > 1 else ""
        at = f" at {_slot_hm(p, worst.slot)}" if worst.slot is not None else ""
        if req == "import_limit":
            out.append(f"The import limit of {p.site.import_limit_kw:.2f} kW is too low for all requirements together: "
                       f"{worst.amount:.2f} kW more would be needed{at}{more}")
        elif req == "energy":
            e = next(x for x in p.ev_sessions if x.id == dev)
            need, most = _kwh_apart(e.energy_kwh, e.energy_kwh - worst.amount)
            out.append(f"EV '{e.name}' needs {need} before {_hm(p, e.departure)} but can take at most {most} "
                       f"alongside the other requirements" + _on_circuits(p, e.device))
        elif req == "final_soc":
            b = next(x for x in p.batteries if x.id == dev)
            out.append(f"Battery '{b.name}' must end at {b.final_soc_pct:.0f}% but falls {_kwh(worst.amount)} short "
                       f"alongside the other requirements")
        elif req == "export_limit":
            fixed = ", ".join(f"'{pv.name}'" for pv in p.pv if not pv.curtailable) or "the home"
            out.append(f"The export limit of {p.site.export_limit_kw:.2f} kW is too low for the PV that cannot be "
                       f"curtailed ({fixed}): {worst.amount:.2f} kW more export would be needed{at}{more}")
        elif req == "min_energy_at":
            out.append(f"'{names.get(dev, dev)}' would hold {_kwh(worst.amount)} less than required{at} "
                       f"alongside the other requirements{more}")
        elif req == "scheduled":
            cyc = next((c for c in p.cycles if c.id == dev), None)
            out.append(f"Cycle '{names.get(dev, dev)}' cannot be placed alongside the other requirements "
                       f"(window, appliance busy, import limit)" + (_on_circuits(p, cyc.device) if cyc else ""))
        elif req == "circuit_limit" and dev in {c.id for c in p.circuits}:
            ci = next(c for c in p.circuits if c.id == dev)
            out.append(f"Circuit '{ci.name}' ({ci.limit_kw:.2f} kW) is too small for its devices' requirements "
                       f"together: {worst.amount:.2f} kW more would be needed{at}{more}")
        elif req == "grid_request":
            out.append(f"The grid request cannot be met{at}: off by {worst.amount:.2f} kW{more}")
        elif req in ("comfort_min", "comfort_max") and dev in {h.id for h in p.heat_pumps}:
            what = "below" if req == "comfort_min" else "above"
            out.append(f"'{names.get(dev, dev)}' would keep the house {worst.amount:.1f} K {what} its comfort band"
                       f"{at}{more}" + _on_circuits(p, next(h.device for h in p.heat_pumps if h.id == dev)))
        elif req in ("comfort_min", "comfort_max", "final_energy"):
            what = {"comfort_min": "below its comfort band", "comfort_max": "above its comfort band",
                    "final_energy": "short of its final energy"}[req]
            out.append(f"'{names.get(dev, dev)}' would be {_kwh(worst.amount)} {what}{at}{more}")
        else:
            out.append(worst.message)
    return out


def _on_circuits(p: Problem, device: str) -> str:
    """' (it shares circuit 'Garage' of 7.40 kW)' when the device is on shared circuits, else ''."""
    names = [f"'{c.name}' of {c.limit_kw:.2f} kW" for c in p.circuits if device in c.devices]
    return f" (it shares circuit {', '.join(names)})" if names else ""


def explain_infeasible(cp: Compiled, time_limit_s: float) -> tuple[list[str], list[Violation], Optional[object]]:
    """Pre-checks first; if they pass, relax requirement groups in an elastic MILP."""
    pre = precheck(cp)
    if pre:
        return [v.message for v in pre], pre, None
    from .backends.milp import solve_milp

    r = solve_milp(cp, time_limit_s, elastic=True, mip_rel_gap=1e-3)
    if r.schedule is None:
        return ["The requirements cannot all be met (no relaxed plan found in time)"], [], None
    if not r.violations:
        return ["The solver reported infeasibility, but a plan meeting every requirement exists "
                "(numerical issue); try another backend"], [], r.schedule
    for v in r.violations:
        if not v.message:
            v.message = v.requirement
    return describe(cp, r.violations), r.violations, r.schedule
