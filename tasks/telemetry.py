"""Telemetry storage upkeep (queue `default`): partitions ahead, retention, daily roll-ups."""
from __future__ import annotations

from celery import shared_task

from devices import services


@shared_task(name="tasks.telemetry.maintain_storage")
def maintain_storage() -> dict[str, list[str]]:
    """Beat, hourly (settings.PERIODIC_TASKS): create the coming partitions, drop expired raw days."""
    return services.maintain_telemetry_storage()


@shared_task(name="tasks.telemetry.roll_up_days")
def roll_up_days() -> int:
    """Beat, every 15 minutes (settings.PERIODIC_TASKS): daily roll-ups of today and yesterday."""
    return services.roll_up_telemetry_days()
