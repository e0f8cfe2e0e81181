"""What every backend hands back to `solve()`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..result import Schedule, Status, Violation

ELASTIC_PER_KWH = 1000.0  # objective units per kWh of relaxed requirement (explanation mode only)
ELASTIC_PER_CYCLE = 1.0e5  # objective units per cycle left out (explanation mode only)


@dataclass
class BackendResult:
    status: Status
    schedule: Optional[Schedule]
    objective: Optional[float] = None  # the backend's own objective (unscaled)
    bound: Optional[float] = None
    gap: Optional[float] = None
    build_ms: float = 0.0
    solve_ms: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def rel_gap(obj: Optional[float], bound: Optional[float]) -> Optional[float]:
    if obj is None or bound is None:
        return None
    return max(0.0, obj - bound) / max(1e-9, abs(obj))
