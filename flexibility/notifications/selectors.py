"""Queries that read notifications."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Notification


def notifications_for_user(user: Any) -> QuerySet[Notification]:
    """A user's own notifications (staff too: notifications are personal)."""
    return Notification.objects.filter(user=user)
