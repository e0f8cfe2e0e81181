"""Actions that write optimization runs, schedules, recommendations and fleet runs.

Flow: `submit_run` records a queued run (with a snapshot and hash of its input)
and enqueues `tasks.optimization.solve_run` after commit; `execute_run` (the task
body) solves outside any transaction and `store_result` writes the schedule once,
under a row lock on the run. `reap_stuck_runs` re-sends what a lost message left
behind; `start_due_day_ahead` fans the day-ahead runs out in chunks, per time zone.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Optional

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from devices.models import Cycle, Device, Home
from energy_manager import metrics
from energy_manager.api_errors import BrokerUnavailable
from flexibility.models import (
    FINAL_RUN_STATUSES, FleetRun, Notification, OptimizationRun, Recommendation, RecommendationStatus,
    RunStatus, RunTrigger, Schedule,
)
from flexibility.notifications import notify
from flexibility import problem_builder
from flexibility.optimizer import BACKENDS  # noqa: F401  re-exported for the API
from flexibility.problem_builder import MissingData, object_pk

logger = logging.getLogger(__name__)

MAX_TIME_LIMIT_S = 120.0
FLEET_CHUNK_SIZE = 500
COMMAND_SLOT_LIMIT = 96  # a command carries at most one day of 15-minute setpoints


class RunGaveUp(Exception):
    """A run exceeded its attempts; it is marked failed."""


# ------------------------------------------------------------------------------- submit
def _tasks():
    from tasks import optimization  # late import: tasks import services

    return optimization


def eager() -> bool:
    from energy_manager.celery import app

    return bool(app.conf.task_always_eager)


def enqueue_run(run: OptimizationRun) -> None:
    """Send the solve task once the run row is committed (workers must be able to see it).

    With the broker down the run stays committed as queued (the reaper re-sends it) and
    BrokerUnavailable (-> 503) tells the caller.
    """
    run_pk, limit = run.pk, run.time_limit_s

    def send() -> None:
        try:
            _tasks().solve_run.apply_async(
                args=[run_pk], soft_time_limit=limit + 30, time_limit=limit + 60,
            )
        except (KombuOperationalError, RedisConnectionError) as exc:
            logger.warning("run %s queued, broker unreachable: %s", run_pk, exc)
            raise BrokerUnavailable(f"Run {run_pk} is recorded as queued but the task broker is unreachable; "
                                    "it will be sent again automatically.") from exc

    OptimizationRun.objects.filter(pk=run_pk).update(last_enqueued_at=timezone.now())
    transaction.on_commit(send)


@transaction.atomic
def submit_run(
    home: Home,
    trigger: str = RunTrigger.API,
    horizon_start: Optional[datetime] = None,
    horizon_end: Optional[datetime] = None,
    objective: Optional[str] = None,
    backend: Optional[str] = None,
    time_limit_s: Optional[float] = None,
    force: bool = False,
    grid_request: Optional[dict] = None,
    requested_by=None,
    fleet_run: Optional[FleetRun] = None,
) -> tuple[OptimizationRun, bool]:
    """Record and enqueue a run for `home`; an identical recent run is returned instead (unless `force`).

    Raises MissingData (-> 422) before anything is written when the data cannot describe the horizon.
    """
    backend = backend or settings.OPTIMIZER_BACKEND
    time_limit_s = float(time_limit_s if time_limit_s is not None else settings.OPTIMIZER_TIME_LIMIT_S)
    Home.objects.select_for_update().filter(pk=home.pk).first()  # serialize submits per home (dedup race)
    problem = problem_builder.build_problem(home, horizon_start, horizon_end, objective=objective,
                                            grid_request=grid_request)
    digest = problem_builder.input_hash(problem, backend, time_limit_s)
    if not force:
        since = timezone.now() - timedelta(seconds=settings.OPTIMIZATION_DEDUP_WINDOW_S)
        existing = (OptimizationRun.objects.filter(home=home, input_hash=digest, queued_at__gte=since)
                    .exclude(status=RunStatus.FAILED).order_by("-queued_at").first())
        if existing is not None:
            return existing, False
    start = datetime.fromisoformat(problem["start"])
    end = start + timedelta(minutes=problem["resolution_min"] * problem["slots"])
    run = OptimizationRun(
        home=home, trigger=trigger, requested_by=requested_by, input_hash=digest, problem=problem,
        backend=backend, time_limit_s=time_limit_s, horizon_start=start, horizon_end=end, fleet_run=fleet_run,
    )
    run.full_clean()
    run.save()
    enqueue_run(run)
    return run, True


# ------------------------------------------------------------------------------ execute
def _final(run: OptimizationRun) -> bool:
    return run.status in FINAL_RUN_STATUSES


@transaction.atomic
def start_attempt(run_pk: int, task_id: str = "") -> Optional[OptimizationRun]:
    """Mark the run running (one more attempt); None when there is nothing to do."""
    run = OptimizationRun.objects.select_for_update().filter(pk=run_pk).first()
    if run is None or _final(run):
        return None
    if run.attempts >= settings.OPTIMIZATION_MAX_ATTEMPTS:
        _fail(run, f"Gave up after {run.attempts} attempts; the last one did not finish "
                   "(worker lost or time limit).")
        return None
    run.status = RunStatus.RUNNING
    run.started_at = timezone.now()
    run.attempts += 1
    run.task_id = task_id or run.task_id
    run.save(update_fields=["status", "started_at", "attempts", "task_id"])
    return run


def _fail(run: OptimizationRun, error: str) -> None:
    run.status = RunStatus.FAILED
    run.error = error
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


@transaction.atomic
def fail_run(run_pk: int, error: str) -> None:
    """Record a failure with its reason (never over a final status)."""
    run = OptimizationRun.objects.select_for_update().filter(pk=run_pk).first()
    if run is not None and not _final(run):
        _fail(run, error)


def solve_problem(run: OptimizationRun) -> dict:
    """Run the optimizer on the run's snapshot; returns the result dict (FORMAT.md)."""
    from flexibility.optimizer import problem_from_dict, solve

    problem = problem_from_dict(run.problem)
    return solve(problem, backend=run.backend, time_limit_s=run.time_limit_s).to_dict()


def execute_run(run_pk: int, task_id: str = "") -> Optional[str]:
    """Task body: solve one run and store its outcome; safe to call twice. Returns the final status.

    Transient errors (database, broker) propagate so the task can retry; anything else
    fails the run with its reason.
    """
    run = start_attempt(run_pk, task_id)
    if run is None:
        return None
    try:
        from flexibility.optimizer import ProblemError
    except ImportError:  # the optimizer package is not installed yet
        ProblemError = ValueError  # type: ignore[misc,assignment]
    try:
        result = solve_problem(run)
    except ProblemError as exc:
        fail_run(run_pk, f"The stored problem is invalid: {exc}")
        return RunStatus.FAILED
    return store_result(run_pk, result)


@transaction.atomic
def store_result(run_pk: int, result: dict) -> str:
    """Write the outcome once: a second delivery finds the run final (or its schedule) and stops."""
    run = OptimizationRun.objects.select_for_update().select_related("home").get(pk=run_pk)
    if _final(run):
        return run.status
    run.solver_status = str(result.get("status", ""))
    run.solver_stats = result.get("stats") or {}
    run.explanation = list(result.get("explanation") or [])
    run.finished_at = timezone.now()
    status = run.solver_status
    if status in ("OPTIMAL", "FEASIBLE"):
        if not Schedule.objects.filter(run=run).exists():
            schedule = _write_schedule(run, result)
            _act_on_schedule(run, schedule)
            if run.trigger == RunTrigger.DAY_AHEAD:
                _offer_flexibility(run)
        run.status = RunStatus.SUCCEEDED
    elif status == "INFEASIBLE":
        run.status = RunStatus.INFEASIBLE
        notify(run.home, "plan_infeasible", "Your devices could not be planned: "
               + ("; ".join(run.explanation) or "the requirements contradict each other."), {"run": run.pk})
    else:
        run.status = RunStatus.FAILED
        run.error = (f"The solver found no plan within {run.time_limit_s:g} s ({status})."
                     if status == "NO_SOLUTION_IN_TIME" else f"Unexpected solver status {status!r}.")
    run.save()
    stats, final = run.solver_stats, run.status
    transaction.on_commit(lambda: metrics.observe_solve(
        (stats.get("build_ms", 0) + stats.get("solve_ms", 0)) / 1000, stats.get("backend") or run.backend, final))
    return run.status


def _offer_flexibility(run: OptimizationRun) -> None:
    """A day-ahead plan is what the home offers the grid around: build its offer for that day."""
    from flexibility import flex_services  # late: flex_services builds on this module

    delivery_day = run.horizon_start.astimezone(run.home.tzinfo).date()
    flex_services.enqueue_offer_builds([run.home_id], delivery_day)


def _write_schedule(run: OptimizationRun, result: dict) -> Schedule:
    p = run.problem
    baseline = result.get("baseline") or {}
    return Schedule.objects.create(
        run=run, home=run.home, start=run.horizon_start, resolution_minutes=p["resolution_min"], slots=p["slots"],
        cost_eur=float(result["cost_eur"]), co2_kg=float(result.get("co2_kg") or 0.0),
        baseline_cost_eur=float(baseline.get("cost_eur", result["cost_eur"])),
        baseline_co2_kg=float(baseline.get("co2_kg", result.get("co2_kg") or 0.0)),
        savings_eur=float(result.get("savings_eur") or 0.0),
        net_import_kw=list(result.get("net_import_kw") or []), devices=result.get("devices") or {},
    )


def _cycle_saving_eur(run: OptimizationRun, cycle_item: dict, old_start: datetime, new_start: datetime) -> float:
    """Import cost of the cycle's energy at its current start minus at the recommended one."""
    p = run.problem
    prices = p["site"]["import_price_eur_per_kwh"]
    grid_start = datetime.fromisoformat(p["start"])
    res = p["resolution_min"]

    def cost(at: datetime) -> float:
        total, offset = 0.0, (at - grid_start).total_seconds() / 60
        for phase in cycle_item["phases"]:
            minute = offset
            remaining = phase["duration_min"]
            while remaining > 1e-9:
                slot = int(minute // res)
                take = min(remaining, (slot + 1) * res - minute)
                price = prices[min(max(slot, 0), len(prices) - 1)]
                total += phase["power_w"] / 1000.0 * take / 60.0 * price
                minute += take
                remaining -= take
            offset += phase["duration_min"]
        return total

    return round(cost(old_start) - cost(new_start), 4)


def _act_on_schedule(run: OptimizationRun, schedule: Schedule) -> None:
    """Recommendations for moved cycles, hub commands for automatic devices, one notification."""
    home = run.home
    Recommendation.objects.filter(home=home, status=RecommendationStatus.PENDING).exclude(
        schedule=schedule).update(status=RecommendationStatus.SUPERSEDED, decided_at=timezone.now())
    cycle_items = {c["id"]: c for c in run.problem.get("cycles", [])}
    devices_by_serial = {d.serial_number: d for d in home.devices.select_related("hub")}
    changed: list[str] = []
    for result_id, planned in schedule.devices.items():
        kind, pk = object_pk(result_id)
        device = devices_by_serial.get(planned.get("device"))
        if device is None:
            continue
        if kind == "cycle" and planned.get("start"):
            cycle = Cycle.objects.filter(pk=pk, device=device).first()
            if cycle is None:
                continue
            new_start = parse_datetime(planned["start"])
            current = cycle.scheduled_start or datetime.fromisoformat(cycle_items[result_id]["earliest_start"])
            if abs((new_start - current).total_seconds()) < 60:
                continue
            rec = Recommendation.objects.create(
                schedule=schedule, home=home, device=device, cycle=cycle, current_start=cycle.scheduled_start,
                recommended_start=new_start, recommended_end=parse_datetime(planned["end"]),
                saving_eur=_cycle_saving_eur(run, cycle_items[result_id], current, new_start),
            )
            changed.append(device.name)
            if device.automatic_management:
                _accept(rec, automatic=True)
        elif kind in ("ev", "battery", "thermal") and device.automatic_management:
            _send_setpoints(run, schedule, device, kind, planned)
            changed.append(device.name)
    if changed:
        names = ", ".join(sorted(set(changed)))
        notify(home, "plan_changed", f"A new plan changes {names}; it saves about "
               f"{schedule.savings_eur:.2f} EUR against running them as planned.",
               {"run": run.pk, "schedule": schedule.pk})


def _send_setpoints(run: OptimizationRun, schedule: Schedule, device: Device, kind: str, planned: dict) -> None:
    """One hub command per block of constant planned power, from the current slot for up to a day.

    EV and battery: power_w until the block's end; thermal: heat to the top of the comfort band
    while the plan heats, hold the bottom otherwise.
    """
    from hub_bridge.models import CommandKind

    now = timezone.now()
    res = timedelta(minutes=schedule.resolution_minutes)
    first = max(0, int((problem_builder.floor_to_slot(now) - schedule.start) / res))
    power = [round(float(x), 3) for x in planned.get("power_kw", [])][first:first + COMMAND_SLOT_LIMIT]
    if kind == "thermal":
        t_min, t_max = problem_builder.thermal_band(device)
    t = 0
    while t < len(power):
        end = t
        while end + 1 < len(power) and power[end + 1] == power[t]:
            end += 1
        block_start = schedule.start + (first + t) * res
        block_end = schedule.start + (first + end + 1) * res
        until = block_end.isoformat()
        if kind == "ev":
            command, parameters = CommandKind.SET_EV_POWER, {"power_w": round(power[t] * 1000.0), "until": until}
        elif kind == "battery":
            command, parameters = CommandKind.SET_BATTERY_SETPOINT, {"power_w": round(power[t] * 1000.0), "until": until}
        else:
            heating = power[t] > 0
            command, parameters = CommandKind.SET_THERMAL_SETPOINT, {
                "temperature_c": t_max if heating else t_min, "mode": "comfort" if heating else "eco", "until": until}
        _command_or_notify(device, command, parameters, not_before=max(block_start, now), expires_at=block_end, run=run)
        if device.hub_id is None:
            return  # one notification is enough
        t = end + 1


def _command_or_notify(device: Device, kind: str, parameters: dict, not_before: datetime, expires_at: datetime,
                       run: Optional[OptimizationRun] = None, recommendation: Optional[Recommendation] = None) -> None:
    """Hand a command to the hub bridge; a device without a hub gets a notification instead."""
    from hub_bridge.services import enqueue_command

    if device.hub_id is None:
        notify(device.home, "device_without_hub", f"{device.name} has no hub, so the plan could not be sent to it: "
               f"please apply it by hand ({kind}).", {"device": device.pk, "kind": kind, "parameters": parameters})
        return
    enqueue_command(device, kind, parameters, not_before, expires_at, run=run, recommendation=recommendation)


# ------------------------------------------------------------------------ recommendations
def _accept(rec: Recommendation, automatic: bool = False) -> Recommendation:
    from hub_bridge.models import CommandKind

    now = timezone.now()
    rec.status = RecommendationStatus.ACCEPTED
    rec.decided_at = now
    rec.save(update_fields=["status", "decided_at"])
    Cycle.objects.filter(pk=rec.cycle_id).update(scheduled_start=rec.recommended_start, updated_at=now)
    _command_or_notify(rec.device, CommandKind.START_CYCLE,
                       {"sequence_id": rec.cycle.sequence_id, "start": rec.recommended_start.isoformat()},
                       not_before=now, expires_at=rec.recommended_start, run=rec.schedule.run, recommendation=rec)
    return rec


def _decidable(rec_pk: int) -> Recommendation:
    from energy_manager.api_errors import Conflict

    rec = (Recommendation.objects.select_for_update(of=("self",))
           .select_related("device__home", "schedule__run", "cycle").get(pk=rec_pk))
    if rec.status != RecommendationStatus.PENDING:
        raise Conflict(f"The recommendation is already {rec.status}.")
    return rec


@transaction.atomic
def accept_recommendation(rec: Recommendation) -> Recommendation:
    """Move the cycle to the recommended start and send the start command to the hub."""
    return _accept(_decidable(rec.pk))


@transaction.atomic
def decline_recommendation(rec: Recommendation) -> Recommendation:
    rec = _decidable(rec.pk)
    rec.status = RecommendationStatus.DECLINED
    rec.decided_at = timezone.now()
    rec.save(update_fields=["status", "decided_at"])
    return rec


# --------------------------------------------------------------------------- notifications
@transaction.atomic
def dismiss_notification(notification: Notification) -> Notification:
    if notification.dismissed_at is None:
        notification.dismissed_at = timezone.now()
        notification.save(update_fields=["dismissed_at"])
    return notification


@transaction.atomic
def dismiss_all_notifications(user) -> int:
    return Notification.objects.filter(user=user, dismissed_at__isnull=True).update(dismissed_at=timezone.now())


# ------------------------------------------------------------------------------ reaper
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
            if run is None or _final(run):
                continue
            if run.attempts >= max_attempts or run.requeues >= max_attempts:
                _fail(run, f"Gave up: stuck in {run.status} after {run.attempts} attempts and "
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


# ------------------------------------------------------------------------------- fleet
DAY_AHEAD_TAKEOVER = timedelta(hours=1)  # a zone's fan-out unfinished after this no longer holds its homes back


def start_due_day_ahead(now: Optional[datetime] = None, chunk_size: int = FLEET_CHUNK_SIZE) -> list[FleetRun]:
    """Per time zone of the opted-in homes: once the local DAY_AHEAD_LOCAL_TIME has passed today, plan
    tomorrow (local) for every home of that zone without a day-ahead run for it yet.

    Beat calls it every 15 minutes; it is idempotent (a home planned for the day is not selected again,
    and a zone whose fan-out is still being submitted is skipped), and a late tick catches up.
    """
    from zoneinfo import ZoneInfo

    from flexibility import selectors

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
    from flexibility import selectors
    from tasks.periodic import day_ahead_chunk as chunk_task

    if delivery_day is None:
        delivery_day = (timezone.localtime(timezone.now()) + timedelta(days=1)).date()
    if home_ids is None:
        home_ids = list(selectors.opted_in_home_ids())
    chunks = [home_ids[i:i + chunk_size] for i in range(0, len(home_ids), chunk_size)]
    fleet = FleetRun.objects.create(delivery_day=delivery_day, timezone=zone, homes=len(home_ids),
                                    chunks_total=len(chunks))
    for chunk in chunks:
        chunk_task.delay(fleet.pk, chunk)
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
        start, end = problem_builder.local_day_horizon(home, fleet.delivery_day)
        try:
            submit_run(home, trigger=RunTrigger.DAY_AHEAD, horizon_start=start, horizon_end=end, fleet_run=fleet,
                       force=True)
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


# ------------------------------------------------------------------------ re-optimization
def _redis():
    import redis
    from energy_manager.celery import app

    return redis.Redis.from_url(app.conf.broker_url)


def schedule_reoptimization(home_id: int, reason: str) -> None:
    """Re-plan the remaining horizon of a home, at most once per debounce window.

    The first trigger sets a Redis key and sends the task with a countdown; triggers
    arriving before it runs are absorbed by the key. Embedded mode re-plans at once.
    """
    task = _tasks().reoptimize_home
    if eager():
        transaction.on_commit(lambda: task.apply_async(args=[home_id, reason]))
        return
    debounce_s = settings.OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S
    if _redis().set(f"hems:reoptimize:{home_id}", reason, nx=True, ex=debounce_s + 60):
        transaction.on_commit(lambda: task.apply_async(args=[home_id, reason], countdown=debounce_s))


def reoptimize(home_id: int, reason: str) -> Optional[OptimizationRun]:
    """Task body: release the debounce key, then submit a run of the remaining horizon."""
    if not eager():
        _redis().delete(f"hems:reoptimize:{home_id}")
    home = Home.objects.filter(pk=home_id).first()
    if home is None:
        return None
    try:
        run, _ = submit_run(home, trigger=RunTrigger.REOPTIMIZE)
    except MissingData as exc:
        notify(home, "plan_not_updated", f"Your plan could not be updated after {reason}: {exc}", {"reason": reason})
        return None
    return run


def describe_exception(exc: BaseException) -> str:
    """One line for a run's error field: the exception type and message."""
    return f"{type(exc).__name__}: {exc}"[:2000]
