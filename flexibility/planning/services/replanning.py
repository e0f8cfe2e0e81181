"""Re-planning a home whose plan went stale (a new cycle, a changed preference, a new forecast).

devices and the hub listener announce `devices.signals.home_plan_stale`; this app's receiver calls
`schedule_reoptimization`, which debounces per home and announces `signals.replan_due`.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import Iterable, Optional

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.models import Home
from energy_manager.celery import app
from flexibility.notifications.services import notify

from .. import selectors, signals
from ..models import OptimizationRun, RunTrigger
from ..problem_builder import MissingData
from ..slots import RESOLUTION_MIN, covering_horizon, floor_to_slot
from .runs import submit_run
from energy_manager import clock

log = logging.getLogger(__name__)


def eager() -> bool:
    """Embedded mode (no broker): tasks run in-process, so there is nothing to debounce."""
    return bool(app.conf.task_always_eager)


@functools.lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)  # its connection pool is reused across calls (and reset after fork)


def _redis():
    return _redis_for(app.conf.broker_url)


def schedule_reoptimization(home_id: int, reason: str) -> None:
    """Re-plan the remaining horizon of a home, at most once per debounce window.

    The first trigger sets a Redis key and sends the task with a countdown; triggers
    arriving before it runs are absorbed by the key. Embedded mode re-plans at once.
    """
    def due(countdown_s: float) -> None:
        signals.replan_due.send(sender=Home, home_id=home_id, reason=reason, countdown_s=countdown_s)

    if eager():
        transaction.on_commit(lambda: due(0.0))
        return
    debounce_s = settings.OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S
    try:
        first = _redis().set(f"hems:reoptimize:{home_id}", reason, nx=True, ex=debounce_s + 60)
    except redis.RedisError as exc:
        # The change that asked is committed; the rolling tick re-plans a home whose open requests are newer
        # than its plan, so a lost trigger delays the re-plan, it does not lose it.
        log.warning("re-plan of home %s not triggered (%s): %s", home_id, reason, exc)
        return
    if first:
        transaction.on_commit(lambda: due(debounce_s))


def replans_in_progress(home_ids: Iterable[int]) -> dict[int, datetime]:
    """When the re-plan in progress of each home started (record-keeping clock, like `created_at`): what was
    recorded before it is in the plan it is making, even though its run is not stored yet."""
    ids = list(home_ids)
    if eager() or not ids:
        return {}
    try:
        values = _redis().mget([f"hems:replanning:{h}" for h in ids])
    except redis.RedisError:
        return {}
    return {h: datetime.fromisoformat(v.decode()) for h, v in zip(ids, values) if v}


def reoptimize(home_id: int, reason: str) -> Optional[OptimizationRun]:
    """Task body: release the debounce key (a change from now on asks again), then plan from now to the end of
    the last open request; while it plans, `replans_in_progress` names it (the rolling tick does not take what
    it is planning for a lost trigger)."""
    if eager():
        return _reoptimize(home_id, reason)
    _redis().pipeline().delete(f"hems:reoptimize:{home_id}").set(
        f"hems:replanning:{home_id}", timezone.now().isoformat(), ex=600).execute()
    try:
        return _reoptimize(home_id, reason)
    finally:
        _redis().delete(f"hems:replanning:{home_id}")


def _reoptimize(home_id: int, reason: str) -> Optional[OptimizationRun]:
    home = Home.objects.filter(pk=home_id).first()
    if home is None:
        return None
    now = clock.now()
    # The current plan's end (prices further out may not be published yet), stretched to the last open request.
    plan_end = selectors.current_plan_end(home, now)
    if plan_end is not None and plan_end - floor_to_slot(now) < timedelta(minutes=RESOLUTION_MIN):
        plan_end = None
    start, base = covering_horizon(now, None, base_end=plan_end)
    _, end = covering_horizon(now, selectors.open_requests_end(home, now), base_end=plan_end)
    for horizon_end in dict.fromkeys([end, base]):  # the requests' horizon, else (data missing) the plan's
        try:
            run, _ = submit_run(home, trigger=RunTrigger.REOPTIMIZE, horizon_start=start, horizon_end=horizon_end,
                                refresh_forecasts=True)
        except MissingData as exc:
            notify(home, "plan_not_updated", f"Your plan could not be made up to {horizon_end.isoformat()} "
                   f"after {reason}: {exc}", {"reason": reason, "until": horizon_end.isoformat()})
            continue
        return run
    return None
