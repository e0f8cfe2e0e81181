"""Formerly created the relay-sweep beat row; now declared in settings.PERIODIC_TASKS and synced by
`manage.py sync_periodic_tasks` (also after every migrate). This node stays for the migration history."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("hub_bridge", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = []
