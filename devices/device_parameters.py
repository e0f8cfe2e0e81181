"""Type-specific device parameters: one schema per device type, units in the names.

One convention for every type: power in kW and energy in kWh (a device's rating). Only a cycle's power
profile phases and telemetry, which are measured appliance curves, are in W and Wh.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class Param:
    kind: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None


_NUM = (int, float)
_SHIFTABLE = {"max_power_kw": Param(_NUM, default=None, min=0.1, max=10)}  # rated; bounds every cycle phase
DEVICE_PARAMETERS: dict[str, dict[str, Param]] = {
    "dishwasher": _SHIFTABLE,
    "washing_machine": _SHIFTABLE,
    "dryer": _SHIFTABLE,
    "ev_charger": {
        "min_power_kw": Param(_NUM, default=1.38, min=0, max=350),
        "max_power_kw": Param(_NUM, required=True, min=0.5, max=350),
        "phases": Param(int, default=1, choices=(1, 3)),
        "voltage_v": Param(_NUM, default=230, min=100, max=480),
        "current_steps_a": Param(list, default=None),
        "efficiency": Param(_NUM, default=0.92, min=0.5, max=1.0),
        # bidirectional chargers (V2G / V2H, issue 14 item 3); 0 = charges only
        "max_discharge_kw": Param(_NUM, default=0.0, min=0, max=350),
        "discharge_efficiency": Param(_NUM, default=0.92, min=0.5, max=1.0),
    },
    "battery": {
        "capacity_kwh": Param(_NUM, required=True, min=0.1, max=1000),
        "max_charge_kw": Param(_NUM, required=True, min=0.1, max=500),
        "max_discharge_kw": Param(_NUM, required=True, min=0.1, max=500),
        "charge_efficiency": Param(_NUM, default=0.95, min=0.5, max=1.0),
        "discharge_efficiency": Param(_NUM, default=0.95, min=0.5, max=1.0),
        "min_soc_pct": Param(_NUM, default=10, min=0, max=100),
        "initial_soc_pct": Param(_NUM, default=50, min=0, max=100),
        # issue 14: wear and taper (flexibility/optimizer/FORMAT.md "Battery wear and taper")
        "wear_cost_eur_per_kwh": Param(_NUM, default=None, min=0, max=1),
        "max_cycles_per_day": Param(_NUM, default=None, min=0.1, max=10),
        "charge_taper_above_soc_pct": Param(_NUM, default=None, min=0, max=99.9),
        "charge_kw_at_full": Param(_NUM, default=None, min=0, max=500),
        "discharge_taper_below_soc_pct": Param(_NUM, default=None, min=0.1, max=100),
        "discharge_kw_at_empty": Param(_NUM, default=None, min=0, max=500),
    },
    "pv": {
        "peak_power_kw": Param(_NUM, required=True, min=0.1, max=1000),
        "curtailable": Param(bool, default=False),
        "tilt_deg": Param(_NUM, default=30, min=0, max=90),
        "azimuth_deg": Param(_NUM, default=180, min=0, max=360),  # 180 = facing south
        "latitude": Param(_NUM, default=None, min=-90, max=90),  # empty: the home's time zone's main city
        "longitude": Param(_NUM, default=None, min=-180, max=180),
    },
    "water_heater": {
        "electric_power_kw": Param(_NUM, required=True, min=0.1, max=30),
        "tank_volume_l": Param(_NUM, required=True, min=10, max=2000),
        "cop": Param(_NUM, default=1.0, min=0.5, max=8),
        "temperature_min_c": Param(_NUM, default=45, min=5, max=95),
        "temperature_max_c": Param(_NUM, default=65, min=5, max=95),
        "initial_temperature_c": Param(_NUM, default=55, min=5, max=95),
        "modulating": Param(bool, default=False),
        "standing_loss_kw": Param(_NUM, default=0.05, min=0, max=2),
    },
    "heat_pump": {
        "electric_power_kw": Param(_NUM, required=True, min=0.1, max=50),
        "tank_volume_l": Param(_NUM, required=True, min=10, max=5000),
        "cop": Param(_NUM, default=3.0, min=0.5, max=8),
        "temperature_min_c": Param(_NUM, default=40, min=5, max=95),
        "temperature_max_c": Param(_NUM, default=55, min=5, max=95),
        "initial_temperature_c": Param(_NUM, default=48, min=5, max=95),
        "modulating": Param(bool, default=True),
        "standing_loss_kw": Param(_NUM, default=0.08, min=0, max=5),
    },
    # a heat pump heating the house (issue 14 item 5): the building's first-order model and the comfort band
    "space_heating": {
        "max_power_kw": Param(_NUM, required=True, min=0.1, max=50),  # electric
        "heat_capacity_kwh_per_k": Param(_NUM, required=True, min=0.5, max=500),
        "heat_loss_kw_per_k": Param(_NUM, required=True, min=0.01, max=10),
        "solar_gain_factor_m2": Param(_NUM, default=0.0, min=0, max=100),
        "cop_curve": Param(list, default=[[-10.0, 2.0], [-2.0, 2.6], [7.0, 3.4], [15.0, 4.2]]),  # [outdoor_c, cop]
        "modulating": Param(bool, default=True),
        "min_run_min": Param(_NUM, default=0, min=0, max=240),
        "min_off_min": Param(_NUM, default=0, min=0, max=240),
        "comfort_min_c": Param(_NUM, default=20.0, min=5, max=30),
        "comfort_max_c": Param(_NUM, default=23.0, min=5, max=35),
        "setback_min_c": Param(_NUM, default=None, min=5, max=30),  # night setback floor, e.g. 17
        "setback_start": Param(str, default="22:00"),
        "setback_end": Param(str, default="06:00"),
        "initial_indoor_c": Param(_NUM, default=20.0, min=-10, max=40),  # until a temperature is measured
    },
}


def validate_device_parameters(device_type: str, parameters: dict) -> dict:
    """Validate and complete `parameters` for `device_type`; errors name `parameters.<field>`."""
    schema = DEVICE_PARAMETERS.get(device_type)
    if schema is None:
        raise ValidationError({"device_type": f"Unknown device type '{device_type}'."})
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Must be an object."})
    errors: dict[str, str] = {}
    unknown = sorted(set(parameters) - set(schema))
    for name in unknown:
        errors[f"parameters.{name}"] = f"Unknown parameter for a {device_type}."
    out: dict[str, Any] = {}
    for name, p in schema.items():
        value = parameters.get(name, p.default)
        if value is None:
            if p.required:
                errors[f"parameters.{name}"] = "This parameter is required."
            continue
        if isinstance(value, bool) and p.kind is not bool:
            errors[f"parameters.{name}"] = "Must be a number."
            continue
        if not isinstance(value, p.kind):
            errors[f"parameters.{name}"] = f"Must be of type {getattr(p.kind, '__name__', 'number')}."
            continue
        if p.min is not None and value < p.min or p.max is not None and value > p.max:
            errors[f"parameters.{name}"] = f"Must be between {p.min} and {p.max}."
            continue
        if p.choices and value not in p.choices:
            errors[f"parameters.{name}"] = f"Must be one of {list(p.choices)}."
            continue
        out[name] = value
    if not errors:
        _check_cross_fields(device_type, out, errors)
    if errors:
        raise ValidationError(errors)
    return out


def _check_cross_fields(device_type: str, p: dict, errors: dict[str, str]) -> None:
    if device_type == "ev_charger":
        if p["min_power_kw"] > p["max_power_kw"]:
            errors["parameters.min_power_kw"] = "Must not exceed max_power_kw."
        steps = p.get("current_steps_a")
        if steps is not None:
            if not steps or any(isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a <= 500 for a in steps):
                errors["parameters.current_steps_a"] = "Must be a non-empty list of currents in A (0-500]."
            elif sorted(steps) != list(steps):
                errors["parameters.current_steps_a"] = "Must be in increasing order."
    if device_type in ("water_heater", "heat_pump"):
        if p["temperature_max_c"] <= p["temperature_min_c"]:
            errors["parameters.temperature_max_c"] = "Must be above temperature_min_c."
    if device_type == "space_heating":
        _check_space_heating(p, errors)
    if device_type == "battery" and p["initial_soc_pct"] < p["min_soc_pct"]:
        errors["parameters.initial_soc_pct"] = "Must not be below min_soc_pct."
    if device_type == "battery":
        for key, rating in (("charge_kw_at_full", "max_charge_kw"), ("discharge_kw_at_empty", "max_discharge_kw")):
            if p.get(key) is not None and p[key] > p[rating]:
                errors[f"parameters.{key}"] = f"Must not exceed {rating}."


def _check_space_heating(p: dict, errors: dict[str, str]) -> None:
    if p["comfort_max_c"] <= p["comfort_min_c"]:
        errors["parameters.comfort_max_c"] = "Must be above comfort_min_c."
    if p.get("setback_min_c") is not None and p["setback_min_c"] > p["comfort_min_c"]:
        errors["parameters.setback_min_c"] = "Must not be above comfort_min_c."
    for name in ("setback_start", "setback_end"):
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", p[name]):
            errors[f"parameters.{name}"] = "Must be a local time HH:MM."
    curve = p["cop_curve"]
    if not curve or not all(isinstance(pt, list) and len(pt) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in pt) and 0 < pt[1] <= 10 for pt in curve):
        errors["parameters.cop_curve"] = "Must be a non-empty list of [outdoor_c, cop] pairs with 0 < cop <= 10."


# A plausible parameter set per device type (demo seed, tests, API examples).
EXAMPLE_PARAMETERS: dict[str, dict[str, Any]] = {
    "dishwasher": {"max_power_kw": 2.4},
    "washing_machine": {"max_power_kw": 2.8},
    "dryer": {"max_power_kw": 2.8},
    "ev_charger": {"min_power_kw": 1.38, "max_power_kw": 7.4, "phases": 1, "voltage_v": 230,
                   "current_steps_a": [6, 8, 10, 13, 16, 20, 25, 32]},
    "battery": {"capacity_kwh": 10.0, "max_charge_kw": 5.0, "max_discharge_kw": 5.0, "min_soc_pct": 10,
                "initial_soc_pct": 50},
    "pv": {"peak_power_kw": 4.0},
    "water_heater": {"electric_power_kw": 2.0, "tank_volume_l": 200},
    "heat_pump": {"electric_power_kw": 3.0, "tank_volume_l": 200},
    "space_heating": {"max_power_kw": 3.0, "heat_capacity_kwh_per_k": 10.0, "heat_loss_kw_per_k": 0.2,
                      "setback_min_c": 17.0},
}
