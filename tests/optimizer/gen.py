"""Random feasible homes (hypothesis) in the JSON contract.

Feasible by construction: generous import limit, cycle windows longer than
the cycle, EV needs at most half of what its window can deliver, battery final
SoC at most its initial SoC, thermal stores with enough heater power.
Scheduled starts of one appliance's cycles do not overlap, so the baseline is
a valid plan whenever no do-not-disturb window is drawn.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

START = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)


@st.composite
def homes(draw, max_slots: int = 24):
    res = draw(st.sampled_from([30, 60]))
    n = draw(st.integers(min_value=8, max_value=max_slots))
    horizon = n * res
    price = [round(draw(st.floats(0.05, 0.35)), 4) for _ in range(n)]
    if draw(st.booleans()):
        price[draw(st.integers(0, n - 1))] = -0.02  # a negative-price slot
    exp_price = round(draw(st.floats(0.0, 0.06)), 4)
    base = [round(draw(st.floats(0.1, 1.5)), 3) for _ in range(n)]
    co2 = [round(draw(st.floats(20, 300)), 1) for _ in range(n)]
    iso = lambda m: (START + timedelta(minutes=m)).isoformat()  # noqa: E731
    p = {"version": 1, "start": START.isoformat(), "resolution_min": res, "slots": n, "timezone": "UTC",
         "objective": {"kind": draw(st.sampled_from(["economic", "economic", "ecologic", "mixed"])),
                       "cost_weight": 0.7},
         "site": {"import_limit_kw": 25.0, "export_limit_kw": 10.0, "import_price_eur_per_kwh": price,
                  "export_price_eur_per_kwh": [exp_price] * n, "co2_g_per_kwh": co2, "base_load_kw": base},
         "cycles": [], "ev_sessions": [], "batteries": [], "pv": [], "thermal_storages": [], "do_not_disturb": []}
    next_free: dict[str, int] = {}
    for i in range(draw(st.integers(0, 3))):
        devname = draw(st.sampled_from(["WM", "DW"]))
        phases = [{"duration_min": draw(st.integers(5, 70)), "power_w": draw(st.integers(50, 2600))}
                  for _ in range(draw(st.integers(1, 3)))]
        dur = sum(ph["duration_min"] for ph in phases)
        if dur + res > horizon:
            continue
        sched_slot = next_free.get(devname, 0)
        occupied = -(-dur // res)
        if (sched_slot + occupied) * res > horizon:
            continue
        next_free[devname] = sched_slot + occupied
        es = sched_slot * res
        le = draw(st.integers(min_value=es + dur, max_value=horizon))
        p["cycles"].append({"id": f"c{i}", "device": devname, "name": f"{devname} {i}", "phases": phases,
                            "earliest_start": iso(0), "latest_end": iso(max(le, es + dur)),
                            "scheduled_start": iso(es)})
    if draw(st.booleans()):
        a = draw(st.integers(0, n // 2))
        b = draw(st.integers(a + 2, n))
        kind = draw(st.sampled_from(["continuous", "onoff", "steps"]))
        ev = {"id": "ev", "device": "EVC", "name": "Car", "arrival": iso(a * res), "departure": iso(b * res),
              "max_power_kw": 7.4, "min_power_kw": 1.4 if kind == "onoff" else 0.0, "efficiency": 0.9}
        if kind == "steps":
            ev["current_steps_a"] = [6, 10, 16, 32]
            ev["min_power_kw"] = 0.0
        cap = 1.38 * (b - a) * res / 60 * 0.9 if kind == "steps" else 7.4 * (b - a) * res / 60 * 0.9
        ev["energy_kwh"] = round(draw(st.floats(0.5, max(0.6, cap * 0.5))), 2)
        p["ev_sessions"].append(ev)
    if draw(st.booleans()):
        ini = draw(st.floats(20, 90))
        p["batteries"].append({"id": "bat", "device": "BAT", "name": "Battery", "capacity_kwh": 8.0,
                               "initial_soc_pct": round(ini, 1), "min_soc_pct": 10.0,
                               "final_soc_pct": round(draw(st.floats(10, ini)), 1) if draw(st.booleans()) else None,
                               "max_charge_kw": 3.0, "max_discharge_kw": 3.0,
                               "charge_efficiency": 0.95, "discharge_efficiency": 0.92})
    if draw(st.booleans()):
        peak = draw(st.floats(0.5, 5.0))
        p["pv"].append({"id": "pv", "device": "PV", "name": "PV", "curtailable": draw(st.booleans()),
                        "forecast_kw": [round(peak * max(0.0, 1 - abs(2 * t / n - 1) * 1.5), 3) for t in range(n)]})
    if draw(st.booleans()):
        cop = draw(st.sampled_from([1.0, 3.0]))
        p["thermal_storages"].append({
            "id": "wh", "device": "WH", "name": "Water heater", "electric_power_kw": round(2.0 / cop, 3),
            "modulating": draw(st.booleans()), "cop": cop, "min_energy_kwh": 1.0,
            "max_energy_kwh": 6.0, "initial_energy_kwh": 4.0, "final_energy_kwh": 3.0, "standing_loss_kw": 0.05,
            "heat_demand_kw": [round(draw(st.floats(0.0, 0.6)), 3) for _ in range(n)]})
    return p
