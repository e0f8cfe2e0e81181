"""Beat rows for telemetry storage (`default` queue): upkeep of the partitions (hourly) and the daily
roll-ups of today and yesterday (every 15 minutes)."""
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
        interval_task("Telemetry storage: daily roll-ups of today and yesterday",
                      "tasks.telemetry.roll_up_days", 15, "minutes", "default"),
    ]
