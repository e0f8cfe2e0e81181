"""Beat row for the relay sweep (tasks.hub.relay_sweep, every 30 s on the `hub` queue).

The relay schedules its own resend/expiry checks through Redis; this periodic task
keeps them going when those messages are lost.
"""
from django.db import migrations

from energy_manager.beat import interval_task


class Migration(migrations.Migration):
    dependencies = [
        ("hub_bridge", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        interval_task("Hub relay sweep: resend, expire, fail unreported commands", "tasks.hub.relay_sweep", 30, "seconds", "hub"),
    ]
