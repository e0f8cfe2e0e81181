"""Periodic work on the `default` queue: day-ahead fan-out and the stuck-run reaper.

Beat sends these from django-celery-beat PeriodicTask rows (operators edit them in
the admin; created by flexibility migration 0004). None of them solves: the runs
they submit go to the `optimization` queue.
"""
from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError



@shared_task(name="tasks.periodic.day_ahead")
def day_ahead(delivery_day: str | None = None):
    """Fan the day-ahead run of every opted-in home out in chunks; returns the fleet run id."""
    from flexibility import services

    from datetime import date

    day = date.fromisoformat(delivery_day) if delivery_day else None
    return services.start_day_ahead(day).pk


@shared_task(name="tasks.periodic.day_ahead_chunk", bind=True, acks_late=True, max_retries=5)
def day_ahead_chunk(self, fleet_pk: int, home_ids: list[int]):
    """Submit one chunk of homes (each in its own transaction)."""
    from flexibility import services

    try:
        return services.plan_fleet_chunk(fleet_pk, home_ids)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))


@shared_task(name="tasks.periodic.reap_stuck_runs")
def reap_stuck_runs():
    """Re-send runs stuck in queued/running; fail those out of attempts; refresh fleet summaries."""
    from flexibility import services

    return services.reap_stuck_runs()
