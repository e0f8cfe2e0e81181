"""Beat row for the relay sweep (tasks.hub.relay_sweep, every 30 s on the `hub` queue).

The relay schedules its own resend/expiry checks through Redis; this periodic task
keeps them going when those messages are lost. Operators can change the interval
in the admin (Periodic tasks); this only creates the row when it is missing.
"""
from django.db import migrations

SWEEP = "Hub relay sweep: resend, expire, fail unreported commands"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_30_s, _ = Interval.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=SWEEP, defaults={"task": "tasks.hub.relay_sweep", "interval": every_30_s, "queue": "hub"},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("hub_bridge", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
