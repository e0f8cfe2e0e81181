"""JSON in and out for the problem dataclasses, with errors that name the field.

Unknown keys are refused with their path (a misspelt key must not silently drop a device), optional
fields really are optional, and powers are quantized to 1 W as `problem` documents.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .problem import (MAX_HORIZON_H, PV, RESOLUTIONS_MIN, Battery, CapacityCharge, Circuit, EVSession, GridRequest,
                      Interval, MinimumState, Objective, Phase, Problem, ProblemError, ShiftableCycle, Site, SpaceHeating,
                      ThermalStorage, TimeGrid, q_kw)

# ------------------------------------------------------------------------ parsing
_MISSING = object()
MIN_PHASE_POWER_W = 10.0  # a non-zero appliance phase below this is a kW value in a W field

# Every key each object of the contract may carry (FORMAT.md); anything else is a typo that would
# otherwise silently drop a device or a requirement.
FIELDS: dict[str, frozenset[str]] = {
    "problem": frozenset({"version", "start", "resolution_min", "slots", "end", "timezone", "objective", "site",
                          "do_not_disturb", "cycles", "ev_sessions", "batteries", "pv", "thermal_storages",
                          "grid_request", "circuits", "heat_pumps"}),
    "objective": frozenset({"kind", "cost_weight", "early_finish_eur_per_slot"}),
    "site": frozenset({"import_limit_kw", "export_limit_kw", "import_price_eur_per_kwh", "export_price_eur_per_kwh",
                       "co2_g_per_kwh", "base_load_kw"}),
    "interval": frozenset({"start", "end"}),
    "cycle": frozenset({"id", "device", "name", "phases", "earliest_start", "latest_end", "scheduled_start",
                        "fixed_start", "respect_do_not_disturb", "late_penalty_eur_per_h"}),
    "phase": frozenset({"duration_min", "power_w", "expected_power_w", "max_power_w", "order"}),
    "ev": frozenset({"id", "device", "name", "arrival", "departure", "energy_kwh", "target_soc_pct", "capacity_kwh",
                     "initial_soc_pct", "min_power_kw", "max_power_kw", "current_steps_a", "phases", "voltage_v",
                     "efficiency", "max_discharge_kw", "discharge_efficiency", "min_soc_pct", "export_allowed"}),
    "battery": frozenset({"id", "device", "name", "capacity_kwh", "initial_soc_pct", "min_soc_pct", "final_soc_pct",
                          "max_charge_kw", "max_discharge_kw", "charge_efficiency", "discharge_efficiency"}),
    "pv": frozenset({"id", "device", "name", "forecast_kw", "curtailable"}),
    "thermal": frozenset({"id", "device", "name", "electric_power_kw", "modulating", "cop", "min_energy_kwh",
                          "max_energy_kwh", "initial_energy_kwh", "final_energy_kwh", "standing_loss_kw",
                          "heat_demand_kw"}),
    "grid_request": frozenset({"min_net_import_kw", "max_net_import_kw", "penalty_eur_per_kwh"}),
    # minimum state at a time (batteries and EV sessions)
    "min_state": frozenset({"at", "energy_kwh"}),
    "circuit": frozenset({"id", "name", "limit_kw", "devices"}),
    "heat_pump": frozenset({"id", "device", "name", "max_power_kw", "heat_capacity_kwh_per_k", "heat_loss_kw_per_k",
                            "initial_indoor_c", "outdoor_temperature_c", "comfort_min_c", "comfort_max_c", "cop_curve",
                            "solar_gain_factor_m2", "solar_irradiance_kw_per_m2", "modulating", "min_run_min",
                            "min_off_min"}),
}
FIELDS["ev"] |= {"min_energy_at"}
FIELDS["battery"] |= {"min_energy_at"}
FIELDS["problem"] |= {"capacity_charges"}
FIELDS["capacity_charge"] = frozenset({"start", "end", "price_eur_per_kw", "window_min", "peak_floor_kw"})
FIELDS["battery"] |= {"wear_cost_eur_per_kwh", "max_cycles_per_day", "charge_taper_above_soc_pct", "charge_kw_at_full",
                      "discharge_taper_below_soc_pct", "discharge_kw_at_empty"}


class _Reader:
    """Reads one JSON object, raising ProblemError with the field path on any defect (unknown keys included)."""

    def __init__(self, data: Any, path: str, kind: str):
        if not isinstance(data, dict):
            raise ProblemError(f"{path or 'problem'}: must be an object")
        self.d = data
        self.path = path
        allowed = FIELDS[kind]
        for key in data:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
                raise ProblemError(f"{self.p(str(key))}: unknown field" + (f", did you mean {near[0]}" if near else ""))

    def p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = _MISSING) -> Any:
        if key not in self.d or (self.d[key] is None and default is not _MISSING):
            if default is _MISSING:
                raise ProblemError(f"{self.p(key)}: required")
            return default
        return self.d[key]

    def num(self, key: str, default: Any = _MISSING, lo: Optional[float] = None, hi: Optional[float] = None,
            lo_open: bool = False) -> Any:
        v = self.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ProblemError(f"{self.p(key)}: must be a finite number")
        if lo is not None and (v < lo or (lo_open and v <= lo)):
            raise ProblemError(f"{self.p(key)}: must be {'>' if lo_open else '>='} {lo}")
        if hi is not None and v > hi:
            raise ProblemError(f"{self.p(key)}: must be <= {hi}")
        return float(v)

    def string(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default)
        if v is not None and not isinstance(v, str):
            raise ProblemError(f"{self.p(key)}: must be a string")
        return v

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise ProblemError(f"{self.p(key)}: must be true or false")
        return v

    def instant(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default)
        if v is None:
            return None
        return parse_instant(v, self.p(key))

    def series(self, key: str, n: int, default: Any = _MISSING, nullable: bool = False, lo: Optional[float] = None,
               quantize: bool = False) -> Any:
        if self.d.get(key) is None and default is not _MISSING:
            return default  # an optional series left out (or null): its documented default
        v = self.get(key)
        if not isinstance(v, list):
            raise ProblemError(f"{self.p(key)}: must be a list of {n} numbers")
        if len(v) != n:
            raise ProblemError(f"{self.p(key)}: must have {n} values (one per slot), got {len(v)}")
        if v and not nullable and all(type(x) is float or type(x) is int for x in v) and math.isfinite(sum(v)) \
                and (lo is None or min(v) >= lo):
            return tuple(map(q_kw, v)) if quantize else tuple(map(float, v))  # the common case, checked at once
        out = []
        for i, x in enumerate(v):
            if x is None and nullable:
                out.append(None)
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ProblemError(f"{self.p(key)}[{i}]: must be a finite number")
            if lo is not None and x < lo:
                raise ProblemError(f"{self.p(key)}[{i}]: must be >= {lo}")
            out.append(q_kw(x) if quantize else float(x))
        return tuple(out)

    def objects(self, key: str, kind: str) -> list["_Reader"]:
        v = self.get(key, [])
        if not isinstance(v, list):
            raise ProblemError(f"{self.p(key)}: must be a list")
        return [_Reader(x, f"{self.p(key)}[{i}]", kind) for i, x in enumerate(v)]


def parse_instant(v: Any, path: str) -> datetime:
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ProblemError(f"{path}: not an ISO 8601 instant: {v!r}") from None
    else:
        raise ProblemError(f"{path}: must be an ISO 8601 string with offset")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ProblemError(f"{path}: needs a UTC offset (naive times are ambiguous)")
    return dt


def problem_from_dict(d: Any) -> Problem:
    """Build and validate a Problem from the JSON contract (see README.md)."""
    r = _Reader(d, "", "problem")
    version = r.get("version", 1)
    if version != 1:
        raise ProblemError(f"version: unsupported version {version!r} (expected 1)")
    start = r.instant("start")
    res = r.get("resolution_min")
    if res not in RESOLUTIONS_MIN or isinstance(res, bool):
        raise ProblemError(f"resolution_min: must be one of {list(RESOLUTIONS_MIN)}")
    tz = r.string("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProblemError(f"timezone: unknown IANA zone {tz!r}") from None
    if "slots" in r.d and r.d["slots"] is not None:
        slots = r.get("slots")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ProblemError("slots: must be a positive integer")
    elif "end" in r.d:
        end = r.instant("end")
        minutes = (end - start).total_seconds() / 60
        if minutes <= 0 or abs(minutes / res - round(minutes / res)) > 1e-9:
            raise ProblemError("end: must be after start by a whole number of slots")
        slots = int(round(minutes / res))
    else:
        raise ProblemError("slots: required (or give end)")
    if slots * res > MAX_HORIZON_H * 60:
        raise ProblemError(f"slots: horizon {slots * res / 60:.2f} h exceeds {MAX_HORIZON_H} h")
    grid = TimeGrid(start=start, resolution_min=res, slots=slots, timezone=tz)
    n = slots

    o = _Reader(r.get("objective", {}), "objective", "objective")
    kind = o.string("kind", "economic")
    if kind not in ("economic", "ecologic", "mixed"):
        raise ProblemError("objective.kind: must be economic, ecologic or mixed")
    objective = Objective(kind=kind, cost_weight=o.num("cost_weight", 0.5, lo=0, hi=1),
                          early_finish_eur_per_slot=o.num("early_finish_eur_per_slot", 1e-6, lo=0))

    s = _Reader(r.get("site"), "site", "site")
    site = Site(
        import_limit_kw=q_kw(s.num("import_limit_kw", lo=0)),
        export_limit_kw=q_kw(s.num("export_limit_kw", s.d.get("import_limit_kw"), lo=0)),
        import_price_eur_per_kwh=s.series("import_price_eur_per_kwh", n),
        export_price_eur_per_kwh=s.series("export_price_eur_per_kwh", n, (0.0,) * n),
        co2_g_per_kwh=s.series("co2_g_per_kwh", n, (0.0,) * n, lo=0),
        base_load_kw=s.series("base_load_kw", n, (0.0,) * n, quantize=True),
    )

    dnd = []
    for i, x in enumerate(r.objects("do_not_disturb", "interval")):
        a, b = x.instant("start"), x.instant("end")
        if b <= a:
            raise ProblemError(f"do_not_disturb[{i}].end: must be after start")
        dnd.append(Interval(a, b))

    ids: set[str] = set()

    def ident(x: _Reader, kind_prefix: str, i: int) -> tuple[str, str, str]:
        did = x.string("id")
        if not did:
            raise ProblemError(f"{x.p('id')}: must be a non-empty string")
        if did in ids:
            raise ProblemError(f"{x.p('id')}: duplicate id {did!r}")
        ids.add(did)
        return did, x.string("device", did), x.string("name", did)

    cycles = []
    for i, x in enumerate(r.objects("cycles", "cycle")):
        cid, dev, name = ident(x, "cycle", i)
        ph_raw = x.get("phases")
        if not isinstance(ph_raw, list) or not ph_raw:
            raise ProblemError(f"{x.p('phases')}: must be a non-empty list")
        phases_r = [_Reader(p, f"{x.p('phases')}[{j}]", "phase") for j, p in enumerate(ph_raw)]
        if all("order" in p.d for p in phases_r):
            phases_r.sort(key=lambda p: p.d["order"])
        phases = []
        for p in phases_r:
            dur = p.num("duration_min", lo=0, lo_open=True)
            for key in ("power_w", "expected_power_w", "max_power_w"):
                if p.d.get(key) is not None:
                    pw = p.num(key, lo=0)
                    if 0 < pw < MIN_PHASE_POWER_W:
                        raise ProblemError(f"{p.p(key)}: {pw:g} W is below {MIN_PHASE_POWER_W:g} W; powers here are "
                                           f"in watts (W), not kilowatts (kW): {pw:g} kW is {pw * 1000:g} W")
                    break
            else:
                raise ProblemError(f"{p.p('power_w')}: required")
            phases.append(Phase(dur, pw))
        es, le = x.instant("earliest_start", None), x.instant("latest_end", None)
        if es is not None and le is not None and le <= es:
            raise ProblemError(f"{x.p('latest_end')}: must be after earliest_start")
        cycles.append(ShiftableCycle(
            id=cid, device=dev, name=name, phases=tuple(phases), earliest_start=es, latest_end=le,
            scheduled_start=x.instant("scheduled_start", None), fixed_start=x.instant("fixed_start", None),
            respect_do_not_disturb=x.boolean("respect_do_not_disturb", True),
            late_penalty_eur_per_h=x.num("late_penalty_eur_per_h", 0.0, lo=0)))

    evs = []
    for i, x in enumerate(r.objects("ev_sessions", "ev")):
        eid, dev, name = ident(x, "ev", i)
        arr, dep = x.instant("arrival"), x.instant("departure")
        if dep <= arr:
            raise ProblemError(f"{x.p('departure')}: must be after arrival")
        cap = x.num("capacity_kwh", None, lo=0, lo_open=True)
        if x.d.get("energy_kwh") is not None:
            energy = x.num("energy_kwh", lo=0)
        elif x.d.get("target_soc_pct") is not None:
            if cap is None:
                raise ProblemError(f"{x.p('capacity_kwh')}: required with target_soc_pct")
            tgt = x.num("target_soc_pct", lo=0, hi=100)
            ini = x.num("initial_soc_pct", 0.0, lo=0, hi=100)
            energy = max(0.0, (tgt - ini) / 100.0 * cap)
        else:
            raise ProblemError(f"{x.p('energy_kwh')}: required (or target_soc_pct with capacity_kwh)")
        max_energy = None
        if cap is not None:
            ini = x.num("initial_soc_pct", 0.0, lo=0, hi=100)
            max_energy = (100.0 - ini) / 100.0 * cap
        mn = q_kw(x.num("min_power_kw", 0.0, lo=0))
        mx = q_kw(x.num("max_power_kw", lo=0, lo_open=True))
        if mn > mx:
            raise ProblemError(f"{x.p('min_power_kw')}: must be <= max_power_kw")
        steps = x.get("current_steps_a", None)
        if steps is not None:
            if not isinstance(steps, list) or not steps or not all(
                    isinstance(a, (int, float)) and not isinstance(a, bool) and a > 0 for a in steps):
                raise ProblemError(f"{x.p('current_steps_a')}: must be a non-empty list of positive currents (A)")
            steps = tuple(float(a) for a in steps)
        phases = x.get("phases", 1)
        if phases not in (1, 3):
            raise ProblemError(f"{x.p('phases')}: must be 1 or 3")
        ev = EVSession(id=eid, device=dev, name=name, arrival=arr, departure=dep, energy_kwh=energy,
                       min_power_kw=mn, max_power_kw=mx, current_steps_a=steps, phases=phases,
                       voltage_v=x.num("voltage_v", 230.0, lo=0, lo_open=True),
                       efficiency=x.num("efficiency", 1.0, lo=0, hi=1, lo_open=True),
                       capacity_kwh=cap, max_energy_kwh=max_energy,
                       min_energy_at=_min_states(x, max_energy), **_v2g(x, cap))
        if steps is not None and not ev.power_levels_kw():
            raise ProblemError(f"{x.p('current_steps_a')}: no step fits under max_power_kw")
        evs.append(ev)

    bats = []
    for i, x in enumerate(r.objects("batteries", "battery")):
        bid, dev, name = ident(x, "battery", i)
        cap = x.num("capacity_kwh", lo=0, lo_open=True)
        mn = x.num("min_soc_pct", 0.0, lo=0, hi=100)
        ini = x.num("initial_soc_pct", lo=0, hi=100)
        fin = x.num("final_soc_pct", None, lo=0, hi=100)
        bats.append(Battery(id=bid, device=dev, name=name, capacity_kwh=cap, initial_soc_pct=ini, min_soc_pct=mn,
                            final_soc_pct=fin, max_charge_kw=q_kw(x.num("max_charge_kw", lo=0)),
                            max_discharge_kw=q_kw(x.num("max_discharge_kw", lo=0)),
                            charge_efficiency=x.num("charge_efficiency", 1.0, lo=0, hi=1, lo_open=True),
                            discharge_efficiency=x.num("discharge_efficiency", 1.0, lo=0, hi=1, lo_open=True),
                            min_energy_at=_min_states(x, cap), **_battery_wear(x)))

    pvs = []
    for i, x in enumerate(r.objects("pv", "pv")):
        pid, dev, name = ident(x, "pv", i)
        pvs.append(PV(id=pid, device=dev, name=name, forecast_kw=x.series("forecast_kw", n, lo=0, quantize=True),
                      curtailable=x.boolean("curtailable", False)))

    ths = []
    for i, x in enumerate(r.objects("thermal_storages", "thermal")):
        tid, dev, name = ident(x, "thermal", i)
        mn = x.num("min_energy_kwh", 0.0, lo=0)
        mx = x.num("max_energy_kwh", lo=0)
        if mx < mn:
            raise ProblemError(f"{x.p('max_energy_kwh')}: must be >= min_energy_kwh")
        ths.append(ThermalStorage(
            id=tid, device=dev, name=name, electric_power_kw=q_kw(x.num("electric_power_kw", lo=0, lo_open=True)),
            heat_demand_kw=x.series("heat_demand_kw", n, (0.0,) * n, lo=0), modulating=x.boolean("modulating", False),
            cop=x.num("cop", 1.0, lo=0, lo_open=True), min_energy_kwh=mn, max_energy_kwh=mx,
            initial_energy_kwh=x.num("initial_energy_kwh", lo=0), final_energy_kwh=x.num("final_energy_kwh", None, lo=0),
            standing_loss_kw=x.num("standing_loss_kw", 0.0, lo=0)))

    gr = None
    if r.d.get("grid_request") is not None:
        g = _Reader(r.d["grid_request"], "grid_request", "grid_request")
        lo_ = g.series("min_net_import_kw", n, (None,) * n, nullable=True, quantize=True)
        hi_ = g.series("max_net_import_kw", n, (None,) * n, nullable=True, quantize=True)
        for t in range(n):
            if lo_[t] is not None and hi_[t] is not None and lo_[t] > hi_[t]:
                raise ProblemError(f"grid_request.max_net_import_kw[{t}]: must be >= min_net_import_kw[{t}]")
        gr = GridRequest(lo_, hi_, g.num("penalty_eur_per_kwh", None, lo=0))

    hps = _heat_pumps(r, n, ident)
    device_names = {d.device for grp in (cycles, evs, bats, pvs, ths, hps) for d in grp}
    return Problem(grid=grid, site=site, objective=objective, cycles=tuple(cycles), ev_sessions=tuple(evs),
                   batteries=tuple(bats), pv=tuple(pvs), thermal_storages=tuple(ths), grid_request=gr,
                   do_not_disturb=tuple(dnd), capacity_charges=_capacity_charges(r, res),
                   circuits=_circuits(r, device_names), heat_pumps=hps)


def _capacity_charges(r: _Reader, res: int) -> tuple[CapacityCharge, ...]:
    """`capacity_charges`: billing periods with a price per kW of peak (FORMAT.md "Capacity charge")."""
    out = []
    for x in r.objects("capacity_charges", "capacity_charge"):
        a, b = x.instant("start"), x.instant("end")
        if b <= a:
            raise ProblemError(f"{x.p('end')}: must be after start")
        w = x.get("window_min", 15)
        if isinstance(w, bool) or not isinstance(w, int) or w <= 0 or (w % res and res % w):
            raise ProblemError(f"{x.p('window_min')}: must be a whole number of minutes that divides or is a "
                               f"multiple of resolution_min ({res})")
        out.append(CapacityCharge(a, b, x.num("price_eur_per_kw", lo=0), w, q_kw(x.num("peak_floor_kw", 0.0, lo=0))))
    return tuple(out)


def _battery_wear(x: _Reader) -> dict[str, Any]:
    """Wear cost, cycle cap and SoC taper of a battery (FORMAT.md "Battery wear and taper")."""
    out = {"wear_cost_eur_per_kwh": x.num("wear_cost_eur_per_kwh", 0.0, lo=0),
           "max_cycles_per_day": x.num("max_cycles_per_day", None, lo=0, lo_open=True),
           "charge_taper_above_soc_pct": x.num("charge_taper_above_soc_pct", None, lo=0, hi=99.9),
           "charge_kw_at_full": q_kw(x.num("charge_kw_at_full", 0.0, lo=0)),
           "discharge_taper_below_soc_pct": x.num("discharge_taper_below_soc_pct", None, lo=0.1, hi=100),
           "discharge_kw_at_empty": q_kw(x.num("discharge_kw_at_empty", 0.0, lo=0))}
    for key, rating in (("charge_kw_at_full", "max_charge_kw"), ("discharge_kw_at_empty", "max_discharge_kw")):
        if out[key] > q_kw(x.num(rating, lo=0)):
            raise ProblemError(f"{x.p(key)}: must be <= {rating}")
    return out


def _min_states(x: _Reader, cap_kwh: Optional[float]) -> tuple[MinimumState, ...]:
    """`min_energy_at`: [{"at", "energy_kwh"}], each at most what the storage can hold."""
    out = []
    for r in x.objects("min_energy_at", "min_state"):
        out.append(MinimumState(r.instant("at"), r.num("energy_kwh", lo=0, hi=cap_kwh)))
    return tuple(sorted(out, key=lambda m: m.at))


def _heat_pumps(r: _Reader, n: int, ident) -> tuple[SpaceHeating, ...]:
    """Space-heating heat pumps (FORMAT.md "heat_pumps")."""
    out = []
    for i, x in enumerate(r.objects("heat_pumps", "heat_pump")):
        hid, dev, name = ident(x, "heat_pump", i)
        lo, hi = x.series("comfort_min_c", n), x.series("comfort_max_c", n)
        for t in range(n):
            if hi[t] < lo[t]:
                raise ProblemError(f"{x.p('comfort_max_c')}[{t}]: must be >= comfort_min_c[{t}]")
        curve = x.get("cop_curve")
        if not isinstance(curve, list) or not curve or not all(
                isinstance(pt, list) and len(pt) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                              and math.isfinite(v) for v in pt) and pt[1] > 0
                for pt in curve):
            raise ProblemError(f"{x.p('cop_curve')}: must be a non-empty list of [outdoor_c, cop] pairs with cop > 0")
        mod = x.boolean("modulating", True)
        out.append(SpaceHeating(
            id=hid, device=dev, name=name, max_power_kw=q_kw(x.num("max_power_kw", lo=0, lo_open=True)),
            heat_capacity_kwh_per_k=x.num("heat_capacity_kwh_per_k", lo=0, lo_open=True),
            heat_loss_kw_per_k=x.num("heat_loss_kw_per_k", lo=0, lo_open=True),
            initial_indoor_c=x.num("initial_indoor_c", lo=-50, hi=60),
            outdoor_temperature_c=x.series("outdoor_temperature_c", n), comfort_min_c=lo, comfort_max_c=hi,
            cop_curve=tuple((float(a), float(b)) for a, b in curve),
            solar_gain_factor_m2=x.num("solar_gain_factor_m2", 0.0, lo=0),
            solar_irradiance_kw_per_m2=x.series("solar_irradiance_kw_per_m2", n, None, lo=0), modulating=mod,
            min_run_min=x.num("min_run_min", 0.0, lo=0), min_off_min=x.num("min_off_min", 0.0, lo=0)))
    return tuple(out)


def _v2g(x: _Reader, capacity_kwh: Optional[float]) -> dict[str, Any]:
    """V2G fields of an EV session (FORMAT.md "V2G"): discharging needs the car's capacity (its SoC)."""
    out = {"max_discharge_kw": q_kw(x.num("max_discharge_kw", 0.0, lo=0)),
           "discharge_efficiency": x.num("discharge_efficiency", 1.0, lo=0, hi=1, lo_open=True),
           "min_soc_pct": x.num("min_soc_pct", None, lo=0, hi=100),
           "export_allowed": x.boolean("export_allowed", False)}
    if out["max_discharge_kw"] > 0 and capacity_kwh is None:
        raise ProblemError(f"{x.p('capacity_kwh')}: required with max_discharge_kw (the car's state of charge)")
    return out


def _circuits(r: _Reader, device_names: set[str]) -> tuple[Circuit, ...]:
    """Shared circuits (FORMAT.md "circuits"): every named device must be one of the problem's `device`s."""
    out, seen = [], set()
    for x in r.objects("circuits", "circuit"):
        cid = x.string("id")
        if not cid or cid in seen:
            raise ProblemError(f"{x.p('id')}: must be a non-empty, unique string")
        seen.add(cid)
        names = x.get("devices")
        if not isinstance(names, list) or not names or not all(isinstance(d, str) for d in names):
            raise ProblemError(f"{x.p('devices')}: must be a non-empty list of device names")
        for i, d in enumerate(names):
            if d not in device_names:
                raise ProblemError(f"{x.p('devices')}[{i}]: no device {d!r} in the problem")
        out.append(Circuit(id=cid, name=x.string("name", cid), limit_kw=q_kw(x.num("limit_kw", lo=0, lo_open=True)),
                           devices=tuple(dict.fromkeys(names))))
    return tuple(out)


# --------------------------------------------------------------------- to JSON
def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if is_dataclass(v):
        return {f.name: _jsonable(getattr(v, f.name)) for f in fields(v)}
    return v


def problem_to_dict(p: Problem) -> dict:
    """Inverse of problem_from_dict (round-trips through JSON)."""
    out: dict[str, Any] = {
        "version": 1,
        "start": p.grid.start.isoformat(),
        "resolution_min": p.grid.resolution_min,
        "slots": p.grid.slots,
        "timezone": p.grid.timezone,
        "objective": _jsonable(p.objective),
        "site": _jsonable(p.site),
        "do_not_disturb": [_jsonable(x) for x in p.do_not_disturb],
        "cycles": [],
        "ev_sessions": [],
        "batteries": [_jsonable(b) for b in p.batteries],
        "pv": [_jsonable(x) for x in p.pv],
        "thermal_storages": [_jsonable(x) for x in p.thermal_storages],
        "grid_request": _jsonable(p.grid_request) if p.grid_request else None,
    }
    if p.capacity_charges:
        out["capacity_charges"] = [_jsonable(c) for c in p.capacity_charges]
    for c in p.cycles:
        d = _jsonable(c)
        d["phases"] = [{"duration_min": ph.duration_min, "power_w": ph.power_w} for ph in c.phases]
        out["cycles"].append(d)
    for e in p.ev_sessions:
        d = _jsonable(e)
        d.pop("capacity_kwh")
        d.pop("max_energy_kwh")
        if e.capacity_kwh is not None and e.max_energy_kwh is not None:
            d["capacity_kwh"] = e.capacity_kwh
            d["initial_soc_pct"] = round(100.0 - 100.0 * e.max_energy_kwh / e.capacity_kwh, 9)  # exact back
        out["ev_sessions"].append(d)
    if p.circuits:
        out["circuits"] = [_jsonable(c) for c in p.circuits]
    if p.heat_pumps:
        out["heat_pumps"] = [_jsonable(h) for h in p.heat_pumps]
    return out
