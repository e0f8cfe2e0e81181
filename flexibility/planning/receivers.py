"""Planning's subscriptions to the layers below."""
from __future__ import annotations

from django.dispatch import receiver

from devices.signals import home_plan_stale

from .services.replanning import schedule_reoptimization


@receiver(home_plan_stale, dispatch_uid="planning.home_plan_stale")
def replan_stale_home(sender, home_id: int, reason: str, **kwargs) -> None:
    """A home's plan may be stale: re-plan its remaining horizon (debounced)."""
    schedule_reoptimization(home_id, reason)
