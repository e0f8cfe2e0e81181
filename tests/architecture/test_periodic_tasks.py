"""The beat schedule is declared once (settings.PERIODIC_TASKS) and lives as rows an operator edits."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks.periodic import sync_periodic_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_declared_task_has_its_row_after_migrate():
    rows = {t.name: t for t in PeriodicTask.objects.filter(name__in=list(settings.PERIODIC_TASKS))}
    assert set(rows) == set(settings.PERIODIC_TASKS)
    for name, entry in settings.PERIODIC_TASKS.items():
        assert (rows[name].task, rows[name].queue) == (entry["task"], entry["queue"])
    day_ahead = rows["Day-ahead optimization of opted-in homes"]
    assert (day_ahead.crontab.minute, day_ahead.crontab.hour, str(day_ahead.crontab.timezone)) == ("*/15", "*", "UTC")
    sweep = rows["Hub relay sweep: resend, expire, fail unreported commands"]
    assert (sweep.interval.every, sweep.interval.period) == (30, "seconds")


def test_sync_keeps_what_an_operator_changed_and_recreates_a_deleted_row():
    reaper = PeriodicTask.objects.get(name="Re-send stuck optimization runs")
    reaper.interval, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    reaper.enabled = False
    reaper.save()
    PeriodicTask.objects.filter(name="Freeze flexibility offers at gate closure").delete()

    assert sync_periodic_tasks() == ["Freeze flexibility offers at gate closure"]
    call_command("sync_periodic_tasks", verbosity=0)  # idempotent

    reaper.refresh_from_db()
    assert (reaper.interval.every, reaper.interval.period, reaper.enabled) == (5, "minutes", False)
    assert PeriodicTask.objects.filter(name="Freeze flexibility offers at gate closure").count() == 1
