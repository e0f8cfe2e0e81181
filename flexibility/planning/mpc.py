"""Rolling re-planning (model predictive control): when has a home left its plan?

Pure rules on what the plan expected now and what was measured; the tick service gathers
both for many homes at once and asks for a re-plan of those with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Thresholds:
    soc_pct: float = 10.0  # battery state of charge off the plan by more than this (percentage points)
    tank_kwh: float = 1.0  # heat stored in a hot-water tank off the plan by more than this
    load_abs_w: float = 500.0  # measured base load off its forecast by more than this ...
    load_rel: float = 0.5  # ... and by more than this share of the forecast (mean over the last hour ...)
    # ... and over the hour before it, in the same direction. The base-load forecast reads the time of day, the
    # day type and a week's level: one hour off (a kettle, an oven, noise) leaves it as it was, so a re-plan
    # for it would plan the same decisions again. A deviation that lasts is a change of level worth re-planning.


@dataclass(frozen=True)
class Expected:
    """What the current plan assumed at this moment."""

    battery_soc_pct: dict[str, float] = field(default_factory=dict)  # device serial -> planned SoC now
    tank_kwh: dict[str, float] = field(default_factory=dict)  # device serial -> planned heat above the band's floor
    cycle_states: dict[int, str] = field(default_factory=dict)  # cycle id -> "scheduled" | "running" | "done"
    active_ev_sessions: frozenset[int] = frozenset()  # sessions plugged in now, per the plan
    base_load_w: float | None = None  # forecast mean over the last hour
    base_load_before_w: float | None = None  # forecast mean over the hour before it
    ev_sessions: frozenset[int] = frozenset()  # every session the plan knows


@dataclass(frozen=True)
class Measured:
    battery_soc_pct: dict[str, float] = field(default_factory=dict)
    tank_kwh: dict[str, float] = field(default_factory=dict)  # from the last slot's mean temperature
    cycle_states: dict[int, str] = field(default_factory=dict)  # states as the hub reported them
    active_ev_sessions: frozenset[int] = frozenset()
    base_load_w: float | None = None  # mean over the last hour
    base_load_before_w: float | None = None  # mean over the hour before it
    # Open requests (scheduled cycles, EV sessions not yet gone) recorded after the home's latest run: their
    # re-plan trigger was lost (the broker was down), so nothing has planned them yet.
    new_cycles: frozenset[int] = frozenset()
    new_ev_sessions: frozenset[int] = frozenset()


def replan_reasons(expected: Expected, measured: Measured, thresholds: Thresholds = Thresholds()) -> list[str]:
    """Why the home should be planned again from now (empty: it follows its plan)."""
    reasons: list[str] = []
    for serial, planned in sorted(expected.battery_soc_pct.items()):
        now = measured.battery_soc_pct.get(serial)
        if now is not None and abs(now - planned) > thresholds.soc_pct:
            reasons.append(f"battery {serial} at {now:.0f} % instead of {planned:.0f} %")
    for serial, planned in sorted(expected.tank_kwh.items()):
        now = measured.tank_kwh.get(serial)
        if now is not None and abs(now - planned) > thresholds.tank_kwh:
            reasons.append(f"tank {serial} holds {now:.1f} kWh instead of {planned:.1f} kWh")
    for cycle_id, state in sorted(measured.cycle_states.items()):
        planned = expected.cycle_states.get(cycle_id)
        if state == "running" and planned == "scheduled":
            reasons.append(f"cycle {cycle_id} started")
        elif state == "done" and planned in ("scheduled", "running"):
            reasons.append(f"cycle {cycle_id} finished")
    reasons += [f"cycle {c} is not in the plan" for c in sorted(measured.new_cycles - set(expected.cycle_states))]
    reasons += [f"EV session {s} is not in the plan" for s in sorted(measured.new_ev_sessions - expected.ev_sessions)]
    plugged = measured.active_ev_sessions - expected.active_ev_sessions
    unplugged = expected.active_ev_sessions - measured.active_ev_sessions
    reasons += [f"EV session {s} plugged in" for s in sorted(plugged)]
    reasons += [f"EV session {s} unplugged" for s in sorted(unplugged)]
    last = _load_gap_w(expected.base_load_w, measured.base_load_w, thresholds)
    before = _load_gap_w(expected.base_load_before_w, measured.base_load_before_w, thresholds)
    if last and before and (last > 0) == (before > 0):
        reasons.append(f"base load {measured.base_load_w:.0f} W instead of {expected.base_load_w:.0f} W "
                       f"(the hour before: {measured.base_load_before_w:.0f} W instead of "
                       f"{expected.base_load_before_w:.0f} W)")
    return reasons


def _load_gap_w(expected_w: float | None, measured_w: float | None, thresholds: Thresholds) -> float:
    """Measured minus forecast base load when it is beyond both thresholds, else 0 (also when unknown)."""
    if expected_w is None or measured_w is None:
        return 0.0
    gap = measured_w - expected_w
    if abs(gap) > thresholds.load_abs_w and abs(gap) > thresholds.load_rel * max(expected_w, 1.0):
        return gap
    return 0.0
