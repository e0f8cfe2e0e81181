"""Queries that read runs, schedules, and recommendations, scoped to their owner."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from django.conf import settings
from django.db.models import Exists, Max, OuterRef, QuerySet
from django.shortcuts import get_object_or_404

from devices.models import Cycle, CycleState, EVSession, Home
from devices.permissions import scope_to_owner

from . import signals
from .models import OptimizationRun, Recommendation, RunStatus, RunTrigger, Schedule
from .slots import RESOLUTION_MIN
from energy_manager import clock


def home_for_user(user: Any, home_id: int) -> Home:
    """The home if `user` may see it (owner or staff), else 404."""
    return get_object_or_404(scope_to_owner(Home.objects.all(), user, "owner"), pk=home_id)


def runs_for_user(user: Any) -> QuerySet[OptimizationRun]:
    return scope_to_owner(OptimizationRun.objects.select_related("home"), user, "home__owner")


def schedules_for_home(home: Home) -> QuerySet[Schedule]:
    """History, newest first."""
    return Schedule.objects.filter(home=home).select_related("run").order_by("-created_at", "-id")


def latest_schedule(home: Home) -> Optional[Schedule]:
    """The newest schedule of a succeeded run of `home` whose horizon has not ended yet, else the newest one."""
    qs = schedules_for_home(home).filter(run__status=RunStatus.SUCCEEDED)
    return qs.filter(run__horizon_end__gt=clock.now()).first() or qs.first()


def current_plan_end(home: Home, now: datetime) -> Optional[datetime]:
    """Where the home's latest plan that covers `now` ends (None without one)."""
    s = (Schedule.objects.filter(home=home, start__lte=now).order_by("-created_at", "-id")
         .only("start", "resolution_minutes", "slots").first())
    if s is None:
        return None
    end = s.start + timedelta(minutes=s.resolution_minutes * s.slots)
    return end if end > now else None


def recommendations_for_user(user: Any) -> QuerySet[Recommendation]:
    return scope_to_owner(Recommendation.objects.select_related("device", "cycle"), user, "home__owner")


def opted_in_home_ids() -> QuerySet:
    return Home.objects.filter(global_optimizer_opt_in=True).order_by("id").values_list("id", flat=True)


def opted_in_time_zones() -> list[str]:
    """The IANA zones of the homes in the day-ahead fleet run (a handful: one query)."""
    return sorted(Home.objects.filter(global_optimizer_opt_in=True).values_list("timezone", flat=True).distinct())


def day_ahead_due_home_ids(zone: str, delivery_day) -> QuerySet:
    """Opted-in homes of `zone` that have no day-ahead run for `delivery_day` yet (failed submits count)."""
    planned = OptimizationRun.objects.filter(home=OuterRef("pk"), trigger=RunTrigger.DAY_AHEAD,
                                             fleet_run__delivery_day=delivery_day)
    return (Home.objects.filter(global_optimizer_opt_in=True, timezone=zone).exclude(Exists(planned))
            .order_by("id").values_list("id", flat=True))


def open_cycles(home_ids: list[int], now: datetime,
                states: tuple[str, ...] = (CycleState.SCHEDULED, CycleState.RUNNING)) -> QuerySet:
    """The homes' cycles the HEMS still has to plan: on a device it manages, not yet past their window."""
    return Cycle.objects.filter(device__home_id__in=home_ids, device__allow_hems=True, latest_end__gt=now,
                                state__in=states)


def open_ev_sessions(home_ids: list[int], now: datetime) -> QuerySet:
    """The homes' EV sessions the HEMS still has to plan: on a charger it manages, the car not yet gone."""
    return EVSession.objects.filter(device__home_id__in=home_ids, device__allow_hems=True, departure__gt=now)


def open_requests_end(home: Home, now: datetime) -> Optional[datetime]:
    """When the home's last open request ends: a cycle's window, an EV departure, or one announced by a
    receiver of `signals.open_request_end` (grid activations). None when nothing is open."""
    cycles = open_cycles([home.pk], now)
    sessions = open_ev_sessions([home.pk], now)
    ends = [cycles.aggregate(end=Max("latest_end"))["end"], sessions.aggregate(end=Max("departure"))["end"]]
    ends += [end for _, end in signals.open_request_end.send(sender=Home, home=home, now=now)]
    return max((end for end in ends if end is not None), default=None)


def committed_grid_requests(horizons: dict[int, tuple[datetime, int]],
                            penalty_eur_per_kwh: Optional[float] = None) -> dict[int, Optional[dict]]:
    """Per home id, the bounds on net import the home committed to (`signals.committed_bounds`) on its plan's
    slots (start, number of 15-minute slots), as a soft `grid_request` (FORMAT.md), or None: kept whenever
    the devices allow it, yet a home whose situation changed (a car that arrived) still gets a plan.
    One question for all the homes (a day-ahead chunk, the runs stored together)."""
    if not horizons:
        return {}
    penalty = settings.ACTIVATION_REPLAN_PENALTY_EUR_PER_KWH if penalty_eur_per_kwh is None else penalty_eur_per_kwh
    step = timedelta(minutes=RESOLUTION_MIN)
    span_start = min(start for start, _ in horizons.values())
    span_end = max(start + step * slots for start, slots in horizons.values())
    series: dict[int, list[dict]] = {}
    for _, answers in signals.committed_bounds.send(sender=Home, home_ids=list(horizons), start=span_start,
                                                    end=span_end):
        for home_id, bounds in (answers or {}).items():
            series.setdefault(home_id, []).extend(bounds)
    return {home_id: grid_request_from_bounds(series.get(home_id, []), start, slots, RESOLUTION_MIN, penalty)
            for home_id, (start, slots) in horizons.items()}


def grid_request_from_bounds(series: list[dict], start: datetime, slots: int, resolution_minutes: int,
                             penalty_eur_per_kwh: Optional[float]) -> Optional[dict]:
    """Bounds on net import ({start, resolution_minutes, min_kw, max_kw}, None = free) laid on the plan's
    slots as a `grid_request` (FORMAT.md; penalty None = hard). Overlapping bounds are intersected; None
    when nothing is bounded."""
    step = timedelta(minutes=resolution_minutes)
    lo: list[Optional[float]] = [None] * slots
    hi: list[Optional[float]] = [None] * slots
    for s in series:
        res = timedelta(minutes=s["resolution_minutes"])
        for t in range(slots):
            i = (start + step * t - s["start"]) // res
            if not 0 <= i < len(s["min_kw"]):
                continue
            if s["min_kw"][i] is not None:
                lo[t] = s["min_kw"][i] if lo[t] is None else max(lo[t], s["min_kw"][i])
            if s["max_kw"][i] is not None:
                hi[t] = s["max_kw"][i] if hi[t] is None else min(hi[t], s["max_kw"][i])
    if all(v is None for v in lo + hi):
        return None
    hi = [h if h is None or l is None else max(h, l) for l, h in zip(lo, hi)]
    return {"min_net_import_kw": lo, "max_net_import_kw": hi, "penalty_eur_per_kwh": penalty_eur_per_kwh}
