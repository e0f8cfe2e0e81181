"""Problem description: plain dataclasses (JSON in and out: `problem_io`).

Everything here is pure data. Powers are kW, energies kWh, prices EUR/kWh,
CO2 g/kWh, durations minutes, instants timezone-aware datetimes. Powers read
from JSON are quantized to 1 W (3 decimals of kW) so that the integer CP-SAT
model and the float MILP model describe exactly the same problem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

MAX_HORIZON_H = 72
RESOLUTIONS_MIN = (5, 15, 30, 60)


class ProblemError(ValueError):
    """A problem field is missing or invalid; the message starts with the field path."""


def q_kw(x: float) -> float:
    """Quantize a power to 1 W (the model's power resolution)."""
    return round(float(x), 3)


# --------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class TimeGrid:
    """Absolute time slots: slot t covers [start + t*res, start + (t+1)*res).

    Slots are absolute instants, so a local DST day simply has 92 or 100
    quarter-hours; use `for_local_day` to build one.
    """

    start: datetime
    resolution_min: int
    slots: int
    timezone: str = "UTC"

    @property
    def dt_h(self) -> float:
        return self.resolution_min / 60.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.resolution_min * self.slots)

    def slot_start(self, t: int) -> datetime:
        return self.start + timedelta(minutes=self.resolution_min * t)

    def offset_min(self, when: datetime) -> float:
        """Minutes from the grid start to `when` (absolute, DST-safe)."""
        return (when - self.start).total_seconds() / 60.0

    def local(self, when: datetime) -> datetime:
        return when.astimezone(ZoneInfo(self.timezone))

    @classmethod
    def for_local_day(cls, day: date, tz: str, resolution_min: int = 15) -> "TimeGrid":
        """Grid from local midnight to the next local midnight (92/96/100 quarter-hours)."""
        zone = ZoneInfo(tz)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        nxt = day + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
        minutes = (end.astimezone(timezone.utc) - start.astimezone(timezone.utc)).total_seconds() / 60
        return cls(start=start, resolution_min=resolution_min, slots=int(minutes // resolution_min), timezone=tz)


# ------------------------------------------------------------------------ devices
@dataclass(frozen=True)
class MinimumState:
    """A storage must hold at least `energy_kwh` at the instant `at` (backup before a storm, a trip).

    Batteries: stored energy. EV sessions: energy delivered into the car since arrival (the unit of the
    session's `energy_kwh`). Between slot boundaries the state is linear, so an instant inside a slot
    binds the boundaries on both sides; instants after the horizon end are left to a later plan.
    """

    at: datetime
    energy_kwh: float


@dataclass(frozen=True)
class Site:
    import_limit_kw: float
    export_limit_kw: float
    import_price_eur_per_kwh: tuple[float, ...]
    export_price_eur_per_kwh: tuple[float, ...]
    co2_g_per_kwh: tuple[float, ...]
    base_load_kw: tuple[float, ...]


@dataclass(frozen=True)
class Phase:
    duration_min: float
    power_w: float


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ShiftableCycle:
    """A non-interruptible appliance program (washer, dishwasher, dryer)."""

    id: str
    device: str
    name: str
    phases: tuple[Phase, ...]
    earliest_start: Optional[datetime] = None
    latest_end: Optional[datetime] = None
    scheduled_start: Optional[datetime] = None
    fixed_start: Optional[datetime] = None
    respect_do_not_disturb: bool = True
    late_penalty_eur_per_h: float = 0.0

    @property
    def duration_min(self) -> float:
        return sum(p.duration_min for p in self.phases)

    @property
    def energy_kwh(self) -> float:
        return sum(p.duration_min * p.power_w for p in self.phases) / 60_000.0


@dataclass(frozen=True)
class EVSession:
    """One EV plug-in: deliver `energy_kwh` (into the car) between arrival and departure."""

    id: str
    device: str
    name: str
    arrival: datetime
    departure: datetime
    energy_kwh: float
    min_power_kw: float = 0.0
    max_power_kw: float = 7.4
    current_steps_a: Optional[tuple[float, ...]] = None
    phases: int = 1
    voltage_v: float = 230.0
    efficiency: float = 1.0
    capacity_kwh: Optional[float] = None
    max_energy_kwh: Optional[float] = None
    # minimum state at a time (FORMAT.md "Minimum state at a time"): delivered kWh by an instant
    min_energy_at: tuple[MinimumState, ...] = ()
    # vehicle-to-home / vehicle-to-grid (issue 14 item 3): 0 kW = the car only charges
    max_discharge_kw: float = 0.0
    discharge_efficiency: float = 1.0  # car battery kWh -> AC kWh
    min_soc_pct: Optional[float] = None  # never below this while plugged in ("keep 40 % in case I must leave")
    export_allowed: bool = False  # False: discharge only covers the home's own consumption

    @property
    def v2g(self) -> bool:
        return self.max_discharge_kw > 0

    @property
    def floor_kwh(self) -> float:
        """The lowest delivered energy (kWh, <= 0) the car may reach while plugged in: its minimum SoC (or
        empty) relative to its SoC at arrival; 0 without V2G."""
        if not self.v2g or self.capacity_kwh is None or self.max_energy_kwh is None:
            return 0.0
        initial = self.capacity_kwh - self.max_energy_kwh
        return min(0.0, self.capacity_kwh * (self.min_soc_pct or 0.0) / 100.0 - initial)

    def power_levels_kw(self) -> Optional[tuple[float, ...]]:
        """Allowed non-zero powers when charging in discrete current steps, else None."""
        if not self.current_steps_a:
            return None
        levels = sorted({q_kw(a * self.voltage_v * self.phases / 1000.0) for a in self.current_steps_a})
        return tuple(x for x in levels if x <= self.max_power_kw + 1e-9 and x > 0)


@dataclass(frozen=True)
class Battery:
    id: str
    device: str
    name: str
    capacity_kwh: float
    initial_soc_pct: float
    min_soc_pct: float = 0.0
    final_soc_pct: Optional[float] = None
    max_charge_kw: float = 5.0
    max_discharge_kw: float = 5.0
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0
    # minimum state at a time (FORMAT.md "Minimum state at a time"): stored kWh at an instant
    min_energy_at: tuple[MinimumState, ...] = ()
    # battery wear (FORMAT.md "Battery wear and taper"): EUR per kWh charged or discharged, a cap on
    # full-equivalent cycles per local day, charge power tapering linearly above a SoC to `charge_kw_at_full`
    # at 100 %, discharge power tapering below a SoC to `discharge_kw_at_empty` at 0 %
    wear_cost_eur_per_kwh: float = 0.0
    max_cycles_per_day: Optional[float] = None
    charge_taper_above_soc_pct: Optional[float] = None
    charge_kw_at_full: float = 0.0
    discharge_taper_below_soc_pct: Optional[float] = None
    discharge_kw_at_empty: float = 0.0

    def charge_limit_kw(self, soc_kwh: float) -> float:
        """The highest charge power at a stored energy (the taper above its SoC, else the rating)."""
        if self.charge_taper_above_soc_pct is None:
            return self.max_charge_kw
        s0 = self.capacity_kwh * self.charge_taper_above_soc_pct / 100.0
        slope = (self.max_charge_kw - self.charge_kw_at_full) / (self.capacity_kwh - s0)
        return min(self.max_charge_kw, self.charge_kw_at_full + slope * (self.capacity_kwh - soc_kwh))

    def discharge_limit_kw(self, soc_kwh: float) -> float:
        """The highest discharge power at a stored energy (the taper below its SoC, else the rating)."""
        if self.discharge_taper_below_soc_pct is None:
            return self.max_discharge_kw
        s1 = self.capacity_kwh * self.discharge_taper_below_soc_pct / 100.0
        slope = (self.max_discharge_kw - self.discharge_kw_at_empty) / s1
        return min(self.max_discharge_kw, self.discharge_kw_at_empty + slope * soc_kwh)

    @property
    def initial_kwh(self) -> float:
        return self.capacity_kwh * self.initial_soc_pct / 100.0

    @property
    def min_kwh(self) -> float:
        return self.capacity_kwh * self.min_soc_pct / 100.0

    @property
    def final_kwh(self) -> Optional[float]:
        return None if self.final_soc_pct is None else self.capacity_kwh * self.final_soc_pct / 100.0


@dataclass(frozen=True)
class PV:
    id: str
    device: str
    name: str
    forecast_kw: tuple[float, ...]
    curtailable: bool = False


@dataclass(frozen=True)
class ThermalStorage:
    """Water heater / heat pump with a store: energy in kWh thermal, power in kW electric."""

    id: str
    device: str
    name: str
    electric_power_kw: float
    heat_demand_kw: tuple[float, ...]
    modulating: bool = False
    cop: float = 1.0
    min_energy_kwh: float = 0.0
    max_energy_kwh: float = 10.0
    initial_energy_kwh: float = 0.0
    final_energy_kwh: Optional[float] = None
    standing_loss_kw: float = 0.0


@dataclass(frozen=True)
class GridRequest:
    """Per-slot bounds on net import (kW) from a system-operator activation."""

    min_net_import_kw: tuple[Optional[float], ...]
    max_net_import_kw: tuple[Optional[float], ...]
    penalty_eur_per_kwh: Optional[float] = None  # None = hard


@dataclass(frozen=True)
class CapacityCharge:
    """A capacity (demand) charge: `price_eur_per_kw` on the highest average import over `window_min` in the
    billing period [start, end); `peak_floor_kw` is the peak already reached in the period (the horizon may
    be shorter than the period: the plan pays only for raising the peak above it)."""

    start: datetime
    end: datetime
    price_eur_per_kw: float
    window_min: int = 15
    peak_floor_kw: float = 0.0


@dataclass(frozen=True)
class Objective:
    kind: str = "economic"  # economic | ecologic | mixed
    cost_weight: float = 0.5
    early_finish_eur_per_slot: float = 1e-6


@dataclass(frozen=True)
class Problem:
    grid: TimeGrid
    site: Site
    objective: Objective = field(default_factory=Objective)
    cycles: tuple[ShiftableCycle, ...] = ()
    ev_sessions: tuple[EVSession, ...] = ()
    batteries: tuple[Battery, ...] = ()
    pv: tuple[PV, ...] = ()
    thermal_storages: tuple[ThermalStorage, ...] = ()
    grid_request: Optional[GridRequest] = None
    do_not_disturb: tuple[Interval, ...] = ()
    # capacity (demand) charges of the billing periods the horizon overlaps (FORMAT.md "Capacity charge")
    capacity_charges: tuple[CapacityCharge, ...] = ()
    circuits: tuple["Circuit", ...] = ()  # issue 14 item 4, see `Circuit`
    heat_pumps: tuple["SpaceHeating", ...] = ()  # issue 14 item 5, see `SpaceHeating`

    def device_ids(self) -> list[str]:
        return [d.id for group in (self.cycles, self.ev_sessions, self.batteries, self.pv, self.thermal_storages,
                                   self.heat_pumps) for d in group]


# ------------------------------------------------------------ shared circuits (issue 14, item 4)
@dataclass(frozen=True)
class Circuit:
    """A breaker or phase shared by named devices (their `device` field): the sum of their powers
    (consumption positive; battery / V2G discharge and PV negative) stays within +-limit_kw in every
    slot, beside the site's import and export limits."""

    id: str
    name: str
    limit_kw: float
    devices: tuple[str, ...]


# ------------------------------------------------------- space heating heat pump (issue 14, item 5)
@dataclass(frozen=True)
class SpaceHeating:
    """A heat pump heating the house, with a first-order thermal model of the building.

    Indoor temperature after slot t (exact for inputs constant over the slot):
    T[t+1] = a T[t] + (1 - a) (T_out[t] + (cop[t] P[t] + solar_gain_factor_m2 I[t]) / heat_loss_kw_per_k),
    a = exp(-heat_loss_kw_per_k dt / heat_capacity_kwh_per_k); comfort_min_c[t] <= T[t+1] <= comfort_max_c[t].
    P[t] is the electric power: in [0, max_power_kw] when modulating, else 0 or max_power_kw with minimum run
    and off times (the pump is taken as off, and off long enough, before the horizon).
    """

    id: str
    device: str
    name: str
    max_power_kw: float
    heat_capacity_kwh_per_k: float
    heat_loss_kw_per_k: float
    initial_indoor_c: float
    outdoor_temperature_c: tuple[float, ...]
    comfort_min_c: tuple[float, ...]
    comfort_max_c: tuple[float, ...]
    cop_curve: tuple[tuple[float, float], ...]  # (outdoor_c, cop) points, linear between, flat outside
    solar_gain_factor_m2: float = 0.0
    solar_irradiance_kw_per_m2: Optional[tuple[float, ...]] = None
    modulating: bool = True
    min_run_min: float = 0.0
    min_off_min: float = 0.0

    def cop_at(self, outdoor_c: float) -> float:
        pts = sorted(self.cop_curve)
        if outdoor_c <= pts[0][0]:
            return pts[0][1]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if outdoor_c <= x1:
                return y0 + (y1 - y0) * (outdoor_c - x0) / (x1 - x0) if x1 > x0 else y1
        return pts[-1][1]

    def decay(self, dt_h: float) -> float:
        """a = exp(-H dt / C): the share of the indoor-outdoor difference left after one slot."""
        return math.exp(-self.heat_loss_kw_per_k * dt_h / self.heat_capacity_kwh_per_k)

    def drift_c(self, t: int, dt_h: float) -> float:
        """(1 - a) (T_out + solar gain / H): where slot t takes the house without heating."""
        solar = self.solar_gain_factor_m2 * (self.solar_irradiance_kw_per_m2[t] if self.solar_irradiance_kw_per_m2
                                             else 0.0)
        return (1 - self.decay(dt_h)) * (self.outdoor_temperature_c[t] + solar / self.heat_loss_kw_per_k)

    def gain_c_per_kw(self, t: int, dt_h: float) -> float:
        """(1 - a) cop[t] / H: indoor degrees gained by the end of slot t per kW electric."""
        return (1 - self.decay(dt_h)) * self.cop_at(self.outdoor_temperature_c[t]) / self.heat_loss_kw_per_k

    def run_slots(self, res_min: int) -> tuple[int, int]:
        """Minimum run and off times in whole slots (rounded up)."""
        return (max(1, math.ceil(self.min_run_min / res_min - 1e-9)), max(1, math.ceil(self.min_off_min / res_min - 1e-9)))
