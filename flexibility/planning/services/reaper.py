"""The stuck-run reaper: re-sends what a lost message or a killed worker left behind."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import OptimizationRun, RunStatus
from .fleet import refresh_fleet_summaries
from .runs import enqueue_run, is_final, mark_failed


def reap_stuck_runs(stuck_after_s: Optional[float] = None, now: Optional[datetime] = None) -> dict[str, int]:
    """Re-send runs stuck in queued/running past the threshold; fail those out of attempts.

    A broker that lost its messages (restart without persistence) or a worker killed
    outright leaves runs behind; this puts them back on the queue.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stuck_after_s if stuck_after_s is not None else settings.OPTIMIZATION_STUCK_AFTER_S)
    max_attempts = settings.OPTIMIZATION_MAX_ATTEMPTS
    counts = {"requeued": 0, "failed": 0}
    stuck = list(OptimizationRun.objects.filter(status=RunStatus.QUEUED, last_enqueued_at__lt=cutoff)
                 .values_list("pk", flat=True)[:5000])
    stuck += list(OptimizationRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=cutoff)
                  .values_list("pk", flat=True)[:5000])
    for pk in stuck:
        with transaction.atomic():
            run = OptimizationRun.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if run is None or is_final(run):
                continue
            if run.attempts >= max_attempts or run.requeues >= max_attempts:
                mark_failed(run, f"Gave up: stuck in {run.status} after {run.attempts} attempts and "
                           f"{run.requeues} re-sends.")
                counts["failed"] += 1
                continue
            run.requeues += 1
            run.status = RunStatus.QUEUED
            run.save(update_fields=["requeues", "status"])
            enqueue_run(run)
            counts["requeued"] += 1
    refresh_fleet_summaries()
    return counts
