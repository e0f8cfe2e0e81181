"""Grid flexibility tasks (queue: optimization): offers per chunk of homes, re-plans under activation shares.

Names keep their historical `tasks.flex.*` prefix (beat rows, routes, queued messages use it).
"""
from __future__ import annotations

from datetime import date

from celery import shared_task

from flexibility.grid import services


@shared_task(name="tasks.flex.build_offer", acks_late=True)
def build_offer(home_id: int, delivery_day: str) -> int | None:
    """Build one home's offer for a delivery day (after its day-ahead run)."""
    offer = services.build_offer(home_id, date.fromisoformat(delivery_day))
    return offer.pk if offer else None


@shared_task(name="tasks.flex.build_offers", acks_late=True)
def build_offers(home_ids: list[int], delivery_day: str) -> int:
    """Build the offers of a chunk of homes for a delivery day (after their day-ahead runs)."""
    offers = services.build_offers(home_ids, date.fromisoformat(delivery_day))
    return sum(1 for offer in offers.values() if offer is not None)


@shared_task(name="tasks.flex.replan_share", acks_late=True)
def replan_share(share_id: int) -> str:
    """Re-optimize one home with its activation share as a hard constraint, then dispatch (messages sent
    before activations were re-planned in chunks)."""
    return services.replan_share(share_id).status


@shared_task(name="tasks.flex.replan_shares", acks_late=True)
def replan_shares(share_ids: list[int]) -> int:
    """Re-optimize a chunk of an activation's homes under their shares, then dispatch; returns how many were planned."""
    return sum(1 for status in services.replan_shares(share_ids).values() if status == "planned")


@shared_task(name="tasks.flex.freeze_due_offers")
def freeze_due_offers() -> int:
    """Periodic: mark offers past gate closure as frozen."""
    return services.freeze_due_offers()
