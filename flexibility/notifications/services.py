"""Notifications to households: the one place that writes them."""
from __future__ import annotations

from flexibility.models import Notification


def notify(home, kind: str, message: str, data: dict | None = None) -> Notification:
    """Notify the owner of `home`."""
    return Notification.objects.create(user_id=home.owner_id, home=home, kind=kind, message=message, data=data or {})
