"""Entry point other apps call when a home's plan may be stale.

Callers (devices services, the hub listener) call `request_reoptimization` after their
transaction commits; flexibility.services debounces per home and sends the task. This
module imports nothing at load time, so devices can call it without an import cycle.
"""
from __future__ import annotations


def request_reoptimization(home_id: int, reason: str) -> None:
    """Ask for the remaining horizon of `home_id` to be planned again (debounced)."""
    from flexibility import services  # late import: services imports devices

    services.schedule_reoptimization(home_id, reason)
