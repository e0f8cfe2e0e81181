"""Telemetry storage upkeep (queue `default`): partitions ahead, retention, daily roll-ups."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="tasks.telemetry.maintain_storage")
def maintain_storage() -> dict[str, list[str]]:
    """Beat, hourly (devices migration 0005): create the coming partitions, drop expired raw days."""
    from devices import services

    return services.maintain_telemetry_storage()


@shared_task(name="tasks.telemetry.roll_up_days")
def roll_up_days() -> int:
    """Beat, every 15 minutes (devices migration 0005): daily roll-ups of today and yesterday."""
    from devices import services

    return services.roll_up_telemetry_days()
