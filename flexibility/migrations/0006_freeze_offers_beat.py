"""Beat row that freezes offers at gate closure (tasks.flex.freeze_due_offers, every minute)."""
from django.db import migrations

FREEZE = "Freeze flexibility offers at gate closure"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = Interval.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=FREEZE, defaults={"task": "tasks.flex.freeze_due_offers", "interval": every_minute, "queue": "default"},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=FREEZE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("flexibility", "0005_fleet_run_timezone"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
