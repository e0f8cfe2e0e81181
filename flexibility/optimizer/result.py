"""Schedules, solve results and envelopes (with JSON conversion per README.md)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional


class Status(str, Enum):
    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    INFEASIBLE = "INFEASIBLE"
    NO_SOLUTION_IN_TIME = "NO_SOLUTION_IN_TIME"


@dataclass
class Schedule:
    """Decisions only; everything else (net import, SoC, cost) is derived by the evaluator."""

    cycle_start_min: dict[str, float] = field(default_factory=dict)  # minutes after grid start
    ev_kw: dict[str, list[float]] = field(default_factory=dict)
    battery_charge_kw: dict[str, list[float]] = field(default_factory=dict)
    battery_discharge_kw: dict[str, list[float]] = field(default_factory=dict)
    pv_kw: dict[str, list[float]] = field(default_factory=dict)  # PV power used (after curtailment)
    thermal_kw: dict[str, list[float]] = field(default_factory=dict)  # electric
    skipped_cycles: list[str] = field(default_factory=list)  # only in relaxed (explanation) schedules
    ev_discharge_kw: dict[str, list[float]] = field(default_factory=dict)  # V2G sessions only (issue 14 item 3)
    heat_pump_kw: dict[str, list[float]] = field(default_factory=dict)  # space heating, electric (item 5)


@dataclass
class Violation:
    device: str  # device id, or "site"
    requirement: str  # e.g. "energy", "import_limit", "final_soc", "window"
    amount: float
    unit: str
    slot: Optional[int] = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "requirement": self.requirement, "amount": round(self.amount, 6),
                "unit": self.unit, "slot": self.slot, "message": self.message}


@dataclass
class Evaluation:
    cost_eur: float  # import cost - export revenue
    co2_kg: float
    penalty_eur: float  # soft grid-request penalties
    objective: float  # what the backends minimize (objective units), incl. tie-breaks
    net_import_kw: list[float]
    soc_kwh: dict[str, list[float]]
    violations: list[Violation]
    capacity_charges: list[dict[str, Any]] = field(default_factory=list)  # per billing period: peak and its cost
    indoor_temperature_c: dict[str, list[float]] = field(default_factory=dict)  # space heating (issue 14 item 5)

    @property
    def feasible(self) -> bool:
        return not self.violations


@dataclass
class SolveStats:
    backend: str
    build_ms: float = 0.0
    solve_ms: float = 0.0
    gap: Optional[float] = None
    bound: Optional[float] = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"backend": self.backend, "build_ms": round(self.build_ms, 3), "solve_ms": round(self.solve_ms, 3),
             "gap": self.gap, "bound": self.bound}
        d.update(self.detail)
        return d


@dataclass
class SolveResult:
    status: Status
    backend: str
    schedule: Optional[Schedule]
    evaluation: Optional[Evaluation]
    baseline: Optional[Evaluation]
    stats: SolveStats
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    # the baseline's devices (devices_view) beside a plan: what the plan's reasons compare it with
    baseline_devices: Optional[dict[str, dict[str, Any]]] = None

    @property
    def cost_eur(self) -> Optional[float]:
        return None if self.evaluation is None else self.evaluation.cost_eur

    @property
    def objective_value(self) -> Optional[float]:
        return None if self.evaluation is None else self.evaluation.objective

    @property
    def ok(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.FEASIBLE)

    def to_dict(self) -> dict[str, Any]:
        ev, bl = self.evaluation, self.baseline
        return {
            "status": self.status.value,
            "backend": self.backend,
            "objective_value": None if ev is None else round(ev.objective, 9),
            "cost_eur": None if ev is None else round(ev.cost_eur, 6),
            "co2_kg": None if ev is None else round(ev.co2_kg, 6),
            "penalty_eur": None if ev is None else round(ev.penalty_eur, 6),
            "baseline": None if bl is None else {
                "cost_eur": round(bl.cost_eur, 6), "co2_kg": round(bl.co2_kg, 6), "feasible": bl.feasible,
                **({} if self.baseline_devices is None else {
                    "net_import_kw": [round(x, 4) for x in bl.net_import_kw], "devices": self.baseline_devices})},
            "savings_eur": None if ev is None or bl is None else round(bl.cost_eur - ev.cost_eur, 6),
            "net_import_kw": None if ev is None else [round(x, 4) for x in ev.net_import_kw],
            "devices": self.devices,
            **({"capacity_charges": ev.capacity_charges} if ev is not None and ev.capacity_charges else {}),
            "explanation": list(self.explanation),
            "violations": [v.to_dict() for v in self.violations],
            "stats": self.stats.to_dict(),
        }


@dataclass
class EnvelopeSlot:
    start: str
    baseline_kw: float
    min_kw: float
    max_kw: float
    cost_min_eur: float
    cost_max_eur: float


@dataclass
class Envelope:
    status: Status
    slots: list[EnvelopeSlot]
    plan_cost_eur: Optional[float]
    stats: dict[str, Any]
    explanation: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "plan_cost_eur": None if self.plan_cost_eur is None else round(self.plan_cost_eur, 6),
            "start": [s.start for s in self.slots],
            "baseline_kw": [round(s.baseline_kw, 3) for s in self.slots],
            "min_kw": [round(s.min_kw, 3) for s in self.slots],
            "max_kw": [round(s.max_kw, 3) for s in self.slots],
            "cost_min_eur": [round(s.cost_min_eur, 6) for s in self.slots],
            "cost_max_eur": [round(s.cost_max_eur, 6) for s in self.slots],
            "explanation": self.explanation,
            "stats": self.stats,
        }
