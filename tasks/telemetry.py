"""Telemetry storage upkeep (queue `default`): partitions ahead, raw rows past retention dropped."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="tasks.telemetry.maintain_storage")
def maintain_storage() -> dict[str, list[str]]:
    """Beat, hourly (devices migration 0005): create the coming partitions, drop expired raw days."""
    from devices import services

    return services.maintain_telemetry_storage()
