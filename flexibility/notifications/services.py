"""Notifications to households: the one place that writes them."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from devices.models import Home

from .models import Notification


def notify(home: Home, kind: str, message: str, data: dict | None = None) -> Notification:
    """Notify the owner of `home`."""
    return Notification.objects.create(user_id=home.owner_id, home=home, kind=kind, message=message, data=data or {})


@transaction.atomic
def dismiss_notification(notification: Notification) -> Notification:
    if notification.dismissed_at is None:
        notification.dismissed_at = timezone.now()
        notification.save(update_fields=["dismissed_at"])
    return notification


@transaction.atomic
def dismiss_all_notifications(user) -> int:
    return Notification.objects.filter(user=user, dismissed_at__isnull=True).update(dismissed_at=timezone.now())
