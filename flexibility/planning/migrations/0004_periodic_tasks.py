"""Formerly created the day-ahead and reaper beat rows.

The beat schedule is now declared in settings.PERIODIC_TASKS and synced by `manage.py
sync_periodic_tasks` (also after every migrate); this node stays for the migration history.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("flexibility", "0003_run_requeues_fleet_chunks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = []
