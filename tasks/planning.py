"""Planning tasks: solving runs, re-plans and day-ahead chunks (queue `optimization`), the day-ahead
fan-out and the stuck-run reaper (queue `default`; they never solve).

Task names keep their historical `tasks.optimization.*` / `tasks.periodic.*` prefixes: beat rows,
queue routes (settings.CELERY_TASK_ROUTES) and messages already queued use them.

Reliability: acks_late + reject_on_worker_lost (settings) put a message back when
its worker dies mid-solve; transient database/broker errors retry with backoff;
the soft/hard time limits sit above the solver's own budget (set per message in
services.enqueue_run); the result write is idempotent (services.store_result).
"""
from __future__ import annotations

from datetime import date, datetime

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError

from flexibility.planning import services
from flexibility.planning.services import rolling

TRANSIENT = (OperationalError, InterfaceError, BrokerError, RedisConnectionError)


@shared_task(name="tasks.optimization.solve_run", bind=True, acks_late=True, reject_on_worker_lost=True,
          max_retries=5, soft_time_limit=settings.OPTIMIZER_TIME_LIMIT_S + 30,
          time_limit=settings.OPTIMIZER_TIME_LIMIT_S + 60)
def solve_run(self, run_pk: int):
    """Solve run `run_pk` and store its schedule (or why there is none)."""
    try:
        return services.execute_run(run_pk, task_id=self.request.id or "")
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            services.fail_run(run_pk, f"Gave up after {self.request.retries} retries: "
                                      f"{services.describe_exception(exc)}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))
    except SoftTimeLimitExceeded:
        services.fail_run(run_pk, "The task exceeded its soft time limit (solver budget + 30 s).")
        return "failed"
    except Exception as exc:
        services.fail_run(run_pk, f"Unexpected error: {services.describe_exception(exc)}")
        raise


@shared_task(name="tasks.optimization.reoptimize_home", bind=True, acks_late=True, max_retries=5)
def reoptimize_home(self, home_id: int, reason: str):
    """Debounced re-plan of a home's remaining horizon (services.schedule_reoptimization)."""
    try:
        run = services.reoptimize(home_id, reason)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))
    return run.pk if run else None


@shared_task(name="tasks.periodic.day_ahead")
def day_ahead(delivery_day: str | None = None) -> list[int]:
    """Beat (settings.PERIODIC_TASKS): plan tomorrow for the homes whose local DAY_AHEAD_LOCAL_TIME has passed.

    With `delivery_day` (an operator running it by hand): every opted-in home for that day.
    Returns the fleet run ids.
    """
    if delivery_day:
        return [services.start_day_ahead(date.fromisoformat(delivery_day)).pk]
    return [fleet.pk for fleet in services.start_due_day_ahead()]


@shared_task(name="tasks.periodic.day_ahead_chunk", bind=True, acks_late=True, max_retries=5)
def day_ahead_chunk(self, fleet_pk: int, home_ids: list[int]):
    """Plan one chunk of homes: build, solve and store their day-ahead runs in this task."""
    try:
        return services.plan_fleet_chunk(fleet_pk, home_ids, task_id=self.request.id or "")
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))


@shared_task(name="tasks.planning.rolling_tick")
def rolling_tick() -> int:
    """Beat (settings.PERIODIC_TASKS, every ROLLING_TICK_MINUTES): check the homes with a current plan, in chunks."""
    return rolling.start_tick()


@shared_task(name="tasks.planning.rolling_chunk", bind=True, acks_late=True, max_retries=3)
def rolling_chunk(self, home_ids: list[int], now: str) -> int:
    """Re-plan the homes of one chunk that left their plan; returns how many were asked for."""
    try:
        return rolling.check_chunk(home_ids, datetime.fromisoformat(now)).replans
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))


@shared_task(name="tasks.periodic.reap_stuck_runs")
def reap_stuck_runs():
    """Re-send runs stuck in queued/running; fail those out of attempts; refresh fleet summaries."""
    return services.reap_stuck_runs()
