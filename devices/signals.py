"""Events of the household domain, for the layers above to act on.

`devices` never calls planning: it announces that a home's plan may be stale and
flexibility.planning (which subscribes in its AppConfig.ready) decides what to do.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

# kwargs: home_id (int), reason (str). Sent after the transaction that changed the home commits.
home_plan_stale = Signal()


def announce_plan_stale(sender: object, home_id: int, reason: str, robust: bool = False) -> None:
    """Send `home_plan_stale` once the current transaction commits.

    `robust`: a receiver's failure is logged instead of raised (callers whose own write must
    stand whatever re-planning does, such as the hub listener).
    """
    def send() -> None:
        if not robust:
            home_plan_stale.send(sender=sender, home_id=home_id, reason=reason)
            return
        for receiver, result in home_plan_stale.send_robust(sender=sender, home_id=home_id, reason=reason):
            if isinstance(result, Exception):
                log.error("plan-stale receiver %r failed for home %s", receiver, home_id, exc_info=result)

    transaction.on_commit(send)
