"""Formerly created the offer-freezing beat row; now declared in settings.PERIODIC_TASKS (see 0004)."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("flexibility", "0005_fleet_run_timezone"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = []
