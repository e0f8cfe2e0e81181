"""Optimization tasks (queue `optimization`, routed by settings): one run per message.

Reliability: acks_late + reject_on_worker_lost (settings) put a message back when
its worker dies mid-solve; transient database/broker errors retry with backoff;
the soft/hard time limits sit above the solver's own budget (set per message in
services.enqueue_run); the result write is idempotent (services.store_result).
"""
from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError

TRANSIENT = (OperationalError, InterfaceError, BrokerError, RedisConnectionError)


@shared_task(name="tasks.optimization.solve_run", bind=True, acks_late=True, reject_on_worker_lost=True,
          max_retries=5, soft_time_limit=settings.OPTIMIZER_TIME_LIMIT_S + 30,
          time_limit=settings.OPTIMIZER_TIME_LIMIT_S + 60)
def solve_run(self, run_pk: int):
    """Solve run `run_pk` and store its schedule (or why there is none)."""
    from flexibility import services

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
    from flexibility import services

    try:
        run = services.reoptimize(home_id, reason)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 60))
    return run.pk if run else None
