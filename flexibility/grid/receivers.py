"""Grid flexibility's subscriptions to planning."""
from __future__ import annotations

from django.dispatch import receiver

from flexibility.planning.models import RunTrigger
from flexibility.planning.signals import schedule_stored

from .services import enqueue_offer_builds


@receiver(schedule_stored, dispatch_uid="grid.schedule_stored")
def offer_around_day_ahead_plan(sender, run, schedule, **kwargs) -> None:
    """A day-ahead plan is what the home offers the grid around: build its offer for that day."""
    if run.trigger == RunTrigger.DAY_AHEAD:
        enqueue_offer_builds([run.home_id], run.horizon_start.astimezone(run.home.tzinfo).date())
