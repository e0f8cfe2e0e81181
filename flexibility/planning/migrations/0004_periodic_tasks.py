"""Beat schedule rows (django-celery-beat): day-ahead fleet run and the stuck-run reaper.

Operators change times and intervals in the admin (Periodic tasks); this only
creates the rows when they are missing.
"""
from django.conf import settings
from django.db import migrations

DAY_AHEAD = "Day-ahead optimization of opted-in homes"
REAPER = "Re-send stuck optimization runs"


def create(apps, schema_editor):
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hour, minute = settings.DAY_AHEAD_LOCAL_TIME.split(":")
    tz = getattr(settings, "DAY_AHEAD_TIMEZONE", "Europe/Lisbon")
    crontab, _ = Crontab.objects.get_or_create(
        minute=str(int(minute)), hour=str(int(hour)), day_of_week="*", day_of_month="*", month_of_year="*",
        timezone=tz,
    )
    every_minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=DAY_AHEAD, defaults={"task": "tasks.periodic.day_ahead", "crontab": crontab, "queue": "default"}
    )
    PeriodicTask.objects.get_or_create(
        name=REAPER, defaults={"task": "tasks.periodic.reap_stuck_runs", "interval": every_minute, "queue": "default"}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[DAY_AHEAD, REAPER]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("flexibility", "0003_run_requeues_fleet_chunks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
