"""Queries on the command outbox (read only)."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from devices.permissions import scope_to_owner

from .models import HubCommand


def commands_for(user: Any) -> QuerySet[HubCommand]:
    """Commands of the user's devices (staff: all); another user's command is simply not there (404)."""
    return scope_to_owner(HubCommand.objects.select_related("device", "hub"), user, "device__home__owner")
