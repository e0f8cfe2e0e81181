"""Run lifecycle: record a run, solve it once, store its schedule once.

Flow: `submit_run` records a queued run (with a snapshot and hash of its input) and announces
`signals.run_enqueued` after commit (the tasks app sends `solve_run`); `execute_run` (the task
body) solves outside any transaction and `store_result` writes the schedule once, under a row
lock on the run, then acts on it (dispatch) and announces `signals.schedules_stored`. A day-ahead
chunk (fleet) stores the outcomes of all its runs at once through the same `store_outcomes`.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Optional

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Value
from django.utils import timezone

from devices.models import THERMAL_TYPES, Device, DeviceType, Home, SignalKind
from energy_manager import metrics
from flexibility.forecasting import services as forecasting
from flexibility.notifications.services import notify_many
from flexibility.optimizer import ProblemError, problem_from_dict, solve
from flexibility.optimizer.reasons import plan_reasons

from .. import problem_builder, selectors, signals
from ..models import FINAL_RUN_STATUSES, FleetRun, OptimizationRun, RunStatus, RunTrigger, Schedule
from ..slots import MAX_HORIZON_H, RESOLUTION_MIN, default_horizon, floor_to_slot
from .dispatch import act_on_schedules
from energy_manager import clock

MAX_TIME_LIMIT_S = 120.0


def enqueue_run(run: OptimizationRun) -> None:
    """Ask for the solve once the run row is committed (workers must be able to see it)."""
    run_pk, limit = run.pk, run.time_limit_s
    OptimizationRun.objects.filter(pk=run_pk).update(last_enqueued_at=timezone.now())
    transaction.on_commit(lambda: signals.run_enqueued.send(sender=OptimizationRun, run_pk=run_pk, time_limit_s=limit))


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
    refresh_forecasts: bool = False,
    enqueue: bool = True,
) -> tuple[OptimizationRun, bool]:
    """Record and enqueue a run for `home`; an identical recent run is returned instead (unless `force`).

    The home's forecasts are made first when the horizon lacks one, or always with `refresh_forecasts`
    (day-ahead runs and re-plans). Raises MissingData (-> 422) before anything is written when the
    data cannot describe the horizon. `enqueue=False`: the caller solves the run itself (`execute_run`),
    so no solve message is sent.
    """
    backend = backend or settings.OPTIMIZER_BACKEND
    time_limit_s = float(time_limit_s if time_limit_s is not None else settings.OPTIMIZER_TIME_LIMIT_S)
    Home.objects.select_for_update().filter(pk=home.pk).first()  # serialize submits per home (dedup race)
    inputs = ensure_forecasts(home, horizon_start, horizon_end, refresh=refresh_forecasts)
    if horizon_start is None or horizon_end is None:
        inputs = None  # the default horizon is taken again below, maybe one slot later: read its rows anew
    problem = problem_builder.build_problem(home, horizon_start, horizon_end, objective=objective,
                                            grid_request=grid_request, inputs=inputs)
    if grid_request is None:
        add_commitments({home.pk: problem})
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
    if enqueue:
        enqueue_run(run)
    return run, True


def add_commitments(problems: dict[int, dict]) -> None:
    """Give each home's problem the bounds its home committed to (planned activation shares) as a soft grid
    request, whatever asked for the plan: a plan that dropped them would break the home's promise. An
    activation's own problem carries them already, with its own bounds, as a hard request."""
    requests = selectors.committed_grid_requests(
        {home_id: (datetime.fromisoformat(p["start"]), p["slots"]) for home_id, p in problems.items()})
    for home_id, request in requests.items():
        if request is not None:
            problems[home_id]["grid_request"] = request


def _forecast_missing(inputs: problem_builder.HomeInputs, start: datetime, slots: int) -> bool:
    home = inputs.home
    if problem_builder.signal_for_home(home, SignalKind.LOAD_FORECAST, start, slots, inputs=inputs) is None:
        return True
    for device in inputs.devices:
        if device.device_type != DeviceType.PV and device.device_type not in THERMAL_TYPES:
            continue
        kind = SignalKind.PV_FORECAST if device.device_type == DeviceType.PV else SignalKind.HEAT_DEMAND
        if problem_builder.signal_for_home(home, kind, start, slots, device=device, inputs=inputs) is None:
            return True
    return False


def _forecast_fresh(inputs: problem_builder.HomeInputs, start: datetime) -> bool:
    """The home's own forecast for `start` was made less than FORECAST_REFRESH_MIN_AGE_S ago (a burst of
    re-plans retrains the models once)."""
    since = timezone.now() - timedelta(seconds=settings.FORECAST_REFRESH_MIN_AGE_S)
    return any(s.kind == SignalKind.LOAD_FORECAST and start - timedelta(days=7) < s.start <= start
               and s.created_at >= since and s.source.startswith(forecasting.SOURCE_PREFIX) for s in inputs.signals)


def ensure_forecasts(home: Home, start: Optional[datetime], end: Optional[datetime], *,
                     refresh: bool) -> Optional[problem_builder.HomeInputs]:
    """Forecast the home's base load, PV and hot water over the horizon from its own telemetry: when a
    forecast is missing, or with `refresh` unless the home's forecasts are fresh.

    Returns the home's problem rows (with the forecasts just made), for `build_problem` to reuse."""
    if start is None or end is None:
        d_start, d_end = default_horizon(clock.now())
        start, end = start or d_start, end or d_end
    return ensure_forecasts_many({home.pk: (home, start, end)}, refresh=refresh).get(home.pk)


def ensure_forecasts_many(horizons: dict[int, tuple[Home, datetime, datetime]], *,
                          refresh: bool) -> dict[int, problem_builder.HomeInputs]:
    """`ensure_forecasts` for many homes (home id -> (home, start, end)): what each lacks is read with
    the builder's fixed number of queries, the forecasts made are stored in one write. Returns the
    homes' problem rows, current: the forecasts just stored take the place of those they replaced, so
    the builder reads nothing again."""
    spans = {}
    for pk, (home, start, end) in horizons.items():
        start = floor_to_slot(start)
        slots = int((end - start) / timedelta(minutes=RESOLUTION_MIN))
        if 0 < slots and slots * RESOLUTION_MIN <= MAX_HORIZON_H * 60:  # else build_problem names the bad horizon
            spans[pk] = (home, start, slots)
    if not spans:
        return {}
    inputs = problem_builder.load_inputs(
        [home for home, _, _ in spans.values()], min(start for _, start, _ in spans.values()),
        max(start + timedelta(minutes=RESOLUTION_MIN * slots) for _, start, slots in spans.values()))
    due = [(home, start, slots) for pk, (home, start, slots) in spans.items()
           if _forecast_missing(inputs[pk], start, slots) or (refresh and not _forecast_fresh(inputs[pk], start))]
    if due:
        for pk, stored in forecasting.forecast_homes(due, now=clock.now()).items():
            inputs[pk].signals = problem_builder.with_replacements(inputs[pk].signals, stored)
    return inputs


def is_final(run: OptimizationRun) -> bool:
    return run.status in FINAL_RUN_STATUSES


@transaction.atomic
def start_attempt(run_pk: int, task_id: str = "") -> Optional[OptimizationRun]:
    """Mark the run running (one more attempt); None when there is nothing to do."""
    run = OptimizationRun.objects.select_for_update().filter(pk=run_pk).first()
    if run is None or is_final(run):
        return None
    if run.attempts >= settings.OPTIMIZATION_MAX_ATTEMPTS:
        mark_failed(run, f"Gave up after {run.attempts} attempts; the last one did not finish "
                   "(worker lost or time limit).")
        return None
    run.status = RunStatus.RUNNING
    run.started_at = timezone.now()
    run.attempts += 1
    run.task_id = task_id or run.task_id
    run.save(update_fields=["status", "started_at", "attempts", "task_id"])
    return run


def mark_failed(run: OptimizationRun, error: str) -> None:
    run.status = RunStatus.FAILED
    run.error = error
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


@transaction.atomic
def fail_run(run_pk: int, error: str) -> None:
    """Record a failure with its reason (never over a final status)."""
    run = OptimizationRun.objects.select_for_update().filter(pk=run_pk).first()
    if run is not None and not is_final(run):
        mark_failed(run, error)


def solve_problem(run: OptimizationRun) -> dict:
    """Run the optimizer on the run's snapshot; returns the result dict (FORMAT.md)."""
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
        result = solve_problem(run)
    except ProblemError as exc:
        fail_run(run_pk, f"The stored problem is invalid: {exc}")
        return RunStatus.FAILED
    return store_result(run_pk, result)


@transaction.atomic
def store_result(run_pk: int, result: dict) -> str:
    """Write the outcome once: a second delivery finds the run final (or its schedule) and stops."""
    run = OptimizationRun.objects.select_for_update().select_related("home").get(pk=run_pk)
    if is_final(run):
        return run.status
    if result.get("status") in ("OPTIMAL", "FEASIBLE") and Schedule.objects.filter(run=run).exists():
        run.status = RunStatus.SUCCEEDED
        run.save(update_fields=["status"])
        return run.status
    store_outcomes([(run, result)])
    return run.status


OUTCOME_FIELDS = ["status", "solver_status", "solver_stats", "explanation", "finished_at", "error"]


def store_outcomes(outcomes: list[tuple[OptimizationRun, dict]]) -> None:
    """Write the outcomes of runs the caller holds (locked, not final) with a few bulk statements:
    schedules, what they change (dispatch), notifications, the runs; then announce
    `signals.schedules_stored` (inside the transaction)."""
    now = timezone.now()
    schedules, notes = [], []
    names_by_home: dict[int, dict[str, str]] = {}
    planned = {run.home_id for run, result in outcomes if str(result.get("status", "")) in ("OPTIMAL", "FEASIBLE")}
    for home_id, serial, name in Device.objects.filter(home_id__in=planned).values_list(
            "home_id", "serial_number", "name"):
        names_by_home.setdefault(home_id, {})[serial] = name
    for run, result in outcomes:
        run.solver_status = str(result.get("status", ""))
        run.solver_stats = result.get("stats") or {}
        run.explanation = list(result.get("explanation") or [])
        run.finished_at = now
        status = run.solver_status
        if status in ("OPTIMAL", "FEASIBLE"):
            schedules.append(_schedule_row(run, result, names_by_home.get(run.home_id, {})))
            run.status = RunStatus.SUCCEEDED
        elif status == "INFEASIBLE":
            run.status = RunStatus.INFEASIBLE
            notes.append((run.home, "plan_infeasible", "Your devices could not be planned: "
                          + ("; ".join(run.explanation) or "the requirements contradict each other."),
                          {"run": run.pk}))
        else:
            run.status = RunStatus.FAILED
            run.error = (f"The solver found no plan within {run.time_limit_s:g} s ({status})."
                         if status == "NO_SOLUTION_IN_TIME" else f"Unexpected solver status {status!r}.")
    moved = _commitments_moved([run for run, _ in outcomes if run.status == RunStatus.SUCCEEDED])
    bulk_create_json(Schedule, schedules)
    act_on_schedules(schedules)
    notify_many(notes)
    _write_outcome_fields([run for run, _ in outcomes])
    observed = [((run.solver_stats.get("build_ms", 0) + run.solver_stats.get("solve_ms", 0)) / 1000,
                 run.solver_stats.get("backend") or run.backend, run.status) for run, _ in outcomes]

    def observe() -> None:
        for seconds, backend, status in observed:
            metrics.observe_solve(seconds, backend, status)

    transaction.on_commit(observe)
    if moved:
        from .replanning import schedule_reoptimization  # replanning submits through this module
        for home_id in moved:
            schedule_reoptimization(home_id, "an activation was planned while this plan was being made")
    if schedules:
        signals.schedules_stored.send(sender=OptimizationRun, schedules=schedules)


def _commitments_moved(runs: list[OptimizationRun]) -> list[int]:
    """The homes whose plan stored now was built before a change of the bounds they committed to (an activation
    share planned since): the plan is stored, and a re-plan that keeps every commitment follows. The homes'
    rows stay locked to the end of the transaction, in id order, as an activation share's outcome locks its
    home: of a share recorded and a plan stored at the same time, the later one sees the earlier. An
    activation's own runs are checked by grid when their share is recorded."""
    latest = {run.home_id: run for run in runs if run.trigger != RunTrigger.ACTIVATION}
    if not latest:
        return []
    list(Home.objects.select_for_update().filter(pk__in=latest).order_by("pk").values_list("pk", flat=True))
    now = selectors.committed_grid_requests(
        {home_id: (run.horizon_start, int(run.problem["slots"])) for home_id, run in latest.items()})
    return [home_id for home_id, run in latest.items() if now[home_id] != run.problem.get("grid_request")]


def bulk_create_json(model: type[models.Model], rows: list) -> None:
    """`model.objects.bulk_create(rows)` with each JSON value sent as a parameter of its own.

    For many rows Django sends each column as one array parameter (INSERT ... UNNEST); psycopg then
    quotes every JSON text of the array in Python, one regular-expression substitution per quote
    character, which for a chunk's problems and plans cost more than the rest of the insert. Passed
    as values (one placeholder each), they are escaped in C by libpq."""
    fields = [f for f in model._meta.concrete_fields if isinstance(f, models.JSONField)]
    kept = [[getattr(row, f.attname) for f in fields] for row in rows]
    for row in rows:
        for f in fields:
            setattr(row, f.attname, Value(getattr(row, f.attname), output_field=f))
    try:
        model.objects.bulk_create(rows)
    finally:
        for row, values in zip(rows, kept):
            for f, value in zip(fields, values):
                setattr(row, f.attname, value)


def _write_outcome_fields(runs: list[OptimizationRun]) -> None:
    """OUTCOME_FIELDS of `runs` in one UPDATE. On PostgreSQL the values travel as one JSON document
    (`jsonb_to_recordset`): Django's `bulk_update` builds a CASE per field and row, which cost more
    than the rest of storing a chunk."""
    if not runs:
        return
    if connection.vendor != "postgresql":
        OptimizationRun.objects.bulk_update(runs, OUTCOME_FIELDS)
        return
    values = json.dumps([{"id": r.pk, "status": r.status, "solver_status": r.solver_status,
                          "solver_stats": r.solver_stats, "explanation": r.explanation,
                          "finished_at": r.finished_at.isoformat() if r.finished_at else None, "error": r.error}
                         for r in runs])
    with connection.cursor() as cur:
        cur.execute(
            f"""UPDATE {OptimizationRun._meta.db_table} AS r
                   SET status = v.status, solver_status = v.solver_status, solver_stats = v.solver_stats,
                       explanation = v.explanation, finished_at = v.finished_at, error = v.error
                  FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, status text, solver_status text,
                       solver_stats jsonb, explanation jsonb, finished_at timestamptz, error text)
                 WHERE r.id = v.id""", [values])


def _schedule_row(run: OptimizationRun, result: dict, device_names: dict[str, str]) -> Schedule:
    """The unsaved schedule of a run (for a bulk insert), with its reasons; `device_names`: serial -> name."""
    p = run.problem
    baseline = result.get("baseline") or {}
    explained = plan_reasons(p, result, timezone=run.home.timezone, device_names=device_names)
    return Schedule(
        run=run, home=run.home, start=run.horizon_start, resolution_minutes=p["resolution_min"], slots=p["slots"],
        cost_eur=float(result["cost_eur"]), co2_kg=float(result.get("co2_kg") or 0.0),
        baseline_cost_eur=float(baseline.get("cost_eur", result["cost_eur"])),
        baseline_co2_kg=float(baseline.get("co2_kg", result.get("co2_kg") or 0.0)),
        savings_eur=float(result.get("savings_eur") or 0.0),
        net_import_kw=list(result.get("net_import_kw") or []), devices=result.get("devices") or {},
        baseline_net_import_kw=explained["baseline_net_import_kw"], reasons=explained["reasons"],
    )


def describe_exception(exc: BaseException) -> str:
    """One line for a run's error field: the exception type and message."""
    return f"{type(exc).__name__}: {exc}"[:2000]
