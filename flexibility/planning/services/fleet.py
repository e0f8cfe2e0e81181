"""The day-ahead fan-out: per time zone, plan tomorrow for every opted-in home, in chunks."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F
from django.utils import timezone

from devices.models import Home

from .. import selectors, signals
from ..models import FleetRun, OptimizationRun, RunStatus, RunTrigger
from ..problem_builder import MissingData
from ..slots import local_day_horizon
from .runs import submit_run

logger = logging.getLogger(__name__)

FLEET_CHUNK_SIZE = 500
DAY_AHEAD_TAKEOVER = timedelta(hours=1)  # a zone's fan-out unfinished after this no longer holds its homes back


def start_due_day_ahead(now: Optional[datetime] = None, chunk_size: int = FLEET_CHUNK_SIZE) -> list[FleetRun]:
    """Per time zone of the opted-in homes: once the local DAY_AHEAD_LOCAL_TIME has passed today, plan
    tomorrow (local) for every home of that zone without a day-ahead run for it yet.

    Beat calls it every 15 minutes; it is idempotent (a home planned for the day is not selected again,
    and a zone whose fan-out is still being submitted is skipped), and a late tick catches up.
    """
    now = now or timezone.now()
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
        delivery_day = (timezone.localtime(timezone.now()) + timedelta(days=1)).date()
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


def plan_fleet_chunk(fleet_pk: int, home_ids: list[int]) -> dict[str, int]:
    """Submit the day-ahead run of each home; one home's failure is recorded and the rest go on.

    A redelivered chunk skips the homes that already have a run in this fleet run.
    """
    fleet = FleetRun.objects.get(pk=fleet_pk)
    out = {"submitted": 0, "missing_data": 0, "error": 0}
    done = set(OptimizationRun.objects.filter(fleet_run=fleet, home_id__in=home_ids).values_list("home_id", flat=True))
    for home in Home.objects.filter(pk__in=home_ids).exclude(pk__in=done).select_related("tariff"):
        start, end = local_day_horizon(home, fleet.delivery_day)
        try:
            submit_run(home, trigger=RunTrigger.DAY_AHEAD, horizon_start=start, horizon_end=end, fleet_run=fleet,
                       force=True, refresh_forecasts=True)
            out["submitted"] += 1
        except MissingData as exc:
            _record_failed_submit(home, fleet, start, end, str(exc))
            out["missing_data"] += 1
        except Exception as exc:  # one home never blocks the others
            logger.exception("day-ahead submit failed for home %s", home.pk)
            _record_failed_submit(home, fleet, start, end, f"{type(exc).__name__}: {exc}")
            out["error"] += 1
    FleetRun.objects.filter(pk=fleet_pk).update(chunks_done=F("chunks_done") + 1)
    return out


def _record_failed_submit(home: Home, fleet: FleetRun, start: datetime, end: datetime, error: str) -> None:
    """A failed run row, so the summary counts the home and the admin shows why."""
    now = timezone.now()
    OptimizationRun.objects.create(
        home=home, trigger=RunTrigger.DAY_AHEAD, status=RunStatus.FAILED, input_hash="", problem={},
        horizon_start=start, horizon_end=end, finished_at=now, error=error, fleet_run=fleet,
    )


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
