"""Notifications to households: the one place that writes them."""
from __future__ import annotations

from flexibility.models import Notification


def notify(home, kind: str, message: str, data: dict | None = None) -> Notification:
    """Notify the owner of `home`."""
    return notify_many([(home, kind, message, data)])[0]


def notify_many(notes: list[tuple]) -> list[Notification]:
    """Notify the owners of many homes with one INSERT: (home, kind, message, data) each."""
    return Notification.objects.bulk_create([
        Notification(user_id=home.owner_id, home=home, kind=kind, message=message, data=data or {})
        for home, kind, message, data in notes])
