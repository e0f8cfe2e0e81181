"""An independent re-check of a returned schedule, written from the JSON contract only.

It reads the problem as a plain dict (not the package's dataclasses) and the
result as `SolveResult.to_dict()`, integrates cycle profiles minute by
minute (the package resamples phase by phase), replays every storage and
re-checks every requirement. It returns (cost_eur, problems).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

TOL = 2e-3  # kW / kWh; the model resolves power to 1 W


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


def check(problem: dict[str, Any], result: dict[str, Any]) -> tuple[float, list[str]]:
    errs: list[str] = []
    start = _t(problem["start"])
    res = problem["resolution_min"]
    n = problem["slots"]
    dt = res / 60
    site = problem["site"]
    net = [float(x) for x in site["base_load_kw"]]
    dev = result["devices"]

    def minute(when: datetime) -> float:
        return (when - start).total_seconds() / 60

    # cycles: minute-by-minute energy integration
    busy: dict[str, list[tuple[float, float, str]]] = {}
    for c in problem.get("cycles", []):
        d = dev.get(c["id"])
        if d is None or d.get("start") is None:
            errs.append(f"cycle {c['id']} not scheduled")
            continue
        s = minute(_t(d["start"]))
        phases = c["phases"]
        total = sum(p["duration_min"] for p in phases)
        if c.get("fixed_start"):
            if abs(s - minute(_t(c["fixed_start"]))) > 1e-6:
                errs.append(f"cycle {c['id']} moved although fixed")
        else:
            if abs(s / res - round(s / res)) > 1e-9:
                errs.append(f"cycle {c['id']} not on a slot boundary")
            if c.get("earliest_start") and s < minute(_t(c["earliest_start"])) - 1e-6:
                errs.append(f"cycle {c['id']} starts early")
            end_lim = min(minute(_t(c["latest_end"])) if c.get("latest_end") else n * res, n * res)
            if s + total > end_lim + 1e-6:
                errs.append(f"cycle {c['id']} ends late")
            if c.get("respect_do_not_disturb", True):
                for iv in problem.get("do_not_disturb", []):
                    a, b = minute(_t(iv["start"])), minute(_t(iv["end"]))
                    if a < s + total - 1e-6 and b > s + 1e-6:
                        errs.append(f"cycle {c['id']} in do-not-disturb")
        busy.setdefault(c.get("device", c["id"]), []).append((s, s + total, c["id"]))
        m = s
        energy_by_slot = [0.0] * n
        for p in phases:
            steps = max(1, int(round(p["duration_min"] * 4)))  # quarter-minute steps
            h = p["duration_min"] / steps
            for k in range(steps):
                mid = m + (k + 0.5) * h
                slot = int(mid // res)
                if 0 <= slot < n:
                    energy_by_slot[slot] += p["power_w"] / 1000 * h / 60
            m += p["duration_min"]
        for t in range(n):
            kw = energy_by_slot[t] / dt
            if abs(kw - d["power_kw"][t]) > TOL:
                errs.append(f"cycle {c['id']} slot {t}: reported {d['power_kw'][t]} kW, energy says {kw:.4f}")
            net[t] += kw
    for dname, ivs in busy.items():
        ivs.sort()
        for a, b in zip(ivs, ivs[1:]):
            if b[0] < a[1] - 1e-6:
                errs.append(f"{dname}: cycles {a[2]} and {b[2]} overlap")

    for e in problem.get("ev_sessions", []):
        p = dev[e["id"]].get("charge_kw", dev[e["id"]]["power_kw"])  # a V2G car: charge here, discharge below
        arr, dep = minute(_t(e["arrival"])), minute(_t(e["departure"]))
        steps = e.get("current_steps_a")
        levels = None
        if steps:
            levels = [a * e.get("voltage_v", 230) * e.get("phases", 1) / 1000 for a in steps]
            levels = [x for x in levels if x <= e["max_power_kw"] + 1e-9]
        for t in range(n):
            x = p[t]
            if x > TOL:
                if t * res < arr - 1e-6 or (t + 1) * res > dep + 1e-6:
                    errs.append(f"EV {e['id']} charges while away at slot {t}")
                if levels is not None:
                    if min(abs(x - lv) for lv in levels) > TOL:
                        errs.append(f"EV {e['id']} power {x} not a step")
                elif x < e.get("min_power_kw", 0) - TOL or x > e["max_power_kw"] + TOL:
                    errs.append(f"EV {e['id']} power {x} out of range")
            elif x < -TOL:
                errs.append(f"EV {e['id']} negative power")
            net[t] += x
        got = sum(p) * dt * e.get("efficiency", 1.0)
        cap, ini = e.get("capacity_kwh"), e.get("initial_soc_pct") or 0.0
        need = e["energy_kwh"] if e.get("energy_kwh") is not None else max(0.0, (e["target_soc_pct"] - ini) / 100 * cap)
        if levels and cap is not None and not e.get("max_discharge_kw"):  # FORMAT.md: leaving full on whole steps
            import math

            q = e.get("efficiency", 1.0) * dt * math.gcd(*[int(round(lv * 1000)) for lv in levels]) / 1000
            room = (100 - ini) / 100 * cap
            if need <= room + 1e-9 and math.ceil(need / q - 1e-7) > math.floor(room / q + 1e-7):
                need = math.floor(room / q + 1e-7) * q
        if got < need - TOL:
            errs.append(f"EV {e['id']} gets {got:.3f} < {need} kWh")
        if cap is not None and got > (100 - ini) / 100 * cap + TOL and not e.get("max_discharge_kw"):
            errs.append(f"EV {e['id']} gets {got:.3f} kWh, more than fits in the car")
        out = dev[e["id"]].get("discharge_kw", [0.0] * n)
        delivered = [0.0]
        for x, y in zip(p, out):
            delivered.append(delivered[-1] + (x * e.get("efficiency", 1.0) - y / e.get("discharge_efficiency", 1.0)) * dt)
        errs += _min_state_errors(e, delivered, start, res, f"EV {e['id']}")

    for b in problem.get("batteries", []):
        d = dev[b["id"]]
        c, dis = d["charge_kw"], d["discharge_kw"]
        cap = b["capacity_kwh"]
        soc = cap * b["initial_soc_pct"] / 100
        lo = min(cap * b.get("min_soc_pct", 0) / 100, soc)
        trajectory = [soc]
        for t in range(n):
            if c[t] < -TOL or c[t] > b["max_charge_kw"] + TOL or dis[t] < -TOL or dis[t] > b["max_discharge_kw"] + TOL:
                errs.append(f"battery {b['id']} power out of range at {t}")
            pi, pe = site["import_price_eur_per_kwh"][t], (site.get("export_price_eur_per_kwh") or [0.0] * n)[t]
            economic = (problem.get("objective") or {}).get("kind", "economic") == "economic"
            if c[t] > TOL and dis[t] > TOL and economic and (pi < 0 or pe < 0):  # burning energy for money
                errs.append(f"battery {b['id']} charges and discharges at once at {t} (negative prices)")
            soc += (c[t] * b.get("charge_efficiency", 1) - dis[t] / b.get("discharge_efficiency", 1)) * dt
            trajectory.append(soc)
            if soc < lo - TOL or soc > cap + TOL:
                errs.append(f"battery {b['id']} SoC {soc:.3f} out of [{lo}, {cap}] at {t}")
            net[t] += c[t] - dis[t]
        if b.get("final_soc_pct") is not None and soc < cap * b["final_soc_pct"] / 100 - TOL:
            errs.append(f"battery {b['id']} ends at {soc:.3f} kWh")
        errs += _min_state_errors(b, trajectory, start, res, f"battery {b['id']}")

    for pv in problem.get("pv", []):
        used = [-x for x in dev[pv["id"]]["power_kw"]]
        for t in range(n):
            f = pv["forecast_kw"][t]
            if used[t] > f + TOL or used[t] < -TOL or (not pv.get("curtailable") and used[t] < f - TOL):
                errs.append(f"PV {pv['id']} output {used[t]} not allowed at {t}")
            net[t] -= used[t]

    for th in problem.get("thermal_storages", []):
        p = dev[th["id"]]["power_kw"]
        e = th["initial_energy_kwh"]
        P = th["electric_power_kw"]
        for t in range(n):
            if p[t] < -TOL or p[t] > P + TOL or (not th.get("modulating") and TOL < p[t] < P - TOL):
                errs.append(f"thermal {th['id']} power {p[t]} not allowed")
            e += (th.get("cop", 1) * p[t] - th["heat_demand_kw"][t] - th.get("standing_loss_kw", 0)) * dt
            if e < th.get("min_energy_kwh", 0) - TOL or e > th["max_energy_kwh"] + TOL:
                errs.append(f"thermal {th['id']} energy {e:.3f} outside band at {t}")
            net[t] += p[t]
        if th.get("final_energy_kwh") is not None and e < th["final_energy_kwh"] - TOL:
            errs.append(f"thermal {th['id']} ends at {e:.3f}")

    errs += _check_heat_pumps(problem, dev, n, dt, net)
    errs += _check_circuits(problem, dev, n)
    errs += _check_v2g(problem, dev, n, dt, net)

    cost = 0.0
    gr = problem.get("grid_request") or {}
    for t in range(n):
        x = net[t]
        if abs(x - result["net_import_kw"][t]) > TOL:
            errs.append(f"net import slot {t}: reported {result['net_import_kw'][t]}, recomputed {x:.4f}")
        if x > site["import_limit_kw"] + TOL:
            errs.append(f"import {x:.3f} above limit at {t}")
        if -x > site.get("export_limit_kw", site["import_limit_kw"]) + TOL:
            errs.append(f"export {-x:.3f} above limit at {t}")
        exp_price = (site.get("export_price_eur_per_kwh") or [0.0] * n)[t]
        cost += (max(x, 0) * site["import_price_eur_per_kwh"][t] - max(-x, 0) * exp_price) * dt
        if gr and gr.get("penalty_eur_per_kwh") is None:
            lo = (gr.get("min_net_import_kw") or [None] * n)[t]
            hi = (gr.get("max_net_import_kw") or [None] * n)[t]
            if lo is not None and x < lo - TOL or hi is not None and x > hi + TOL:
                errs.append(f"grid request violated at {t}: {x:.3f}")
    errs += _capacity_errors(problem, result, net, start, res)
    return cost, errs


def _capacity_errors(problem: dict[str, Any], result: dict[str, Any], net: list[float], start: datetime,
                     res: int) -> list[str]:
    """`capacity_charges`: the reported peak is the highest window average import, recomputed here."""
    out = []
    reported = result.get("capacity_charges") or []
    for i, cc in enumerate(problem.get("capacity_charges") or []):
        a, b, w = _t(cc["start"]), _t(cc["end"]), max(cc.get("window_min", 15), res)
        windows: dict[int, list[float]] = {}
        for t, x in enumerate(net):
            at = start + timedelta(minutes=res * t)
            if a <= at < b:
                windows.setdefault(int((at - a).total_seconds() // 60 // w), []).append(max(x, 0.0))
        peak = max([sum(v) / len(v) for v in windows.values()] + [0.0])
        if i >= len(reported) or abs(reported[i]["planned_peak_kw"] - peak) > TOL:
            out.append(f"capacity charge {i}: planned peak {peak:.4f} kW, reported {reported[i:i + 1]}")
    return out


def _min_state_errors(item: dict[str, Any], trajectory: list[float], start: datetime, res: int,
                      what: str) -> list[str]:
    """`min_energy_at`: the state, linear between slot boundaries, at each instant inside the horizon."""
    out = []
    for r in item.get("min_energy_at") or []:
        x = (_t(r["at"]) - start).total_seconds() / 60 / res
        if x < 0 or x > len(trajectory) - 1:
            continue
        k = min(int(x), len(trajectory) - 2)
        f = x - k
        state = trajectory[k] * (1 - f) + trajectory[k + 1] * f
        if state < r["energy_kwh"] - TOL:
            out.append(f"{what} holds {state:.3f} < {r['energy_kwh']} kWh at {r['at']}")
    return out


def _check_circuits(problem: dict[str, Any], dev: dict[str, Any], n: int) -> list[str]:
    """Shared circuits: the summed reported power of the named devices within +-limit_kw."""
    errs = []
    for ci in problem.get("circuits", []):
        for t in range(n):
            x = sum(d["power_kw"][t] for d in dev.values() if d["device"] in ci["devices"])
            if abs(x) > ci["limit_kw"] + TOL:
                errs.append(f"circuit {ci['id']} carries {x:.3f} kW at {t}")
    return errs


def _check_v2g(problem: dict[str, Any], dev: dict[str, Any], n: int, dt: float, net: list[float]) -> list[str]:
    """V2G cars: discharge within its limit while plugged in, the SoC replayed within [minimum SoC or empty,
    full] and at the target at departure, no export from a car that may not export; subtracts the discharge
    from `net`."""
    errs = []
    res = problem["resolution_min"]
    start = _t(problem["start"])
    no_export_slots = set()
    for e in problem.get("ev_sessions", []):
        if not e.get("max_discharge_kw"):
            continue
        d, c = dev[e["id"]]["discharge_kw"], dev[e["id"]]["charge_kw"]
        cap, ini = e["capacity_kwh"], e.get("initial_soc_pct") or 0.0
        soc = cap * ini / 100
        floor = min(soc, cap * (e.get("min_soc_pct") or 0.0) / 100)
        arr = (_t(e["arrival"]) - start).total_seconds() / 60
        dep = (_t(e["departure"]) - start).total_seconds() / 60
        for t in range(n):
            if d[t] < -TOL or d[t] > e["max_discharge_kw"] + TOL:
                errs.append(f"EV {e['id']} discharge {d[t]} out of range")
            if d[t] > TOL and (t * res < arr - 1e-6 or (t + 1) * res > dep + 1e-6):
                errs.append(f"EV {e['id']} discharges while away at {t}")
            soc += (c[t] * e.get("efficiency", 1.0) - d[t] / e.get("discharge_efficiency", 1.0)) * dt
            if soc < floor - TOL or soc > cap + TOL:
                errs.append(f"EV {e['id']} SoC {soc:.3f} kWh outside [{floor:.3f}, {cap}] at {t}")
            net[t] -= d[t]
            if d[t] > TOL and not e.get("export_allowed"):
                no_export_slots.add(t)
        need = e.get("energy_kwh")
        target = cap * ini / 100 + need if need is not None else cap * e["target_soc_pct"] / 100
        if soc < target - TOL:
            errs.append(f"EV {e['id']} leaves at {soc:.3f} kWh, below its target {target:.3f}")
    for t in sorted(no_export_slots):
        gen = sum(-d["power_kw"][t] for d in dev.values() if d["kind"] in ("pv", "battery") and d["power_kw"][t] < 0)
        gen += sum(dev[e["id"]]["discharge_kw"][t] for e in problem.get("ev_sessions", [])
                   if e.get("max_discharge_kw") and e.get("export_allowed"))
        if net[t] + gen < -TOL:
            errs.append(f"an EV that may not export feeds {-(net[t] + gen):.3f} kW to the grid at {t}")
    return errs


def _check_heat_pumps(problem: dict[str, Any], dev: dict[str, Any], n: int, dt: float, net: list[float]) -> list[str]:
    """Space heating: the indoor temperature integrated minute by minute (dT/dt = (Q - H (T - T_out)) / C, a
    different scheme from the package's exact step) stays in the comfort band within 0.01 K; on/off power; adds
    the power to `net`."""
    import math

    errs = []
    res = problem["resolution_min"]
    for hp in problem.get("heat_pumps", []):
        p = dev[hp["id"]]["power_kw"]
        curve = sorted(tuple(x) for x in hp["cop_curve"])
        C, H = hp["heat_capacity_kwh_per_k"], hp["heat_loss_kw_per_k"]
        sun = hp.get("solar_irradiance_kw_per_m2") or [0.0] * n
        temp = hp["initial_indoor_c"]
        for t in range(n):
            out = hp["outdoor_temperature_c"][t]
            xs = [x for x, _ in curve]
            cop = curve[0][1] if out <= xs[0] else curve[-1][1] if out >= xs[-1] else next(
                y0 + (y1 - y0) * (out - x0) / (x1 - x0) for (x0, y0), (x1, y1) in zip(curve, curve[1:]) if x0 <= out <= x1)
            if p[t] < -TOL or p[t] > hp["max_power_kw"] + TOL or (
                    not hp.get("modulating", True) and TOL < p[t] < hp["max_power_kw"] - TOL):
                errs.append(f"heat pump {hp['id']} power {p[t]} not allowed at {t}")
            q = cop * p[t] + hp.get("solar_gain_factor_m2", 0.0) * sun[t]
            steps = res * 4  # quarter-minute Euler steps
            for _ in range(steps):
                temp += (q - H * (temp - out)) / C * (dt / steps)
            if temp < hp["comfort_min_c"][t] - 0.01 or temp > hp["comfort_max_c"][t] + 0.01:
                errs.append(f"heat pump {hp['id']} indoor {temp:.3f} C outside its band at {t}")
            if abs(temp - dev[hp["id"]]["indoor_temperature_c"][t + 1]) > 0.01:
                errs.append(f"heat pump {hp['id']} reports {dev[hp['id']]['indoor_temperature_c'][t + 1]} C at {t}, "
                            f"replay says {temp:.3f}")
            net[t] += p[t]
        if not hp.get("modulating", True):
            on = [x > TOL for x in p]
            run = max(1, math.ceil(hp.get("min_run_min", 0) / res - 1e-9))
            off = max(1, math.ceil(hp.get("min_off_min", 0) / res - 1e-9))
            for t in range(n):
                was = on[t - 1] if t else False
                if on[t] and not was and not all(on[t:t + run]):
                    errs.append(f"heat pump {hp['id']} runs shorter than its minimum at {t}")
                if was and not on[t] and any(on[t:t + off]):
                    errs.append(f"heat pump {hp['id']} restarts too soon at {t}")
    return errs


def shifted(iso: str, minutes: float) -> str:
    return (_t(iso) + timedelta(minutes=minutes)).isoformat()
