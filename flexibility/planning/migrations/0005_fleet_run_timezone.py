"""Day-ahead per home's local time: fleet runs record their zone; beat checks every 15 minutes.

The beat row's schedule (every 15 minutes, UTC) that this migration once set is now declared in
settings.PERIODIC_TASKS.
"""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('flexibility', '0004_periodic_tasks'),
    ]

    operations = [
        migrations.AddField(
            model_name='fleetrun',
            name='timezone',
            field=models.CharField(blank=True, help_text='IANA zone of its homes; empty = every zone.', max_length=64),
        ),
    ]
