"""Seeded random realistic households, as problems in the optimizer's JSON contract.

Used by the optimizer tests (hypothesis draws seeds) and by `python -m bench.optimizer --random N`.
`random_home(seed, kind)` is a pure function of its arguments: the same seed and class give the same
home on every machine (only the standard library's `random.Random` is used).

Classes (`CLASSES`; `random_homes(n)` cycles through them, so 300 homes = 50 per class):

- `appliances`: 1-4 appliance cycles on one or two appliances (two cycles of one appliance never overlap;
  the same program twice on one appliance happens), maybe PV.
- `ev`: one EV session (continuous, on/off above a minimum, or current steps on 1 or 3 phases) and 0-2 cycles.
- `battery`: a battery (2.5-20 kWh, 0.5-1 C), PV (fixed or curtailable) and 0-2 cycles.
- `thermal`: a water heater (on/off resistive, or a modulating heat pump with COP 2.5-3.5) and 0-2 cycles.
- `full`: what the demo household has: 1-3 cycles, EV, battery, water heater, PV.
- `many_cycles_4k6`: 8 cycles on 3 or 4 appliances on a 4.6 kVA connection (the hard scheduling case).

Drawn for every class: the day (any day of 2026, a DST day in one home out of six), the horizon
(24, 30, 48 or 72 h) and the slot (5, 15 or 60 min; 5 min only up to 48 h, like a hub's 5-minute plan),
the tariff (the Portuguese tri-hourly ToU day of the reference data, a two-period ToU, or hourly dynamic
day-ahead prices with negative-price hours around noon in one dynamic day out of three), the export
price, the connection (tight: 3.45 or 4.6 kVA; loose: 6.9-13.8 kVA), the objective (economic, ecologic
or mixed; economic homes sometimes omit the CO2 series, which is optional), a night do-not-disturb
window. Appliance programs are the reference data's washing-machine programs
(`../shared/reference/flexihome-default-data.json`, see `problems.reference_path`) plus a dishwasher
and a dryer profile written here; without the reference file, built-in copies of the washer programs
are used, so the generator never fails for lack of it.

Made to be feasible: cycle windows are at least the cycle plus 2 h long (inside 07:00-22:00 with a
do-not-disturb night), the cycles of one appliance fit one after another on the slot grid
(`_fit_one_appliance`), a tight connection goes with a small base load, PV fits the connection, the EV
needs at most 60 % of what its window can deliver under the connection, the water heater's store holds
an on/off slot's heat and ends at 60 % of its start. `tests/optimizer/test_random_homes.py` checks the
first 300 homes against the pre-checks; the benchmark reports any home no backend can plan.
"""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

CLASSES = ("appliances", "ev", "battery", "thermal", "full", "many_cycles_4k6")

TZ = "Europe/Lisbon"
DST_DAYS = (date(2026, 3, 29), date(2026, 10, 25))

# (duration_min, power_w) per phase, in execution order
_BUILTIN_WASHER = {
    "washer/easy_care": [(13, 200), (47, 1000), (14, 100)],
    "washer/anti_stain": [(4, 400), (47, 2600), (21, 1000), (3, 400)],
    "washer/wool": [(4, 400), (68, 2600), (42, 1000), (3, 400)],
    "washer/whites": [(4, 400), (71, 2600), (45, 1000), (3, 400)],
}
OTHER_PROGRAMS = {
    "dishwasher/eco": [(5, 80), (22, 2000), (40, 90), (18, 2000), (35, 40)],
    "dishwasher/quick": [(3, 80), (12, 2100), (15, 100), (10, 1900)],
    "dryer/cotton": [(85, 2400), (15, 250)],
    "dryer/synthetic": [(50, 1800), (10, 200)],
}


def washer_programs() -> dict[str, list[tuple[float, float]]]:
    """The reference data's washing-machine programs, or built-in copies when the file is absent."""
    try:
        from tests.factories.reference import reference

        cycles = reference()["appliance_cycles"]
    except (OSError, KeyError, ValueError):
        return dict(_BUILTIN_WASHER)
    out = {}
    for name, c in cycles.items():
        phases = sorted(c["phases"], key=lambda p: p["order"])
        out["washer/" + name.split("/")[-1]] = [(float(p["duration_min"]), float(p["max_power_w"])) for p in phases]
    return out or dict(_BUILTIN_WASHER)


def _reference_series() -> Optional[dict[str, Any]]:
    try:
        from tests.factories.reference import reference

        return reference()
    except (OSError, ValueError):
        return None


_LOAD_PU = [0.208, 0.106, 0.098, 0.087, 0.097, 0.222, 0.367, 0.581, 0.544, 0.454, 0.374, 0.387,
            0.441, 0.444, 0.301, 0.286, 0.405, 0.494, 0.601, 0.586, 0.514, 0.42, 0.279, 0.252]
_CO2 = [58.3, 54.0, 56.5, 71.9, 56.0, 64.9, 64.3, 63.0, 52.2, 56.6, 53.9, 53.2,
        48.8, 53.6, 67.0, 73.3, 62.1, 59.8, 55.5, 55.6, 62.5, 59.3, 62.5, 72.9]


class _Grid:
    """Slots from local midnight of `day` for `hours` hours of wall-clock days (DST-aware)."""

    def __init__(self, day: date, hours: int, res: int):
        self.zone = ZoneInfo(TZ)
        self.day = day
        self.start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        self.start_utc = self.start.astimezone(timezone.utc)
        if hours == 24:  # one local day: 92 or 100 quarter-hours on DST days
            nxt = day + timedelta(days=1)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.zone).astimezone(timezone.utc)
        else:
            end = self.start_utc + timedelta(hours=hours)
        self.res = res
        self.slots = int((end - self.start_utc).total_seconds() // 60 // res)

    def instant(self, t: int) -> datetime:
        return (self.start_utc + timedelta(minutes=self.res * t)).astimezone(self.zone)

    def hour(self, t: int) -> float:
        x = self.instant(t)
        return x.hour + x.minute / 60 + self.res / 120  # slot middle

    def at(self, day_offset: int, hours: float) -> datetime:
        d = self.day + timedelta(days=day_offset)
        h, m = int(hours), int(round((hours - int(hours)) * 60))
        return datetime(d.year, d.month, d.day, tzinfo=self.zone) + timedelta(hours=h, minutes=m)

    def iso(self, day_offset: int, hours: float) -> str:
        return self.at(day_offset, hours).isoformat()

    @property
    def end(self) -> datetime:
        return self.start_utc + timedelta(minutes=self.res * self.slots)

    @property
    def days(self) -> int:
        return max(1, math.ceil(self.slots * self.res / 1440))


def _tariff(r: random.Random, g: _Grid, pv_kwp: float) -> tuple[str, list[float], list[float]]:
    kind = r.choice(["tou_reference", "tou_two_period", "dynamic", "dynamic"])
    ref = _reference_series()
    if kind == "tou_reference" and ref is not None:
        p15 = ref["import_price_eur_per_kwh_15min"]
        price = [p15[int(g.hour(t) * 4) % 96] for t in range(g.slots)]
    elif kind in ("tou_reference", "tou_two_period"):
        kind = "tou_two_period"
        hi, lo = round(r.uniform(0.2, 0.3), 4), round(r.uniform(0.08, 0.13), 4)
        price = [hi if 8 <= g.hour(t) % 24 < 22 else lo for t in range(g.slots)]
    else:
        negative = r.random() < 1 / 3
        base = r.uniform(0.08, 0.16)
        hourly = {}
        for d in range(g.days + 1):
            for h in range(24):
                v = base + 0.06 * math.exp(-((h - 8) / 1.5) ** 2) + 0.1 * math.exp(-((h - 19.5) / 2) ** 2)
                v -= 0.05 * math.exp(-((h - 13.5) / 2.5) ** 2)
                if negative and 11 <= h < 15:
                    v = -r.uniform(0.005, 0.04)
                hourly[(d, h)] = round(v + r.uniform(-0.015, 0.015), 4)
        price = []
        for t in range(g.slots):
            x = g.instant(t)
            price.append(hourly[((x.date() - g.day).days, x.hour)])
    exp_kind = r.choice(["none", "flat", "flat", "spot"]) if pv_kwp > 0 else r.choice(["none", "flat"])
    if exp_kind == "none":
        export = [0.0] * g.slots
    elif exp_kind == "flat":
        e = round(r.uniform(0.02, 0.07), 4)
        export = [e] * g.slots
    else:
        export = [round(max(0.0, 0.8 * x), 4) for x in price]
    return kind, price, export


def _pv_series(r: random.Random, g: _Grid, kwp: float) -> list[float]:
    doy = g.day.timetuple().tm_yday
    half_day = 4.5 + 2.5 * math.sin(2 * math.pi * (doy - 80) / 365)  # 2.0 h in winter .. 7.0 h in summer
    noon = 13.5 if g.instant(0).utcoffset() == timedelta(hours=1) else 12.5
    cloud = [r.uniform(0.4, 1.0) for _ in range(g.days + 1)]
    out = []
    for t in range(g.slots):
        x = (g.hour(t) % 24 - (noon - half_day)) / (2 * half_day)
        d = (g.instant(t).date() - g.day).days
        out.append(round(kwp * cloud[d] * math.sin(math.pi * x) ** 1.5, 3) if 0 < x < 1 else 0.0)
    return out


def _cycle(r: random.Random, g: _Grid, cid: str, device: str, program: str, phases: list[tuple[float, float]],
           day_offset: int, dnd: bool) -> dict[str, Any]:
    """A window of the cycle's length plus 2-14 h on day `day_offset`, inside 07:00-22:00 with a
    night do-not-disturb window, else from 06:00; the scheduled start somewhere inside it."""
    dur_h = sum(p[0] for p in phases) / 60
    horizon_h = g.slots * g.res / 60
    day0 = day_offset * 24.0
    es_h = day0 + r.uniform(7.0, 12.0) if dnd else day0 + r.uniform(6.0, 14.0)
    le_h = es_h + r.uniform(dur_h + 2.0, dur_h + 14.0)
    le_h = min(le_h, horizon_h, day0 + 22.0 if dnd else horizon_h)
    es_h = min(es_h, le_h - dur_h - 2.0)
    es_h, le_h = math.ceil(es_h * 4) / 4, math.floor(le_h * 4) / 4
    sched = es_h + r.uniform(0.0, max(0.0, le_h - es_h - dur_h - 0.5))
    sched = math.ceil(sched * 60 / g.res) * g.res / 60
    iso = lambda h: (g.start_utc + timedelta(minutes=round(h * 60))).astimezone(g.zone).isoformat()  # noqa: E731
    return {"id": cid, "device": device, "name": f"{device} {program}",
            "phases": [{"duration_min": d, "power_w": w} for d, w in phases],
            "earliest_start": iso(es_h), "latest_end": iso(le_h), "scheduled_start": iso(sched),
            "respect_do_not_disturb": True}


def _cycles(r: random.Random, g: _Grid, count: int, appliances: list[str], dnd: bool) -> list[dict[str, Any]]:
    washer = washer_programs()
    progs = {"WM": sorted(washer), "DW": ["dishwasher/eco", "dishwasher/quick"],
             "DR": ["dryer/cotton", "dryer/synthetic"], "WM2": sorted(washer)}
    library = {**washer, **OTHER_PROGRAMS}
    out = []
    for i in range(count):
        dev = appliances[i % len(appliances)] if r.random() < 0.7 else r.choice(appliances)
        prog = r.choice(progs[dev])
        day_offset = r.randrange(g.days)
        if (day_offset * 24 + 14 + 4) * 60 > g.slots * g.res:  # a 30 h horizon: day 2 is only its night
            day_offset = 0
        out.append(_cycle(r, g, f"c{i}", dev, prog, library[prog], day_offset, dnd))
    _fit_one_appliance(g, out, dnd)
    return out


def _start_slots(g: _Grid, c: dict[str, Any], dnd: bool) -> tuple[list[int], int]:
    """The slots a cycle may start in (its window on the slot grid, outside the night do-not-disturb
    window), and how many slots it occupies: what the optimizer's `compile.cycle_model` allows."""
    off = lambda iso: (datetime.fromisoformat(iso) - g.start_utc).total_seconds() / 60  # noqa: E731
    dur = sum(ph["duration_min"] for ph in c["phases"])
    es, le = off(c["earliest_start"]), min(off(c["latest_end"]), g.slots * g.res)
    nights = [(off(g.iso(d, 22.0)), off(g.iso(d + 1, 7.0))) for d in range(-1, g.days)] if dnd else []
    starts = [s for s in range(math.ceil(es / g.res - 1e-9), g.slots) if s * g.res + dur <= le + 1e-9
              and not any(a < s * g.res + dur and b > s * g.res for a, b in nights)]
    return starts, math.ceil(dur / g.res - 1e-9)


def _one_after_another(windows: list[tuple[list[int], int]], t: int = 0) -> bool:
    """Whether cycles of one appliance (start slots, length in slots) can all run, one after another."""
    if not windows:
        return True
    for i, (starts, length) in enumerate(windows):
        s = next((x for x in starts if x >= t), None)  # starting as early as it can never hurts the others
        if s is not None and _one_after_another(windows[:i] + windows[i + 1:], s + length):
            return True
    return False


def _fit_one_appliance(g: _Grid, cycles: list[dict[str, Any]], dnd: bool) -> None:
    """Two cycles of one appliance never overlap, so their windows must leave room for all of them on the
    slot grid (at 60 minutes a 123-minute program takes 3 slots: two in a 5-hour window cannot both run,
    which made `many_cycles_4k6-281` infeasible). Where they do not, the narrowest window of that appliance
    is widened to its whole day (07:00 or 06:00 to 22:00 or the horizon's end) until they fit. Draws no
    random number, so every home that fitted stays as it was."""
    horizon_h = g.slots * g.res / 60
    for dev in sorted({c["device"] for c in cycles}):
        mine = [c for c in cycles if c["device"] == dev]
        while not _one_after_another([_start_slots(g, c, dnd) for c in mine]):
            narrow = [c for c in mine if not c.get("_widened")]
            if not narrow:
                break
            c = min(narrow, key=lambda x: len(_start_slots(g, x, dnd)[0]))
            day0 = 24.0 * int((datetime.fromisoformat(c["earliest_start"]) - g.start_utc).total_seconds() // 86400)
            iso = lambda h: (g.start_utc + timedelta(minutes=round(h * 60))).astimezone(g.zone).isoformat()  # noqa: E731
            c["earliest_start"], c["latest_end"] = iso(day0 + (7.0 if dnd else 6.0)), iso(min(horizon_h, day0 + 22.0))
            c["_widened"] = True
    for c in cycles:
        c.pop("_widened", None)


def _ev(r: random.Random, g: _Grid, limit_kw: float, base_peak_kw: float) -> dict[str, Any]:
    kind = r.choice(["continuous", "on_off", "steps_1ph", "steps_3ph"])
    if kind == "steps_3ph" and limit_kw < 6.0:
        kind = "steps_1ph"
    phases = 3 if kind == "steps_3ph" or (kind != "steps_1ph" and limit_kw >= 10 and r.random() < 0.5) else 1
    amps = r.choice([16, 32]) if phases == 1 else r.choice([16, 16, 32])
    max_kw = round(min(amps * 230 * phases / 1000, max(1.5, limit_kw - 0.3)), 3)
    day_offset = 0
    arr_h = r.uniform(16.5, 21.0)
    dep_h = 24.0 + r.uniform(6.0, 8.5)
    horizon_h = g.slots * g.res / 60
    if dep_h > horizon_h:
        arr_h, dep_h = r.uniform(0.0, 2.0), min(horizon_h, r.uniform(6.0, 8.5))
    ev: dict[str, Any] = {"id": "ev-1", "device": "EVC-1", "name": "Car", "arrival": g.iso(day_offset, arr_h),
                          "departure": g.iso(day_offset, dep_h), "max_power_kw": max_kw, "phases": phases,
                          "voltage_v": 230, "efficiency": round(r.uniform(0.88, 0.96), 3)}
    if kind == "on_off":
        ev["min_power_kw"] = round(6 * 230 * phases / 1000, 3)
    elif kind.startswith("steps"):
        ev["current_steps_a"] = r.choice([[6, 8, 10, 13, 16, 20, 25, 32], list(range(6, 17)), [6, 10, 16],
                                          [6, 8, 10, 12, 14, 16]])
        ev["min_power_kw"] = 0.0
    room_kw = max(0.0, min(max_kw, limit_kw - base_peak_kw * 0.6))
    hours = dep_h - arr_h - 1.0
    cap = room_kw * max(0.0, hours) * ev["efficiency"]
    ev["energy_kwh"] = round(r.uniform(0.15, 0.6) * cap, 2) if cap > 2 else 1.0
    if r.random() < 0.3:  # the app's form: target SoC with the car's capacity
        capacity = r.choice([40.0, 58.0, 77.0])
        ini = r.uniform(10, 60)
        tgt = min(100.0, ini + 100 * ev["energy_kwh"] / capacity)
        ev.pop("energy_kwh")
        ev.update(capacity_kwh=capacity, initial_soc_pct=round(ini, 1), target_soc_pct=round(tgt, 1))
    return ev


def _battery(r: random.Random) -> dict[str, Any]:
    cap = r.choice([2.5, 5.0, 10.0, 13.5, 20.0])
    kw = round(min(cap * r.choice([0.5, 1.0]), 6.0), 3)
    ini = round(r.uniform(20, 90), 1)
    return {"id": "bat-1", "device": "BAT-1", "name": "Battery", "capacity_kwh": cap, "initial_soc_pct": ini,
            "min_soc_pct": r.choice([0.0, 10.0, 20.0]), "final_soc_pct": ini if r.random() < 0.8 else None,
            "max_charge_kw": kw, "max_discharge_kw": kw, "charge_efficiency": round(r.uniform(0.92, 0.97), 3),
            "discharge_efficiency": round(r.uniform(0.92, 0.97), 3)}


def _thermal(r: random.Random, g: _Grid) -> dict[str, Any]:
    heat_pump = r.random() < 0.4
    volume = r.choice([100, 150, 200, 300])
    max_kwh = round(volume * 4.186 / 3600 * r.uniform(20, 30), 3)
    cop = round(r.uniform(2.5, 3.5), 2) if heat_pump else 1.0
    electric = round(r.uniform(0.4, 1.0), 3) if heat_pump else r.choice([1.5, 2.0, 2.5, 3.0])
    demand = []
    draws = [(r.uniform(6.5, 8.0), r.uniform(0.25, 0.5)), (r.uniform(19.0, 22.0), r.uniform(0.25, 0.75))]
    per_draw = min(0.35 * max_kwh, r.uniform(1.0, 3.0))
    slot_h = g.res / 60
    for t in range(g.slots):
        a = g.hour(t) % 24 - slot_h / 2  # slot start, local hours
        x = 0.04
        for start, length in draws:  # the draw's energy spread over the slots it overlaps
            overlap = max(0.0, min(a + slot_h, start + length) - max(a, start))
            x += per_draw / length * overlap / slot_h
        demand.append(round(x, 3))
    chunk = electric * cop * g.res / 60  # heat of one on/off slot
    max_kwh = round(max(max_kwh, 2.5 * chunk), 3)  # an on/off slot must fit in the store
    initial = round(max_kwh * r.uniform(0.5, 0.9), 3)
    return {"id": "wh-1", "device": "WH-1", "name": "Heat pump" if heat_pump else "Water heater",
            "electric_power_kw": electric, "modulating": heat_pump and r.random() < 0.7, "cop": cop,
            "min_energy_kwh": 0.0, "max_energy_kwh": max_kwh, "initial_energy_kwh": initial,
            "final_energy_kwh": round(0.6 * initial, 3) if r.random() < 0.8 else None,
            "standing_loss_kw": round(r.uniform(0.02, 0.06), 3), "heat_demand_kw": demand}


def _peak_kw(p: dict[str, Any], device: str) -> float:
    """The largest power one device of the home can draw (kW)."""
    peaks = [max(ph["power_w"] for ph in c["phases"]) / 1000 for c in p["cycles"] if c["device"] == device]
    for e in p["ev_sessions"]:
        if e["device"] == device:
            steps = e.get("current_steps_a")
            peaks.append(min(e["max_power_kw"], max(steps) * e["voltage_v"] * e["phases"] / 1000) if steps
                         else e["max_power_kw"])
    peaks += [th["electric_power_kw"] for th in p["thermal_storages"] if th["device"] == device]
    peaks += [hp["max_power_kw"] for hp in p.get("heat_pumps", []) if hp["device"] == device]
    return max(peaks, default=0.0)


def _v2g(r: random.Random, p: dict[str, Any]) -> None:
    """Issue 14 item 3: about a third of the cars may discharge (bidirectional charger up to its charge power),
    with a minimum SoC at every time in half of them and export allowed in half."""
    for e in p["ev_sessions"]:
        if r.random() >= 1 / 3:
            continue
        if e.get("capacity_kwh") is None:  # discharging needs the car's state of charge
            e["capacity_kwh"] = r.choice([40.0, 58.0, 77.0])
            e["initial_soc_pct"] = round(r.uniform(20, 60), 1)
            e["energy_kwh"] = min(e["energy_kwh"], round((100 - e["initial_soc_pct"]) / 100 * e["capacity_kwh"], 2))
        e["max_discharge_kw"] = round(min(e["max_power_kw"], r.choice([3.68, 7.36, 11.0])), 3)
        e["discharge_efficiency"] = round(r.uniform(0.88, 0.95), 3)
        if r.random() < 0.5:
            e["min_soc_pct"] = r.choice([20.0, 30.0, 40.0])
        e["export_allowed"] = r.random() < 0.5


SPACE_HEATING_SHARE = {"thermal": 0.5, "full": 0.3, "battery": 0.2, "ev": 0.1, "appliances": 0.1}
COP_CURVE = [[-10.0, 2.0], [-2.0, 2.6], [7.0, 3.4], [15.0, 4.2]]  # air-to-water, typical data-sheet shape


def _space_heating(r: random.Random, p: dict[str, Any], g: _Grid, kind: str) -> None:
    """Issue 14 item 5: on days of the heating season (October-April), a heat pump heats the house in a share of
    the homes (`SPACE_HEATING_SHARE`): a first-order house (5-20 kWh/K, 100-300 W/K, 0.5-2 m2 of effective
    glazing), an outdoor temperature with a daily swing (coldest at 05:00), comfort 20-23 C by day and a 17 C
    night setback 22:00-06:00, sized to hold 21 C at the coldest hour with 50 % spare; modulating in 60 %,
    else on/off with 30-60 min minimum run and 15-30 min minimum off. No cooling: where the sun would take the
    house above 23 C unheated, the band's top is raised to that temperature plus 0.5 K."""
    if g.day.month not in (10, 11, 12, 1, 2, 3, 4) or r.random() >= SPACE_HEATING_SHARE.get(kind, 0.0):
        return
    doy = g.day.timetuple().tm_yday
    mean = 9.0 - 8.0 * math.cos(2 * math.pi * (doy - 20) / 365) + r.uniform(-3, 3)
    swing = r.uniform(2.0, 5.0)
    hours = [g.hour(t) % 24 for t in range(g.slots)]
    outdoor = [round(mean - swing * math.cos(2 * math.pi * (h - 5.0) / 24), 2) for h in hours]
    sun = [round(max(0.0, 0.5 * r.uniform(0.4, 1.0) * math.sin(math.pi * (h - 8) / 9)) if 8 < h < 17 else 0.0, 3)
           for h in hours]
    C, H, glazing = round(r.uniform(5, 20), 2), round(r.uniform(0.1, 0.3), 3), round(r.uniform(0.5, 2.0), 2)
    cold = min(outdoor)
    cop_cold = _interp(COP_CURVE, cold)
    power = round(max(1.0, 1.5 * H * (21.0 - cold) / cop_cold), 2)
    night = [h >= 22 or h < 6 for h in hours]
    lo = [17.0 if x else 20.0 for x in night]
    hi = [23.0] * g.slots
    a = math.exp(-H * g.res / 60 / C)
    temp = 20.5
    for t in range(g.slots):  # unheated, the sun may take the house above the band: no cooling, raise the top
        temp = a * temp + (1 - a) * (outdoor[t] + glazing * sun[t] / H)
        hi[t] = round(max(hi[t], temp + 0.5), 2)
    modulating = r.random() < 0.6
    hp: dict[str, Any] = {
        "id": "hp-1", "device": "HP-1", "name": "Heat pump (heating)", "max_power_kw": power,
        "heat_capacity_kwh_per_k": C, "heat_loss_kw_per_k": H, "initial_indoor_c": 20.5,
        "outdoor_temperature_c": outdoor, "comfort_min_c": lo, "comfort_max_c": hi, "cop_curve": COP_CURVE,
        "solar_gain_factor_m2": glazing, "solar_irradiance_kw_per_m2": sun, "modulating": modulating}
    if not modulating:
        hp.update(min_run_min=r.choice([30, 45, 60]), min_off_min=r.choice([15, 30]))
    p["heat_pumps"] = [hp]


def _interp(curve: list[list[float]], x: float) -> float:
    if x <= curve[0][0]:
        return curve[0][1]
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return curve[-1][1]


def _circuits(r: random.Random, p: dict[str, Any]) -> None:
    """Issue 14 item 4: in about a third of the homes with two candidate devices, put two of them on one
    shared circuit: the EV charger beside the water heater or an appliance (a garage breaker), or two
    appliances on one phase. The limit lets the bigger one run alone at full power, not both at once."""
    names = list(dict.fromkeys([c["device"] for c in p["cycles"]] + [e["device"] for e in p["ev_sessions"]]
                               + [th["device"] for th in p["thermal_storages"]]
                               + [hp["device"] for hp in p.get("heat_pumps", [])]))
    if len(names) < 2 or r.random() >= 1 / 3:
        return
    pair = r.sample(names, 2)
    a, b = (_peak_kw(p, x) for x in pair)
    limit = round(max(a, b) + r.uniform(0.2, 0.8) * min(a, b), 3)
    p["circuits"] = [{"id": "circuit-1", "name": "Shared breaker", "limit_kw": limit, "devices": pair}]


def random_home(seed: int, kind: Optional[str] = None, force: tuple[str, ...] = ()) -> dict[str, Any]:
    """One household problem; `kind` defaults to `CLASSES[seed % len(CLASSES)]`; `force` names features of
    `_physics_features` to switch on wherever the home has the device (tests of one feature)."""
    kind = kind or CLASSES[seed % len(CLASSES)]
    if kind not in CLASSES:
        raise ValueError(f"kind: must be one of {', '.join(CLASSES)}")
    r = random.Random(f"{kind}:{seed}")
    day = r.choice(DST_DAYS) if r.random() < 1 / 6 else date(2026, 1, 1) + timedelta(days=r.randrange(365))
    res = r.choice([5, 15, 15, 60])
    hours = r.choice([24, 24, 30, 48] if res == 5 else [24, 24, 30, 48, 72])
    g = _Grid(day, hours, res)
    if kind == "many_cycles_4k6":
        limit = 4.6
    else:
        limit = r.choice([3.45, 4.6, 6.9, 6.9, 10.35, 13.8])
    # a tight connection goes with a small base load, or no appliance could ever run
    base_kva = limit * r.uniform(0.2, 0.35) if limit < 5 else min(limit, 6.9) * r.uniform(0.45, 0.8)
    ref = _reference_series()
    pu = ref["load_profile_per_unit_hourly"] if ref else _LOAD_PU
    co2h = ref["co2_g_per_kwh_hourly"] if ref else _CO2
    base = [round(pu[int(g.hour(t)) % 24] * base_kva * r.uniform(0.85, 1.15), 3) for t in range(g.slots)]
    want_pv = kind in ("battery", "full") or r.random() < 0.4
    kwp = round(r.uniform(1.5, min(8.0, limit)), 1) if want_pv else 0.0  # the inverter fits the connection
    tariff, price, export = _tariff(r, g, kwp)
    objective = r.choice(["economic", "economic", "economic", "ecologic", "mixed"])
    dnd = r.random() < 0.3
    p: dict[str, Any] = {
        "version": 1, "start": g.start.isoformat(), "resolution_min": res, "slots": g.slots, "timezone": TZ,
        "objective": {"kind": objective, **({"cost_weight": round(r.uniform(0.3, 0.8), 2)}
                                            if objective == "mixed" else {})},
        "site": {"import_limit_kw": limit, "export_limit_kw": limit, "import_price_eur_per_kwh": price,
                 "export_price_eur_per_kwh": export, "base_load_kw": base},
        "cycles": [], "ev_sessions": [], "batteries": [], "pv": [], "thermal_storages": [],
    }
    if objective != "economic" or r.random() < 0.5:
        p["site"]["co2_g_per_kwh"] = [round(co2h[int(g.hour(t)) % 24] * r.uniform(0.9, 1.1), 2)
                                      for t in range(g.slots)]
    if dnd:
        p["do_not_disturb"] = [{"start": g.iso(d, 22.0), "end": g.iso(d + 1, 7.0)} for d in range(g.days)
                               if g.at(d, 22.0) < g.end]
    if kind == "many_cycles_4k6":
        appliances = r.choice([["WM", "DW", "DR"], ["WM", "DW", "DR", "WM2"], ["WM", "DW", "WM2"]])
        p["cycles"] = _cycles(r, g, 8, appliances, dnd)
    else:
        count = {"appliances": r.randint(1, 4), "full": r.randint(1, 3)}.get(kind, r.randint(0, 2))
        appliances = r.choice([["WM"], ["WM", "DW"], ["WM", "DR"], ["DW", "DR"]])
        p["cycles"] = _cycles(r, g, count, appliances, dnd)
    if kind in ("ev", "full"):
        p["ev_sessions"] = [_ev(r, g, limit, max(base))]
    if kind in ("battery", "full"):
        p["batteries"] = [_battery(r)]
    if kind in ("thermal", "full"):
        p["thermal_storages"] = [_thermal(r, g)]
    if kwp:
        p["pv"] = [{"id": "pv-1", "device": "PV-1", "name": "Roof", "forecast_kw": _pv_series(r, g, kwp),
                    "curtailable": r.random() < 0.4}]
    physics = random.Random(f"{kind}:{seed}:physics")  # its own stream: the homes above stay as they were
    _v2g(physics, p)
    _space_heating(physics, p, g, kind)
    _circuits(physics, p)
    p["_meta"] = {"class": kind, "seed": seed, "day": day.isoformat(), "tariff": tariff}
    _physics_features(seed, kind, p, g, force)
    return p


def _physics_features(seed: int, kind: str, p: dict[str, Any], g: _Grid, force: tuple[str, ...] = ()) -> None:
    """Issue 14's features (items 1, 2, 6, 7) switched on in a realistic share of homes.

    Drawn from their own random stream, so every home keeps all it had before and only gains these.
    """
    r = random.Random(f"physics:{kind}:{seed}")
    horizon_h = g.slots * g.res / 60
    feats = p["_meta"].setdefault("features", [])
    if "off" in force:  # the home as it was before issue 14 (the benchmark's reference)
        return

    def draw(feature: str, share: float) -> bool:
        return r.random() < share or feature in force
    for b in p["batteries"]:  # a backup before a forecast storm in one battery out of four
        if draw("min_state", 0.25):
            h = r.uniform(4.0, horizon_h - 0.5)
            ini = b["capacity_kwh"] * b["initial_soc_pct"] / 100
            reach = ini + 0.5 * b["max_charge_kw"] * b["charge_efficiency"] * h
            b["min_energy_at"] = [{"at": g.iso(0, h), "energy_kwh": round(min(reach, r.uniform(0.6, 0.9)
                                                                                * b["capacity_kwh"]), 3)}]
            feats.append("min_state")
    for e in p["ev_sessions"]:  # a trip in the middle of the session in one EV out of five
        if draw("min_state", 0.2):
            arr, dep = datetime.fromisoformat(e["arrival"]), datetime.fromisoformat(e["departure"])
            need = e.get("energy_kwh")
            if need is None:
                need = (e["target_soc_pct"] - e["initial_soc_pct"]) / 100 * e["capacity_kwh"]
            at = arr + (dep - arr) * r.uniform(0.6, 0.9)
            e["min_energy_at"] = [{"at": at.isoformat(), "energy_kwh": round(0.4 * need, 3)}]
            feats.append("min_state")
    for b in p["batteries"]:  # battery wear: a price on throughput, a cycle cap, lithium's taper
        kw = b["max_charge_kw"]
        if draw("battery_wear", 0.4):
            b["wear_cost_eur_per_kwh"] = round(r.uniform(0.02, 0.08), 4)
            if r.random() < 0.5:
                b["max_cycles_per_day"] = r.choice([1.0, 1.5, 2.0])
            feats.append("battery_wear")
        if draw("battery_taper", 0.3):
            top = r.choice([80.0, 85.0, 90.0])
            b.update(charge_taper_above_soc_pct=top, charge_kw_at_full=round(kw * r.uniform(0.1, 0.3), 3),
                     discharge_taper_below_soc_pct=r.choice([10.0, 15.0]),
                     discharge_kw_at_empty=round(b["max_discharge_kw"] * r.uniform(0.2, 0.4), 3))
            for m in b.get("min_energy_at", []):  # the backup stays below the taper, where full power reaches it
                m["energy_kwh"] = round(min(m["energy_kwh"], top / 100 * b["capacity_kwh"]), 3)
            feats.append("battery_taper")
    if draw("capacity_charge", 0.2):  # a monthly capacity tariff (BE, NL): EUR per kW of the 15-min peak
        month = g.day.replace(day=1)
        nxt = (month + timedelta(days=32)).replace(day=1)
        zone = ZoneInfo(TZ)
        p["capacity_charges"] = [{
            "start": datetime(month.year, month.month, 1, tzinfo=zone).isoformat(),
            "end": datetime(nxt.year, nxt.month, 1, tzinfo=zone).isoformat(),
            "price_eur_per_kw": round(r.uniform(3.0, 5.0), 3), "window_min": 15,
            "peak_floor_kw": round(r.uniform(0.5, 0.8) * p["site"]["import_limit_kw"] * r.choice([0.0, 0.4, 0.7]), 3)}]
        feats.append("capacity_charge")
    prices = p["site"]["import_price_eur_per_kwh"]
    if "negative_prices" in force:  # a sunny day's negative midday hours, paid to import, paying to export
        for t in range(g.slots):
            if 11 <= g.hour(t) % 24 < 15:
                prices[t] = -round(r.uniform(0.005, 0.06), 4)
        p["site"]["export_price_eur_per_kwh"] = [round(0.8 * x, 4) for x in prices]
        for pv in p["pv"]:
            pv["curtailable"] = r.random() < 0.7
        feats.append("negative_prices")
    if p["pv"] and min(prices) < 0 and draw("negative_export", 0.5):  # spot-indexed export: paid to export, or paying
        p["site"]["export_price_eur_per_kwh"] = [round(0.8 * x, 4) for x in prices]
        feats.append("negative_export")


def strip_meta(p: dict[str, Any]) -> dict[str, Any]:
    """The problem without the generator's `_meta` entry (which the parser rejects as unknown)."""
    return {k: v for k, v in p.items() if k != "_meta"}


def random_homes(n: int, first_seed: int = 0, force: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """`n` homes, classes in turn: [(name, problem)], name = "<class>-<seed>"; `force` as for `random_home`
    ("off": without issue 14 items 1, 2, 6 and 7)."""
    out = []
    for i in range(first_seed, first_seed + n):
        kind = CLASSES[i % len(CLASSES)]
        out.append((f"{kind}-{i}", strip_meta(random_home(i, kind, force))))
    return out
