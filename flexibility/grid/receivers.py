"""Grid flexibility's subscriptions to planning."""
from __future__ import annotations

from django.dispatch import receiver

from flexibility.planning.models import RunTrigger
from flexibility.planning.signals import committed_bounds, open_request_end, schedules_stored

from .selectors import activations_end, committed_shares_of_homes
from .services import enqueue_offer_builds


@receiver(schedules_stored, dispatch_uid="grid.schedules_stored")
def offer_around_day_ahead_plans(sender, schedules, **kwargs) -> None:
    """A day-ahead plan is what the home offers the grid around: build the homes' offers for that day
    (a day-ahead chunk asks once for all its homes)."""
    homes_by_day: dict = {}
    for schedule in schedules:
        run = schedule.run
        if run.trigger == RunTrigger.DAY_AHEAD:
            homes_by_day.setdefault(run.horizon_start.astimezone(run.home.tzinfo).date(), []).append(run.home_id)
    for day, home_ids in homes_by_day.items():
        enqueue_offer_builds(home_ids, day)


@receiver(open_request_end, dispatch_uid="grid.open_request_end")
def activation_end(sender, home, now, **kwargs):
    """A re-plan of the home must reach the end of the activations it takes part in."""
    return activations_end(home, now)


@receiver(committed_bounds, dispatch_uid="grid.committed_bounds")
def share_bounds(sender, home_ids, start, end, **kwargs):
    """A plan keeps to the activation shares its home was planned to follow."""
    return committed_shares_of_homes(home_ids, start, end)
