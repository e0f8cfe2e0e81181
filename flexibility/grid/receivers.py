"""Grid flexibility's subscriptions to planning."""
from __future__ import annotations

from django.dispatch import receiver

from flexibility.planning.models import RunTrigger
from flexibility.planning.signals import open_request_end, schedule_stored

from .selectors import activations_end
from .services import enqueue_offer_builds


@receiver(schedule_stored, dispatch_uid="grid.schedule_stored")
def offer_around_day_ahead_plan(sender, run, schedule, **kwargs) -> None:
    """A day-ahead plan is what the home offers the grid around: build its offer for that day."""
    if run.trigger == RunTrigger.DAY_AHEAD:
        enqueue_offer_builds([run.home_id], run.horizon_start.astimezone(run.home.tzinfo).date())


@receiver(open_request_end, dispatch_uid="grid.open_request_end")
def activation_end(sender, home, now, **kwargs):
    """A re-plan of the home must reach the end of the activations it takes part in."""
    return activations_end(home, now)
