"""Entry point other apps call when a home's plan may be stale.

Issue 4 implements the debounce and the task; callers (devices services, the hub
listener) only ever call `request_reoptimization` after their transaction commits.
"""
from __future__ import annotations


def request_reoptimization(home_id: int, reason: str) -> None:
    """Ask for the remaining horizon of `home_id` to be planned again (debounced)."""
    from flexibility import services  # late import: services imports devices

    services.schedule_reoptimization(home_id, reason)
