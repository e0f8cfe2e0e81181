"""settings.PERIODIC_TASKS -> django-celery-beat rows (the beat reads the rows; operators edit them).

A missing row is created; an existing row (matched by name) is left as the operator set it.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


def _schedule(entry: dict[str, Any], using: str) -> dict[str, Any]:
    if "every" in entry:
        every, period = entry["every"]
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(every=every, period=period)
        return {"interval": interval}
    cron = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*",
            "timezone": "UTC", **entry["crontab"]}
    crontab, _ = CrontabSchedule.objects.using(using).get_or_create(**cron)
    return {"crontab": crontab}


def sync_periodic_tasks(schedule: dict[str, dict[str, Any]] | None = None, using: str = "default") -> list[str]:
    """Create the rows of `schedule` (default settings.PERIODIC_TASKS) that are missing; returns their names."""
    schedule = settings.PERIODIC_TASKS if schedule is None else schedule
    existing = set(PeriodicTask.objects.using(using).filter(name__in=list(schedule)).values_list("name", flat=True))
    created = []
    with transaction.atomic(using=using):
        for name, entry in schedule.items():
            if name in existing:
                continue
            PeriodicTask.objects.using(using).create(name=name, task=entry["task"], queue=entry.get("queue"),
                                                     **_schedule(entry, using))
            created.append(name)
    return created


def sync_after_migrate(sender, app_config, using: str = "default", plan=None, **kwargs) -> None:
    """post_migrate: once per migrate (sent per app with models; the beat app's turn), after every table exists."""
    if app_config.label != "django_celery_beat":
        return
    sync_periodic_tasks(using=using)
