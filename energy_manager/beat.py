"""Beat rows (django-celery-beat) created by data migrations.

Operators change intervals in the admin (Periodic tasks); a migration only creates
the row when it is missing and removes it when reversed.
"""
from __future__ import annotations

from django.db import migrations


def interval_task(name: str, task: str, every: int, period: str, queue: str) -> migrations.RunPython:
    """A migration operation that creates the periodic task `name` running `task` every `every` `period`."""

    def create(apps, schema_editor) -> None:
        Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        interval, _ = Interval.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "queue": queue})

    def remove(apps, schema_editor) -> None:
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return migrations.RunPython(create, remove)
