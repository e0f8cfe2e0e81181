"""Actions that write optimization runs, schedules and recommendations (issue 4)."""
from __future__ import annotations


def schedule_reoptimization(home_id: int, reason: str) -> None:
    """Placeholder until the optimization tasks land: re-planning is not triggered yet."""
    return None
