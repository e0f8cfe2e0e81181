"""Optimizer problem fixtures (the benchmark and test homes), built from the FlexiHome reference data as JSON problems.

Every home is a dict in the optimizer's JSON contract (flexibility/optimizer/README.md),
so building one also exercises the parser. Prices, load shape and CO2 come from
`../shared/reference/flexihome-default-data.json` (relative to the repo root;
override with FLEXIHOME_REFERENCE). Slots map to local wall-clock time, so
DST days get the right number of slots and the right tariff period.

Homes:
- standard: 96 x 15 min, 6.9 kVA, washer (2 programs), dishwasher, dryer, EV (6-32 A steps),
  10 kWh battery, 3 kWp PV, Portuguese tri-hourly prices.
- battery_only: 96 x 15 min, base load + PV + 10 kWh battery: a pure LP.
- many_cycles: 96 x 15 min, 8 cycles on 3 appliances, 4.6 kVA, no PV/battery (the hard case).
- thermal: 96 x 15 min, 2 kW on/off water heater (COP 1) + 3 kWp PV, shower draws.
- stress: 576 x 5 min (48 h), 6 cycles, EV, battery, PV.
"""
from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

from .reference import EASY_CARE, reference

TZ = "Europe/Lisbon"
DAY = date(2026, 11, 24)

WASH_ANTISTAIN = "Hotpoint_FabricCare_WPR4LLLG8NWD4/WashCycleAntiStain-13"
WASH_WOOL = "Hotpoint_FabricCare_WPR4LLLG8NWD4/WashCycleWool-7"
WASH_WHITES = "Hotpoint_FabricCare_WPR4LLLG8NWD4/WashCycleWhites-33"


class Day:
    """Per-slot series for a grid starting at local midnight of `day`."""

    def __init__(self, day: date = DAY, resolution_min: int = 15, days: int = 1, tz: str = TZ):
        self.zone = ZoneInfo(tz)
        self.tz = tz
        self.start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        end_day = day + timedelta(days=days)
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=self.zone)
        minutes = (end.astimezone(timezone.utc) - self.start.astimezone(timezone.utc)).total_seconds() / 60
        self.res = resolution_min
        self.slots = int(minutes // resolution_min)
        self.day = day
        self.start_utc = self.start.astimezone(timezone.utc)

    def instant(self, t: int) -> datetime:
        return (self.start_utc + timedelta(minutes=self.res * t)).astimezone(self.zone)

    def local(self, day_offset: int, hh_mm: str) -> str:
        h, m = (int(x) for x in hh_mm.split(":"))
        d = self.day + timedelta(days=day_offset)
        return datetime(d.year, d.month, d.day, h, m, tzinfo=self.zone).isoformat()

    def hour_of(self, t: int) -> float:
        x = self.instant(t)
        return x.hour + x.minute / 60

    def import_price(self) -> list[float]:
        p = reference()["import_price_eur_per_kwh_15min"]
        return [p[int(self.hour_of(t) * 4) % 96] for t in range(self.slots)]

    def co2(self) -> list[float]:
        c = reference()["co2_g_per_kwh_hourly"]
        return [round(c[int(self.hour_of(t)) % 24], 3) for t in range(self.slots)]

    def base_load(self, kva: float = 6.9) -> list[float]:
        pu = reference()["load_profile_per_unit_hourly"]
        return [round(pu[int(self.hour_of(t)) % 24] * kva, 3) for t in range(self.slots)]

    def pv(self, kwp: float, sunrise: float = 7.5, sunset: float = 17.5) -> list[float]:
        out = []
        for t in range(self.slots):
            h = self.hour_of(t) + self.res / 120  # slot middle
            x = (h - sunrise) / (sunset - sunrise)
            out.append(round(kwp * math.sin(math.pi * x) ** 1.5, 3) if 0 < x < 1 else 0.0)
        return out

    def problem(self, import_limit_kw: float = 6.9, export_limit_kw: Optional[float] = None,
                export_price: float = 0.0, base_kva: float = 6.9) -> dict[str, Any]:
        return {
            "version": 1, "start": self.start.isoformat(), "resolution_min": self.res, "slots": self.slots,
            "timezone": self.tz, "objective": {"kind": "economic", "early_finish_eur_per_slot": 1e-6},
            "site": {"import_limit_kw": import_limit_kw,
                     "export_limit_kw": import_limit_kw if export_limit_kw is None else export_limit_kw,
                     "import_price_eur_per_kwh": self.import_price(),
                     "export_price_eur_per_kwh": [export_price] * self.slots,
                     "co2_g_per_kwh": self.co2(), "base_load_kw": self.base_load(base_kva)},
            "do_not_disturb": [], "cycles": [], "ev_sessions": [], "batteries": [], "pv": [],
            "thermal_storages": [], "grid_request": None,
        }

    def cycle(self, cid: str, device: str, program: str, day_offset: int = 0, earliest: Optional[str] = None,
              latest: Optional[str] = None, scheduled: Optional[str] = None) -> dict[str, Any]:
        ref = reference()["appliance_cycles"][program]
        phases = sorted(ref["phases"], key=lambda p: p["order"])
        return {
            "id": cid, "device": device, "name": f"{device} {program.split('/')[-1]}",
            "phases": [{"duration_min": p["duration_min"], "power_w": p["max_power_w"]} for p in phases],
            "earliest_start": self.local(day_offset, earliest or ref["earliest_start"]),
            "latest_end": self.local(day_offset, latest or ref["latest_end"]),
            "scheduled_start": self.local(day_offset, scheduled or ref["scheduled_start"]),
            "fixed_start": None, "respect_do_not_disturb": True,
        }


def battery(bid: str = "bat-1", capacity: float = 10.0, soc: float = 50.0, final: Optional[float] = 50.0,
            kw: float = 5.0) -> dict[str, Any]:
    return {"id": bid, "device": "BAT-1", "name": "Home battery", "capacity_kwh": capacity, "initial_soc_pct": soc,
            "min_soc_pct": 10.0, "final_soc_pct": final, "max_charge_kw": kw, "max_discharge_kw": kw,
            "charge_efficiency": 0.95, "discharge_efficiency": 0.95}


def ev(d: Day, arrival: str, departure: str, energy_kwh: float = 20.0, dep_day: int = 0, eid: str = "ev-1",
       steps: bool = True) -> dict[str, Any]:
    return {"id": eid, "device": "EVC-1", "name": "Car", "arrival": arrival,
            "departure": d.local(dep_day, departure) if ":" in departure and len(departure) == 5 else departure,
            "energy_kwh": energy_kwh, "min_power_kw": 1.38, "max_power_kw": 7.4,
            "current_steps_a": [6, 8, 10, 13, 16, 20, 25, 32] if steps else None, "phases": 1, "voltage_v": 230,
            "efficiency": 0.95}


def standard_home(day: date = DAY, resolution_min: int = 15) -> dict[str, Any]:
    d = Day(day, resolution_min)
    p = d.problem(import_limit_kw=6.9, export_price=0.04)
    p["cycles"] = [
        d.cycle("wm-antistain", "WM-1", WASH_ANTISTAIN),
        d.cycle("wm-wool", "WM-1", WASH_WOOL),
        d.cycle("dw-eco", "DW-1", EASY_CARE, scheduled="20:00"),
        d.cycle("dr-whites", "DR-1", WASH_WHITES),
    ]
    p["ev_sessions"] = [ev(d, d.start.isoformat(), "07:30", 20.0)]
    p["batteries"] = [battery()]
    p["pv"] = [{"id": "pv-1", "device": "PV-1", "name": "Roof", "forecast_kw": d.pv(3.0), "curtailable": False}]
    return p


def battery_only_home(day: date = DAY) -> dict[str, Any]:
    d = Day(day, 15)
    p = d.problem(import_limit_kw=6.9, export_price=0.04)
    p["batteries"] = [battery()]
    p["pv"] = [{"id": "pv-1", "device": "PV-1", "name": "Roof", "forecast_kw": d.pv(3.0), "curtailable": False}]
    return p


def many_cycles_home(day: date = DAY) -> dict[str, Any]:
    d = Day(day, 15)
    p = d.problem(import_limit_kw=4.6, base_kva=4.6)
    p["cycles"] = [
        d.cycle("wm-antistain", "WM-1", WASH_ANTISTAIN),
        d.cycle("wm-wool", "WM-1", WASH_WOOL),
        d.cycle("wm-whites", "WM-1", WASH_WHITES),
        d.cycle("wm-easy", "WM-1", EASY_CARE),
        d.cycle("dw-1", "DW-1", EASY_CARE, scheduled="13:00"),
        d.cycle("dw-2", "DW-1", EASY_CARE, scheduled="21:00"),
        d.cycle("dr-1", "DR-1", WASH_WHITES, scheduled="12:00"),
        d.cycle("dr-2", "DR-1", WASH_WHITES, scheduled="18:00"),
    ]
    return p


def thermal_home(day: date = DAY) -> dict[str, Any]:
    d = Day(day, 15)
    p = d.problem(import_limit_kw=6.9, export_price=0.04)
    demand = []
    for t in range(d.slots):
        h = d.hour_of(t)
        demand.append(3.0 if 7.0 <= h < 7.5 or 20.0 <= h < 20.75 else 0.1)
    p["thermal_storages"] = [{
        "id": "wh-1", "device": "WH-1", "name": "Water heater", "electric_power_kw": 2.0, "modulating": False,
        "cop": 1.0, "min_energy_kwh": 1.0, "max_energy_kwh": 8.0, "initial_energy_kwh": 5.0,
        "final_energy_kwh": 5.0, "standing_loss_kw": 0.05, "heat_demand_kw": demand}]
    p["pv"] = [{"id": "pv-1", "device": "PV-1", "name": "Roof", "forecast_kw": d.pv(3.0), "curtailable": True}]
    return p


def stress_home(day: date = DAY) -> dict[str, Any]:
    d = Day(day, 5, days=2)
    p = d.problem(import_limit_kw=6.9, export_price=0.04)
    p["cycles"] = [
        d.cycle("wm-antistain", "WM-1", WASH_ANTISTAIN),
        d.cycle("wm-wool", "WM-1", WASH_WOOL, day_offset=1),
        d.cycle("dw-1", "DW-1", EASY_CARE, scheduled="20:00"),
        d.cycle("dw-2", "DW-1", EASY_CARE, day_offset=1, scheduled="20:00"),
        d.cycle("dr-1", "DR-1", WASH_WHITES),
        d.cycle("dr-2", "DR-1", WASH_WHITES, day_offset=1),
    ]
    p["ev_sessions"] = [ev(d, d.local(0, "18:30"), "07:30", 25.0, dep_day=1)]
    p["batteries"] = [battery()]
    p["pv"] = [{"id": "pv-1", "device": "PV-1", "name": "Roof", "forecast_kw": d.pv(3.0), "curtailable": False}]
    return p


HOMES = {
    "standard": standard_home,
    "battery_only": battery_only_home,
    "many_cycles": many_cycles_home,
    "thermal": thermal_home,
    "stress": stress_home,
}


def write_json(directory: Path) -> None:
    """Write every home as <name>.json (for the CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, make in HOMES.items():
        (directory / f"{name}.json").write_text(json.dumps(make(), indent=1))
