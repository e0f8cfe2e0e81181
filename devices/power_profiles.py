"""Power profiles of shiftable cycles: phases of {duration_min, expected_power_w, max_power_w}."""
from __future__ import annotations

from django.core.exceptions import ValidationError

MAX_PHASES = 200
MAX_PHASE_POWER_W = 20_000


def validate_power_profile(profile) -> list[dict]:
    """Return the profile normalized (expected_power_w filled from max when absent); errors name every bad field."""
    if not isinstance(profile, list) or not profile:
        raise ValidationError({"power_profile": "Must be a non-empty list of phases."})
    if len(profile) > MAX_PHASES:
        raise ValidationError({"power_profile": f"At most {MAX_PHASES} phases."})
    errors: dict[str, str] = {}
    out = []
    for i, phase in enumerate(profile):
        name = f"power_profile[{i}]"
        if not isinstance(phase, dict):
            errors[name] = "Must be an object."
            continue
        for field in sorted(set(phase) - {"duration_min", "expected_power_w", "max_power_w"}):
            errors[f"{name}.{field}"] = "Unknown field."
        bad = False
        for field, required in (("duration_min", True), ("max_power_w", True), ("expected_power_w", False)):
            value = phase.get(field)
            if value is None and not required:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                errors[f"{name}.{field}"] = "Must be a number."
                bad = True
        if bad:
            continue
        duration, max_w = phase["duration_min"], phase["max_power_w"]
        expected_w = phase.get("expected_power_w")
        if not 0 < duration <= 24 * 60:
            errors[f"{name}.duration_min"] = "Must be in (0, 1440] minutes."
        if not 0 <= max_w <= MAX_PHASE_POWER_W:
            errors[f"{name}.max_power_w"] = f"Must be in [0, {MAX_PHASE_POWER_W}] W."
        if expected_w is None:
            expected_w = max_w
        elif not 0 <= expected_w <= max_w:
            errors[f"{name}.expected_power_w"] = "Must be in [0, max_power_w] W."
        out.append({"duration_min": duration, "expected_power_w": expected_w, "max_power_w": max_w})
    if errors:
        raise ValidationError(errors)
    return out


def profile_duration_minutes(profile) -> float:
    try:
        return float(sum(p["duration_min"] for p in profile))
    except (TypeError, KeyError):
        return 0.0


def profile_energy_wh(profile) -> float:
    return sum(p["duration_min"] / 60.0 * (p.get("expected_power_w") or p["max_power_w"]) for p in profile)
