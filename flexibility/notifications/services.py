"""Notifications to households: the one place that writes them."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from devices.models import Home

from .models import Notification


def notify(home: Home, kind: str, message: str, data: dict | None = None) -> Notification:
    """Notify the owner of `home`."""
    return notify_many([(home, kind, message, data)])[0]


def notify_many(notes: list[tuple[Home, str, str, dict | None]]) -> list[Notification]:
    """Notify the owners of many homes with one INSERT: (home, kind, message, data) each."""
    return Notification.objects.bulk_create([
        Notification(user_id=home.owner_id, home=home, kind=kind, message=message, data=data or {})
        for home, kind, message, data in notes])


@transaction.atomic
def dismiss_notification(notification: Notification) -> Notification:
    if notification.dismissed_at is None:
        notification.dismissed_at = timezone.now()
        notification.save(update_fields=["dismissed_at"])
    return notification


@transaction.atomic
def dismiss_all_notifications(user) -> int:
    return Notification.objects.filter(user=user, dismissed_at__isnull=True).update(dismissed_at=timezone.now())
