"""Fleet benchmark: N synthetic standard homes through the real stack.

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/hems_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python -m bench.fleet --homes 1000 --workers 2 --json

Seeds the homes (tri-hourly tariff, load forecast, CO2, a washing machine and a
dishwasher cycle, an on/off EV session; no telemetry, so each home's day-ahead forecast is the
reference profile), starts `celery worker -Q optimization,default -c N`
and plans them (-> Redis -> worker processes -> PostgreSQL): by default through the
day-ahead fan-out for tomorrow (`--via day-ahead`: chunk tasks submit the runs inside the
workers, as beat does), or with this process submitting each run through the run service
(`--via service`; on 2 cores that process then competes with the workers). Prints one JSON
line: homes/s, p50/p95 submit-to-stored latency and the highest resident memory of each
worker process (main and pool) sampled during the run. `--compare` runs 1 worker process then
N and adds the speed-up. `--in-process` plans the day-ahead chunks in this process instead (no broker,
no worker) and prints CPU milliseconds per home of this process and of its PostgreSQL backend, and the
queries per chunk: comparable before and after a change even on a loaded machine.
The seeding helpers are also the fixtures of tests/runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from zoneinfo import ZoneInfo


FAN_OUT_CHUNK = 50  # homes per day-ahead chunk task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")


def _setup_django() -> None:
    import django

    django.setup()


def bench_user():
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="bench-fleet", defaults={"email": "bench@example.com"})
    return user


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(q * (len(values) - 1)))))
    return values[k]


def run_once(homes: list, workers: int, timeout_s: float, delivery_day=None) -> dict:
    """Submit every home with `workers` pool processes running; wait until every run is stored.

    With `delivery_day`, the homes go through the day-ahead fan-out (chunk tasks on the `default`
    queue submit the runs inside the workers, as beat does in production); without, this process
    submits every run through the run service.
    """
    from django.conf import settings
    from django.db import connection

    from flexibility.planning import services
    from flexibility.planning.models import FINAL_RUN_STATUSES, OptimizationRun
    from tests.plugins.celery_worker import CeleryWorker, purge_queues, use_broker

    from devices.models import SignalSeries
    from flexibility.forecasting.services import SOURCE_PREFIX

    # Day-ahead chunks forecast each home unless its forecast is fresh: a run right after another must
    # do the same work, so the forecasts the previous run made go.
    SignalSeries.objects.filter(home__in=homes, source__startswith=SOURCE_PREFIX).delete()
    broker = settings.CELERY_BROKER_URL
    purge_queues(["optimization", "default"], broker)
    undo = use_broker(broker)
    worker = CeleryWorker(["optimization", "default"], concurrency=workers, name="bench", broker=broker,
                          env={"DATABASE_URL": os.environ["DATABASE_URL"], "LOG_LEVEL": "WARNING"})
    worker.start()
    try:
        t0 = time.time()
        if delivery_day is not None:
            fleet = services.start_day_ahead(delivery_day, chunk_size=FAN_OUT_CHUNK, home_ids=[h.pk for h in homes])
            mine = OptimizationRun.objects.filter(fleet_run=fleet)
            started = fleet.started_at
        else:
            run_ids = [services.submit_run(home, force=True)[0].pk for home in homes]
            mine = OptimizationRun.objects.filter(pk__in=run_ids)
            started = None
        submit_s = time.time() - t0
        deadline = time.monotonic() + timeout_s
        rss_mb: dict[int, float] = {}
        while time.monotonic() < deadline:  # polling the database, the source of truth, not a sleep for a race
            for pid in [worker.proc.pid, *worker.pool_pids()]:
                rss_mb[pid] = max(rss_mb.get(pid, 0.0), _rss_mb(pid))
            if mine.filter(status__in=FINAL_RUN_STATUSES).count() >= len(homes):
                break
            time.sleep(0.2)
        runs = list(mine.values("status", "queued_at", "finished_at"))
    finally:
        worker.stop()
        undo()
        connection.close()
    done = [r for r in runs if r["finished_at"] is not None]
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    latencies = [(r["finished_at"] - r["queued_at"]).total_seconds() for r in done]
    first = started or min(r["queued_at"] for r in runs)
    last = max((r["finished_at"] for r in done), default=first)
    elapsed = max((last - first).total_seconds(), 1e-9)
    return {
        "via": "day-ahead" if delivery_day is not None else "service", "homes": len(homes), "workers": workers, "stored": len(done), "statuses": statuses,
        "elapsed_s": round(elapsed, 2), "submit_s": round(submit_s, 2),
        "homes_per_s": round(len(done) / elapsed, 2),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(_percentile(latencies, 0.95), 3) if latencies else None,
        "worker_rss_mb_max": round(max(rss_mb.values()), 1) if rss_mb else None,
        "worker_rss_mb": sorted(round(v, 1) for v in rss_mb.values()),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _backend_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a local PostgreSQL backend process used so far (None when not local)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, PermissionError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(homes: list, delivery_day, chunk_size: int, profile_path: str | None) -> dict:
    """Plan the homes' day-ahead chunks one after another in this process (no broker, no worker):
    this process's CPU ms per home (time.process_time), its PostgreSQL backend's CPU ms per home
    (from /proc, the server being local), queries per chunk. Meaningful on a loaded machine, unlike
    wall-clock throughput."""
    import cProfile

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from devices.models import SignalSeries
    from flexibility.forecasting.services import SOURCE_PREFIX
    from flexibility.planning import services
    from flexibility.planning.models import FleetRun, OptimizationRun

    SignalSeries.objects.filter(home__in=homes, source__startswith=SOURCE_PREFIX).delete()
    ids = [h.pk for h in homes]
    chunks = [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]
    fleet = FleetRun.objects.create(delivery_day=delivery_day, homes=len(ids), chunks_total=len(chunks))
    backend = 0  # no PostgreSQL backend (the SQLite demo): its CPU is not reported
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
    profiler = cProfile.Profile() if profile_path else None
    queries, outcomes, chunk_cpu_ms = [], {}, []
    # The first chunk pays the process's warm-up (imports, first compilations), as a worker's first task
    # does once: measured apart, the figures per home are of the chunks after it.
    services.plan_fleet_chunk(fleet.pk, chunks[0])
    pg0, cpu0, t0 = _backend_cpu_s(backend), time.process_time(), time.perf_counter()
    for chunk in chunks[1:]:
        c0 = time.process_time()
        with CaptureQueriesContext(connection) as ctx:
            if profiler:
                profiler.enable()
            out = services.plan_fleet_chunk(fleet.pk, chunk)
            if profiler:
                profiler.disable()
        chunk_cpu_ms.append(round((time.process_time() - c0) * 1000 / len(chunk), 1))
        queries.append(len(ctx.captured_queries))
        for k, v in out.items():
            outcomes[k] = outcomes.get(k, 0) + v
    cpu_s, wall_s, pg1 = time.process_time() - cpu0, time.perf_counter() - t0, _backend_cpu_s(backend)
    if profiler:
        profiler.dump_stats(profile_path)
    statuses: dict[str, int] = {}
    for status in OptimizationRun.objects.filter(fleet_run=fleet).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    n = len(ids) - len(chunks[0])
    return {
        "via": "in-process", "homes": n, "chunk": chunk_size, "outcomes": outcomes, "statuses": statuses,
        "worker_cpu_ms_per_home": round(cpu_s * 1000 / n, 2),
        "postgres_cpu_ms_per_home": round((pg1 - pg0) * 1000 / n, 2) if pg0 is not None and pg1 is not None else None,
        "wall_ms_per_home": round(wall_s * 1000 / n, 2),
        "chunk_cpu_ms_per_home": chunk_cpu_ms, "queries_per_chunk": sorted(set(queries)),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _rss_mb(pid: int) -> float:
    """Resident set size of a process (MB), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except FileNotFoundError:
        pass
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes")
    parser.add_argument("--compare", action="store_true", help="also run with 1 process and report the speed-up")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--via", choices=["day-ahead", "service"], default="day-ahead",
                        help="day-ahead: beat's fan-out (chunk tasks submit inside the workers; default); "
                             "service: this process submits each run")
    parser.add_argument("--in-process", action="store_true",
                        help="plan the day-ahead chunks in this process (no broker, no worker): CPU ms per home of "
                             "this process and of its PostgreSQL backend, queries per chunk")
    parser.add_argument("--profile", metavar="FILE", help="with --in-process: write cProfile stats of the chunks")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args(argv)
    if args.in_process:
        if args.homes < 2 * FAN_OUT_CHUNK:
            parser.error(f"--in-process needs at least {2 * FAN_OUT_CHUNK} homes (the first chunk warms up)")
        args.via = "day-ahead"
    elif not os.environ.get("CELERY_BROKER_URL"):
        parser.error("set CELERY_BROKER_URL (the benchmark needs Redis and real worker processes)")
    _setup_django()
    from django.core.management import call_command
    from django.utils import timezone

    from devices.models import Home
    from tests.factories.homes import seed_area_signals, seed_standard_home

    call_command("migrate", verbosity=0)
    user = bench_user()
    Home.objects.filter(owner=user).delete()
    now = timezone.now()
    delivery_day = None
    if args.via == "day-ahead":  # the homes' day is tomorrow (Europe/Lisbon); not opted in, so no offers follow
        zone = ZoneInfo("Europe/Lisbon")
        delivery_day = (now.astimezone(zone) + timedelta(days=1)).date()
        now = datetime(delivery_day.year, delivery_day.month, delivery_day.day, tzinfo=zone).astimezone(dt_timezone.utc)
    seed_area_signals(now - timedelta(hours=1))
    t0 = time.time()
    homes = [seed_standard_home(user, f"bench-{i}", now, opt_in=args.via != "day-ahead") for i in range(args.homes)]
    if not args.json:
        print(f"seeded {len(homes)} homes in {time.time() - t0:.1f} s", file=sys.stderr)
    if args.in_process:
        print(json.dumps({"bench": "fleet", **in_process(homes, delivery_day, FAN_OUT_CHUNK, args.profile)}), flush=True)
        return 0
    results = []
    for workers in ([1, args.workers] if args.compare and args.workers != 1 else [args.workers]):
        result = run_once(homes, workers, args.timeout, delivery_day)
        results.append(result)
        print(json.dumps({"bench": "fleet", **result}), flush=True)
    if len(results) == 2:
        speedup = results[1]["homes_per_s"] / max(results[0]["homes_per_s"], 1e-9)
        print(json.dumps({"bench": "fleet", "speedup": round(speedup, 2), "workers": [1, args.workers]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
