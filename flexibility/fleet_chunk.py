"""The day-ahead plan of a chunk of homes in one task.

The homes' rows are read with a fixed number of queries (problem_builder.load_inputs), their
runs are written with one INSERT, each home is solved here (no task per home), and the outcomes
are stored together (services.store_outcomes: schedules, recommendations, commands and
notifications in bulk), so the relay publishes the chunk's commands in one pass. A home whose data
is bad fails alone with its reason: at building, at solving, or, if storing the chunk at once
fails, when its outcome is stored on its own. A redelivered chunk skips the homes that already have
a run in the fleet run; a run left `running` by a lost worker is re-sent by the reaper.
"""
from __future__ import annotations

import logging
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from devices.models import Home

from . import problem_builder
from .models import FleetRun, OptimizationRun, RunStatus, RunTrigger

logger = logging.getLogger(__name__)


def plan_chunk(fleet_pk: int, home_ids: list[int], task_id: str = "") -> dict[str, int]:
    """Build, solve and store the day-ahead runs of `home_ids`; returns counts by outcome."""
    from .services import describe_exception, fail_run, solve_problem, store_outcomes

    fleet = FleetRun.objects.get(pk=fleet_pk)
    done = set(OptimizationRun.objects.filter(fleet_run=fleet, home_id__in=home_ids).values_list("home_id", flat=True))
    homes = list(Home.objects.filter(pk__in=home_ids).exclude(pk__in=done).select_related("tariff"))
    out = {"submitted": 0, "missing_data": 0, "error": 0}
    solved = []
    for run in _record_runs(fleet, homes, out, task_id):
        try:
            solved.append((run, solve_problem(run)))
        except Exception as exc:  # an invalid problem or a solver crash: this home only
            logger.exception("day-ahead run %s of home %s failed", run.pk, run.home_id)
            fail_run(run.pk, f"Unexpected error: {describe_exception(exc)}")
            out["error"] += 1
    with transaction.atomic():
        held = set(OptimizationRun.objects.select_for_update().filter(
            pk__in=[run.pk for run, _ in solved], status=RunStatus.RUNNING).values_list("pk", flat=True))
        todo = [(run, result) for run, result in solved if run.pk in held]  # not re-sent and finished meanwhile
        try:
            with transaction.atomic():
                store_outcomes(todo)
        except Exception:
            logger.exception("storing %s day-ahead runs at once failed; storing them one by one", len(todo))
            for run, result in todo:
                try:
                    with transaction.atomic():
                        store_outcomes([(run, result)])
                except Exception as exc:
                    logger.exception("storing day-ahead run %s of home %s failed", run.pk, run.home_id)
                    fail_run(run.pk, f"Unexpected error: {describe_exception(exc)}")
                    out["error"] += 1
        FleetRun.objects.filter(pk=fleet_pk).update(chunks_done=F("chunks_done") + 1)
    return out


def _record_runs(fleet: FleetRun, homes: list[Home], out: dict[str, int], task_id: str) -> list[OptimizationRun]:
    """One INSERT for the chunk: a running run per home whose problem could be built, a failed one
    (with the reason) per home whose could not. Returns the running ones."""
    if not homes:
        return []
    backend = settings.OPTIMIZER_BACKEND
    limit = float(settings.OPTIMIZER_TIME_LIMIT_S)
    horizons = {h.pk: problem_builder.local_day_horizon(h, fleet.delivery_day) for h in homes}
    inputs = problem_builder.load_inputs(homes, min(s for s, _ in horizons.values()),
                                         max(e for _, e in horizons.values()))
    now = timezone.now()
    rows = []
    for home in homes:
        start, end = horizons[home.pk]
        common = dict(home=home, trigger=RunTrigger.DAY_AHEAD, horizon_start=start, horizon_end=end, fleet_run=fleet)
        try:
            problem = problem_builder.build_problem(home, start, end, inputs=inputs[home.pk], now=now)
        except Exception as exc:  # MissingData and any other bad data: this home only
            missing = isinstance(exc, problem_builder.MissingData)
            if not missing:
                logger.exception("day-ahead problem of home %s could not be built", home.pk)
            out["missing_data" if missing else "error"] += 1
            rows.append(OptimizationRun(status=RunStatus.FAILED, input_hash="", problem={}, finished_at=now,
                                        error=str(exc) if missing else f"{type(exc).__name__}: {exc}", **common))
            continue
        rows.append(OptimizationRun(
            status=RunStatus.RUNNING, problem=problem, input_hash=problem_builder.input_hash(problem, backend, limit),
            backend=backend, time_limit_s=limit, attempts=1, started_at=now, last_enqueued_at=now, task_id=task_id,
            **common))
        out["submitted"] += 1
    with transaction.atomic():
        OptimizationRun.objects.bulk_create(rows)
    return [r for r in rows if r.status == RunStatus.RUNNING]

