"""`solve()`: pre-checks, backend choice, time limit, evaluation and the result object."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from .baseline import baseline_schedule
from .compile import Compiled, compile_problem, resample_profile
from .evaluate import evaluate
from .explain import explain_infeasible, precheck
from .portfolio import BACKENDS, choose_backend, run_backend, solve_portfolio
from .problem import Problem
from .result import Evaluation, Schedule, SolveResult, SolveStats, Status

def solve(problem: Problem, backend: str = "auto", time_limit_s: float = 5.0, *, threads: int = 1,
          explain: bool = True, relaxed: bool = True, **backend_options: Any) -> SolveResult:
    """Schedule every device; always returns (never raises for infeasible or slow problems).

    `time_limit_s` bounds the whole call; an infeasible problem gets up to
    another `min(time_limit_s, 2 s)` for its explanation. `auto` is the portfolio of both
    backends (portfolio.py); a named backend runs alone.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}")
    if backend == "auto" and backend_options:
        # they are one backend's options; `auto` used to drop the portfolio silently when given any
        raise ValueError(f"{', '.join(sorted(backend_options))}: options of one backend, not of auto")
    t0 = time.perf_counter()
    cp = compile_problem(problem)
    bl, base_devices = baseline_with_devices(cp)
    chosen = choose_backend(cp) if backend == "auto" else backend
    name = chosen if backend != "auto" else f"auto:{chosen}"

    pre = precheck(cp)
    if pre:
        res = SolveResult(Status.INFEASIBLE, name, None, None, bl, SolveStats(name, build_ms=_ms(t0)),
                          explanation=[v.message for v in pre], violations=pre)
        if relaxed:
            _attach_relaxed(res, cp, min(time_limit_s, 2.0), True)
        return res

    compile_ms = _ms(t0)
    left = max(0.05, time_limit_s - compile_ms / 1000)
    if backend == "auto":
        out, chosen = solve_portfolio(cp, left, threads)
        name = f"auto:{chosen}"
    else:
        out = run_backend(cp, chosen, left, threads, **backend_options)
    stats = SolveStats(name, compile_ms + out.build_ms, out.solve_ms, out.gap, out.bound, dict(out.detail))
    if out.status == Status.INFEASIBLE:
        res = SolveResult(Status.INFEASIBLE, name, None, None, bl, stats)
        if explain:
            _attach_relaxed(res, cp, min(time_limit_s, 2.0), relaxed)
        stats.detail["total_ms"] = round(_ms(t0), 3)
        return res
    if out.schedule is None:
        stats.detail["total_ms"] = round(_ms(t0), 3)
        return SolveResult(out.status, name, None, None, bl, stats,
                           explanation=[f"No plan found within the time limit of {time_limit_s:g} s"])
    ev = evaluate(problem, out.schedule, cp)
    res = SolveResult(out.status, name, out.schedule, ev, bl, stats, devices=devices_view(cp, out.schedule, ev),
                      baseline_devices=base_devices)
    if ev.violations:  # should not happen: report, never hide
        res.violations = ev.violations
        res.explanation = ["The solver's plan violates requirements after float re-evaluation"] + [
            v.message for v in ev.violations[:5]]
    stats.detail["total_ms"] = round(_ms(t0), 3)
    return res


def _attach_relaxed(res: SolveResult, cp: Compiled, budget_s: float, keep_schedule: bool) -> None:
    """Explanation (pre-checks, else elastic MILP) and, optionally, the best relaxed plan."""
    msgs, viol, sch = explain_infeasible(cp, budget_s)
    if not res.explanation:
        res.explanation = msgs
        res.violations = viol
    if sch is None and keep_schedule:
        from .backends.milp import solve_milp

        sch = solve_milp(cp, budget_s, elastic=True, mip_rel_gap=1e-3).schedule
    if sch is not None and keep_schedule:
        ev = evaluate(cp.problem, sch, cp)
        res.schedule = sch
        res.devices = devices_view(cp, sch, ev)
        res.stats.detail["relaxed_plan"] = True
        res.stats.detail["relaxed_violations"] = [v.to_dict() for v in ev.violations]


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def baseline_with_devices(cp: Compiled) -> tuple[Evaluation, dict[str, dict[str, Any]]]:
    """The unoptimized plan's evaluation and its devices (`devices_view`): what a plan's reasons compare it with."""
    sch = baseline_schedule(cp.problem, cp)
    ev = evaluate(cp.problem, sch, cp)
    return ev, devices_view(cp, sch, ev)


def devices_view(cp: Compiled, sch: Schedule, ev: Evaluation) -> dict[str, dict[str, Any]]:
    """Per-device power (kW) per slot, start/end for cycles, energy trajectories (kWh)."""
    p = cp.problem
    g = p.grid
    n, dt = cp.n, cp.dt_h
    out: dict[str, dict[str, Any]] = {}
    tz_local = g.local
    for cm in cp.cycles:
        c = cm.cycle
        if c.id not in sch.cycle_start_min:
            out[c.id] = {"kind": "cycle", "device": c.device, "name": c.name, "start": None, "end": None,
                         "power_kw": [0.0] * n}
            continue
        sm = sch.cycle_start_min[c.id]
        prof = resample_profile(c, sm, g.resolution_min, n)
        start = g.start + timedelta(minutes=sm)
        out[c.id] = {"kind": "cycle", "device": c.device, "name": c.name,
                     "start": tz_local(start).isoformat(),
                     "end": tz_local(start + timedelta(minutes=c.duration_min)).isoformat(),
                     "power_kw": [prof.get(t, 0.0) for t in range(n)]}
    for em in cp.evs:
        e = em.ev
        pw = [round(x, 4) for x in sch.ev_kw.get(e.id, [0.0] * n)]
        acc, traj = 0.0, [0.0]
        for x in pw:
            acc += x * dt * e.efficiency
            traj.append(round(acc, 4))
        out[e.id] = {"kind": "ev", "device": e.device, "name": e.name, "power_kw": pw, "soc_kwh": traj,
                     "energy_kwh": round(acc, 4)}
        _show_min_state(out[e.id], e.min_energy_at)
        if e.v2g:
            out[e.id].update(_v2g_view(e, sch, n, dt))
    for b in p.batteries:
        c = sch.battery_charge_kw.get(b.id, [0.0] * n)
        d = sch.battery_discharge_kw.get(b.id, [0.0] * n)
        out[b.id] = {"kind": "battery", "device": b.device, "name": b.name,
                     "power_kw": [round(c[t] - d[t], 4) for t in range(n)],
                     "charge_kw": [round(x, 4) for x in c], "discharge_kw": [round(x, 4) for x in d],
                     "soc_kwh": [round(x, 4) for x in ev.soc_kwh.get(b.id, [])]}
        _show_min_state(out[b.id], b.min_energy_at)
        if b.wear_cost_eur_per_kwh:  # battery wear: what the plan's throughput costs
            through = sum(c[t] + d[t] for t in range(n)) * dt
            out[b.id].update(throughput_kwh=round(through, 4), wear_eur=round(through * b.wear_cost_eur_per_kwh, 6))
    for pv in p.pv:
        u = sch.pv_kw.get(pv.id, list(pv.forecast_kw))
        out[pv.id] = {"kind": "pv", "device": pv.device, "name": pv.name, "power_kw": [round(-x, 4) for x in u],
                      "curtailed_kw": [round(pv.forecast_kw[t] - u[t], 4) for t in range(n)]}
    for th in p.thermal_storages:
        out[th.id] = {"kind": "thermal", "device": th.device, "name": th.name,
                      "power_kw": [round(x, 4) for x in sch.thermal_kw.get(th.id, [0.0] * n)],
                      "soc_kwh": [round(x, 4) for x in ev.soc_kwh.get(th.id, [])]}
    for hp in p.heat_pumps:
        out[hp.id] = {"kind": "space_heating", "device": hp.device, "name": hp.name,
                      "power_kw": [round(x, 4) for x in sch.heat_pump_kw.get(hp.id, [0.0] * n)],
                      "indoor_temperature_c": [round(x, 4) for x in ev.indoor_temperature_c.get(hp.id, [])],
                      "comfort_min_c": list(hp.comfort_min_c), "comfort_max_c": list(hp.comfort_max_c),
                      "outdoor_temperature_c": list(hp.outdoor_temperature_c)}
    return out


def _show_min_state(entry: dict[str, Any], reqs: tuple) -> None:
    """The minimum states a storage had to hold, beside its trajectory."""
    if reqs:
        entry["min_energy_at"] = [{"at": r.at.isoformat(), "energy_kwh": r.energy_kwh} for r in reqs]


def _v2g_view(e, sch: Schedule, n: int, dt: float) -> dict[str, Any]:
    """A V2G session's entries: power_kw = charge - discharge, both series, and the energy delivered so far
    (negative while the car has given more than it got) after each slot."""
    c = [round(x, 4) for x in sch.ev_kw.get(e.id, [0.0] * n)]
    d = [round(x, 4) for x in sch.ev_discharge_kw.get(e.id, [0.0] * n)]
    acc, traj = 0.0, [0.0]
    for t in range(n):
        acc += (c[t] * e.efficiency - d[t] / e.discharge_efficiency) * dt
        traj.append(round(acc, 4))
    return {"power_kw": [round(c[t] - d[t], 4) for t in range(n)], "charge_kw": c, "discharge_kw": d,
            "soc_kwh": traj, "energy_kwh": round(acc, 4)}


def schedule_from_result(problem: Problem, result: dict[str, Any]) -> Schedule:
    """The decisions of a stored result (`SolveResult.to_dict()`), read back from its `devices` (inverse of
    `devices_view`); raises KeyError / ValueError when the result does not describe `problem`'s devices."""
    g = problem.grid
    devices = result["devices"]
    sch = Schedule()
    n = g.slots

    def series(d: dict[str, Any], key: str) -> list[float]:
        v = [float(x) for x in d[key]]
        if len(v) != n:
            raise ValueError(f"{key}: {len(v)} values for {n} slots")
        return v

    for c in problem.cycles:
        start = devices[c.id]["start"]
        if start is None:
            raise ValueError(f"{c.id}: not scheduled")
        sch.cycle_start_min[c.id] = round(g.offset_min(datetime.fromisoformat(start)), 6)
    for e in problem.ev_sessions:
        sch.ev_kw[e.id] = series(devices[e.id], "charge_kw" if e.v2g else "power_kw")
        if e.v2g:
            sch.ev_discharge_kw[e.id] = series(devices[e.id], "discharge_kw")
    for b in problem.batteries:
        sch.battery_charge_kw[b.id] = series(devices[b.id], "charge_kw")
        sch.battery_discharge_kw[b.id] = series(devices[b.id], "discharge_kw")
    for pv in problem.pv:
        sch.pv_kw[pv.id] = [-x for x in series(devices[pv.id], "power_kw")]
    for th in problem.thermal_storages:
        sch.thermal_kw[th.id] = series(devices[th.id], "power_kw")
    for hp in problem.heat_pumps:
        sch.heat_pump_kw[hp.id] = series(devices[hp.id], "power_kw")
    return sch
