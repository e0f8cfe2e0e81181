"""Periodic work on the `default` queue: day-ahead fan-out and the stuck-run reaper.

Beat sends these from django-celery-beat PeriodicTask rows (operators edit them in
the admin; created by flexibility migration 0004). None of them solves: the runs
they submit go to the `optimization` queue.
"""
from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError



@shared_task(name="tasks.periodic.day_ahead")
def day_ahead(delivery_day: str | None = None) -> list[int]:
    """Beat, every 15 min: plan tomorrow for the homes whose local DAY_AHEAD_LOCAL_TIME has passed.

    With `delivery_day` (an operator running it by hand): every opted-in home for that day.
    Returns the fleet run ids.
    """
    from datetime import date

    from flexibility import services

    if delivery_day:
        return [services.start_day_ahead(date.fromisoformat(delivery_day)).pk]
    return [fleet.pk for fleet in services.start_due_day_ahead()]


@shared_task(name="tasks.periodic.day_ahead_chunk", bind=True, acks_late=True, max_retries=5)
def day_ahead_chunk(self, fleet_pk: int, home_ids: list[int]):
    """Plan one chunk of homes: build, solve and store their day-ahead runs in this task."""
    from flexibility import services

    try:
        return services.plan_fleet_chunk(fleet_pk, home_ids, task_id=self.request.id or "")
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))


@shared_task(name="tasks.periodic.reap_stuck_runs")
def reap_stuck_runs():
    """Re-send runs stuck in queued/running; fail those out of attempts; refresh fleet summaries."""
    from flexibility import services

    return services.reap_stuck_runs()
