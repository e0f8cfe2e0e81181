"""Day-ahead per home's local time: fleet runs record their zone; beat checks every 15 minutes.

The day-ahead row of 0004 fired once a day at one zone's local time. It now runs at
:00/:15/:30/:45 UTC (aligned with every whole-, half- and quarter-hour zone offset) and
starts the homes whose local DAY_AHEAD_LOCAL_TIME has passed (services.start_due_day_ahead).
"""
from django.db import migrations, models

DAY_AHEAD = "Day-ahead optimization of opted-in homes"


def every_quarter_hour(apps, schema_editor):
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = Crontab.objects.get_or_create(
        minute="*/15", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC",
    )
    PeriodicTask.objects.filter(name=DAY_AHEAD, task="tasks.periodic.day_ahead").update(crontab=crontab, interval=None)


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
        migrations.RunPython(every_quarter_hour, migrations.RunPython.noop),
    ]
