"""Queries that read the household/DER domain, always scoped to a user."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from .models import (
    ComfortPreference, Cycle, Device, EVSession, Home, Hub, Measurement, SignalSeries, Tariff,
)
from .permissions import scope_to_owner, writes_any_scope

# A series holds at most one week of values (SignalSeries.clean), which bounds range queries.
MAX_SERIES_SPAN = timedelta(days=7)


def homes_for(user: Any) -> QuerySet[Home]:
    return scope_to_owner(Home.objects.select_related("owner", "tariff").prefetch_related("do_not_disturb_windows"),
                          user, "owner")


def hubs_for(user: Any) -> QuerySet[Hub]:
    """Households see the hubs claimed by their homes; unclaimed hubs are operators' business."""
    return scope_to_owner(Hub.objects.select_related("home"), user, "home__owner")


def devices_for(user: Any) -> QuerySet[Device]:
    return scope_to_owner(Device.objects.select_related("home", "hub"), user, "home__owner")


def cycles_for(user: Any) -> QuerySet[Cycle]:
    return scope_to_owner(Cycle.objects.select_related("device"), user, "device__home__owner")


def ev_sessions_for(user: Any) -> QuerySet[EVSession]:
    return scope_to_owner(EVSession.objects.select_related("device"), user, "device__home__owner")


def comfort_for(device: Device) -> ComfortPreference:
    """The device's comfort preference, or an unsaved empty one (all defaults)."""
    try:
        return device.comfort
    except ComfortPreference.DoesNotExist:
        return ComfortPreference(device=device)


def signals_for(user: Any) -> QuerySet[SignalSeries]:
    """Area-wide series (no home) plus the series of the user's own homes."""
    qs = SignalSeries.objects.all()
    if user is None or not user.is_authenticated:
        return qs.none()
    if writes_any_scope(user):
        return qs
    return qs.filter(Q(home__isnull=True) | Q(home__owner=user))


def signals_overlapping(qs: QuerySet[SignalSeries], start: datetime | None, end: datetime | None) -> QuerySet[SignalSeries]:
    """Series that cover part of [start, end). `end` of a series is derived, so bound the scan by the max span."""
    if end is not None:
        qs = qs.filter(start__lt=end)
    if start is not None:
        candidates = qs.filter(start__gt=start - MAX_SERIES_SPAN).only("id", "start", "resolution_minutes", "values")
        ids = [s.id for s in candidates if s.end > start]
        qs = qs.filter(id__in=ids)
    return qs


def measurements_for(user: Any) -> QuerySet[Measurement]:
    return scope_to_owner(Measurement.objects.all(), user, "home__owner")


def tariffs() -> QuerySet[Tariff]:
    return Tariff.objects.order_by("code")


def tariffs_for(user: Any) -> QuerySet[Tariff]:
    """Public tariffs plus the user's own; staff see all."""
    qs = tariffs().select_related("owner")
    if user is None or not user.is_authenticated:
        return qs.filter(owner__isnull=True)
    if user.is_staff:
        return qs
    return qs.filter(Q(owner__isnull=True) | Q(owner=user))
