"""Beat row for telemetry storage upkeep (tasks.telemetry.maintain_storage, hourly, `default` queue)."""
from django.db import migrations

from energy_manager.beat import interval_task


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0004_partitioned_telemetry"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        interval_task("Telemetry storage: partitions ahead, retention of raw rows",
                      "tasks.telemetry.maintain_storage", 1, "hours", "default"),
    ]
