"""Beat row that freezes offers at gate closure (tasks.flex.freeze_due_offers, every minute)."""
from django.db import migrations

from energy_manager.beat import interval_task


class Migration(migrations.Migration):
    dependencies = [
        ("flexibility", "0005_fleet_run_timezone"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        interval_task("Freeze flexibility offers at gate closure", "tasks.flex.freeze_due_offers", 1, "minutes", "default"),
    ]
