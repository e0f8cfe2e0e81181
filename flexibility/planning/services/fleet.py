"""The day-ahead fan-out: per time zone, plan tomorrow for every opted-in home, in chunks."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, F
from django.utils import timezone

from devices.models import Home

from .. import problem_builder, selectors, signals
from ..models import FleetRun, OptimizationRun, RunStatus, RunTrigger
from ..slots import local_day_horizon
from .runs import (
    add_commitments, bulk_create_json, describe_exception, ensure_forecasts_many, fail_run, solve_problem,
    store_outcomes,
)
from energy_manager import clock

logger = logging.getLogger(__name__)

FLEET_CHUNK_SIZE = 500
DAY_AHEAD_TAKEOVER = timedelta(hours=1)  # a zone's fan-out unfinished after this no longer holds its homes back


def start_due_day_ahead(now: Optional[datetime] = None, chunk_size: int = FLEET_CHUNK_SIZE) -> list[FleetRun]:
    """Per time zone of the opted-in homes: once the local DAY_AHEAD_LOCAL_TIME has passed today, plan
    tomorrow (local) for every home of that zone without a day-ahead run for it yet.

    Beat calls it every 15 minutes; it is idempotent (a home planned for the day is not selected again,
    and a zone whose fan-out is still being submitted is skipped), and a late tick catches up.
    """
    now = now or clock.now()
    at = datetime.strptime(settings.DAY_AHEAD_LOCAL_TIME, "%H:%M").time()
    fleets = []
    for zone in selectors.opted_in_time_zones():
        local = now.astimezone(ZoneInfo(zone))
        if local.time() < at:
            continue
        day = local.date() + timedelta(days=1)
        if FleetRun.objects.filter(delivery_day=day, timezone=zone, chunks_done__lt=F("chunks_total"),
                                   started_at__gt=timezone.now() - DAY_AHEAD_TAKEOVER).exists():
            continue
        home_ids = list(selectors.day_ahead_due_home_ids(zone, day))
        if home_ids:
            fleets.append(start_day_ahead(day, chunk_size, home_ids=home_ids, zone=zone))
    return fleets


def start_day_ahead(delivery_day=None, chunk_size: int = FLEET_CHUNK_SIZE, home_ids: Optional[list[int]] = None,
                    zone: str = "") -> FleetRun:
    """Create the fleet run and send one chunk task per `chunk_size` homes (default: every opted-in home)."""
    if delivery_day is None:
        delivery_day = (timezone.localtime(clock.now()) + timedelta(days=1)).date()
    if home_ids is None:
        home_ids = list(selectors.opted_in_home_ids())
    chunks = [home_ids[i:i + chunk_size] for i in range(0, len(home_ids), chunk_size)]
    fleet = FleetRun.objects.create(delivery_day=delivery_day, timezone=zone, homes=len(home_ids),
                                    chunks_total=len(chunks))
    for chunk in chunks:
        signals.fleet_chunk_due.send(sender=FleetRun, fleet_pk=fleet.pk, home_ids=chunk)
    if not chunks:
        refresh_fleet_summaries([fleet.pk])
        fleet.refresh_from_db()
    return fleet


def plan_fleet_chunk(fleet_pk: int, home_ids: list[int], task_id: str = "") -> dict[str, int]:
    """Build, solve and store the day-ahead runs of `home_ids` in this task; returns counts by outcome.

    The homes' problems are built here (forecasts first), their runs are written with one INSERT, each home is solved here (no task per home), and the outcomes
    are stored together (runs.store_outcomes: schedules, recommendations, commands and notifications
    in bulk), so the relay publishes the chunk's commands in one pass. A home whose data is bad fails
    alone with its reason: at building, at solving, or, if storing the chunk at once fails, when its
    outcome is stored on its own. A redelivered chunk skips the homes that already have a run in the
    fleet run; a run left `running` by a lost worker is re-sent by the reaper.
    """
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
        except (OperationalError, InterfaceError):
            raise  # the database, not a home: the task retries; the reaper re-sends the runs left running
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
    horizons = {h.pk: local_day_horizon(h, fleet.delivery_day) for h in homes}
    # Day-ahead plans start from fresh forecasts, made before building; a home whose forecast fails is left
    # to the builder, which names what is missing for that home only. The rows read for the forecast checks
    # (a fixed number of queries), with the forecasts stored in their place, are the problems' rows.
    inputs = ensure_forecasts_many({h.pk: (h, *horizons[h.pk]) for h in homes}, refresh=True)
    unread = [h for h in homes if h.pk not in inputs]  # a horizon the builder refuses: it names why
    if unread:
        inputs.update(problem_builder.load_inputs(unread, min(horizons[h.pk][0] for h in unread),
                                                  max(horizons[h.pk][1] for h in unread)))
    now = timezone.now()
    rows, problems = [], {}
    common = {home.pk: dict(home=home, trigger=RunTrigger.DAY_AHEAD, horizon_start=horizons[home.pk][0],
                            horizon_end=horizons[home.pk][1], fleet_run=fleet) for home in homes}
    for home in homes:
        start, end = horizons[home.pk]
        try:
            problems[home.pk] = problem_builder.build_problem(home, start, end, now=clock.now(), inputs=inputs[home.pk])
        except Exception as exc:  # MissingData and any other bad data: this home only
            missing = isinstance(exc, problem_builder.MissingData)
            if not missing:
                logger.exception("day-ahead problem of home %s could not be built", home.pk)
            out["missing_data" if missing else "error"] += 1
            rows.append(OptimizationRun(status=RunStatus.FAILED, input_hash="", problem={}, finished_at=now,
                                        error=str(exc) if missing else f"{type(exc).__name__}: {exc}",
                                        **common[home.pk]))
    add_commitments(problems)
    for home_id, problem in problems.items():
        rows.append(OptimizationRun(
            status=RunStatus.RUNNING, problem=problem, input_hash=problem_builder.input_hash(problem, backend, limit),
            backend=backend, time_limit_s=limit, attempts=1, started_at=now, last_enqueued_at=now, task_id=task_id,
            **common[home_id]))
        out["submitted"] += 1
    with transaction.atomic():
        bulk_create_json(OptimizationRun, rows)
    return [r for r in rows if r.status == RunStatus.RUNNING]


def refresh_fleet_summaries(pks: Optional[list[int]] = None) -> None:
    """Counts per status of each unfinished fleet run; closed once every chunk ran and no run is open."""
    qs = FleetRun.objects.filter(finished_at__isnull=True)
    if pks is not None:
        qs = qs.filter(pk__in=pks)
    for fleet in qs:
        counts = dict(OptimizationRun.objects.filter(fleet_run=fleet).values_list("status")
                      .annotate(n=Count("id")).values_list("status", "n"))
        fleet.counts = counts
        open_runs = counts.get(RunStatus.QUEUED, 0) + counts.get(RunStatus.RUNNING, 0)
        fields = ["counts"]
        if fleet.chunks_done >= fleet.chunks_total and open_runs == 0:
            last = (OptimizationRun.objects.filter(fleet_run=fleet).order_by("-finished_at")
                    .values_list("finished_at", flat=True).first()) or timezone.now()
            fleet.finished_at = max(last, fleet.started_at)
            fleet.duration_s = (fleet.finished_at - fleet.started_at).total_seconds()
            fields += ["finished_at", "duration_s"]
        fleet.save(update_fields=fields)
