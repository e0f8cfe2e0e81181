"""End to end on real processes: API -> Redis -> `celery worker` -> PostgreSQL.

Each test starts its own worker (tests/plugins/celery_worker.py) against the test
database; runs are polled with a deadline, never slept on.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories.homes import seed_area_signals, seed_standard_home
from devices.models import Cycle, Device, DeviceType, SignalKind, SignalSeries, TariffKind
from flexibility.planning import problem_builder, services, slots
from flexibility.planning.models import OptimizationRun, RunStatus, Schedule

from .conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)
QUEUES = ["optimization", "default"]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition", worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n--- worker log ---\n{worker.log()}" if worker else ""))


def final_run(pk: int, timeout: float = 60.0, worker=None) -> OptimizationRun:
    def done():
        run = OptimizationRun.objects.get(pk=pk)
        return run if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None

    return wait_for(done, timeout, what=f"run {pk} to finish", worker=worker)


def test_submit_run_and_read_schedule_over_the_api(home, owner_client, celery_worker):
    worker = celery_worker(queues=QUEUES, concurrency=1)
    response = owner_client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    assert response.status_code == 202, response.content
    duplicate = owner_client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    assert duplicate.json()["id"] == response.json()["id"] and duplicate.status_code == 200
    run = final_run(response.json()["id"], worker=worker)
    assert run.status == RunStatus.SUCCEEDED, (run.error, worker.log())
    assert run.attempts == 1 and run.started_at >= run.queued_at and run.finished_at >= run.started_at
    body = owner_client.get(response.json()["status_url"]).json()
    assert body["status"] == "succeeded" and body["schedule"]["slots"] == 96
    assert owner_client.get(f"/api/v1/homes/{home.pk}/schedules/latest").json()["run"] == run.pk
    assert OptimizationRun.objects.filter(home=home).count() == 1
    # A second delivery of the same task (e.g. after a broker redelivery) writes nothing new.
    from tasks.planning import solve_run

    solve_run.delay(run.pk)
    probe = services.submit_run(home, force=True)[0]  # sent after the duplicate: when it is done, so is the duplicate
    assert final_run(probe.pk, worker=worker).status == RunStatus.SUCCEEDED
    assert Schedule.objects.filter(run=run).count() == 1
    assert OptimizationRun.objects.get(pk=run.pk).attempts == 1


def _slow_home(owner, now):
    """Twelve long cycles that cannot overlap under 6.9 kVA, with irregular dynamic prices: seconds of CP-SAT search."""
    seed_area_signals(now - timedelta(hours=1))
    home = seed_standard_home(owner, "Crowded", now)
    home.tariff_kind, home.tariff = TariffKind.DYNAMIC, None
    home.save()
    home.devices.filter(device_type=DeviceType.EV_CHARGER).delete()
    start = slots.floor_to_slot(now)
    SignalSeries.objects.create(kind=SignalKind.IMPORT_PRICE, home=home, start=start, resolution_minutes=15,
                                values=[round(0.1 + 0.1 * ((t * 7) % 13) / 13, 4) for t in range(24 * 4 + 8)])
    for i in range(12):
        device = Device.objects.create(home=home, serial_number=f"DW-X{i}", name=f"Dishwasher {i}",
                                       device_type=DeviceType.DISHWASHER, parameters={})
        Cycle.objects.create(device=device, sequence_id=f"x{i}", program="eco", earliest_start=start,
                             latest_end=start + timedelta(hours=24),
                             power_profile=[{"duration_min": 45 + 5 * (i % 5), "expected_power_w": 2500 + 100 * (i % 7),
                                             "max_power_w": 3200}, {"duration_min": 30, "expected_power_w": 800,
                                                                     "max_power_w": 800}])
    return home


def test_kill_9_mid_solve_the_run_completes_on_a_restarted_worker_process(owner, now, celery_worker):
    worker = celery_worker(queues=QUEUES, concurrency=1)
    home = _slow_home(owner, now)
    run, _ = services.submit_run(home, time_limit_s=6.0)
    wait_for(lambda: OptimizationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists(),
             what="the solve to start", worker=worker)
    killed = worker.kill_pool_process()
    run = final_run(run.pk, timeout=120, worker=worker)
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.explanation, worker.log())
    assert run.attempts == 2, "the message must have been delivered again after the pool process died"
    assert killed not in worker.pool_pids()
    assert Schedule.objects.filter(run=run).count() == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(up, 20, what="redis-server to listen")
    return proc


def test_broker_restart_loses_queued_runs_and_the_reaper_finishes_them(home, celery_worker, request):
    """A private redis-server (not the shared one) restarted without persistence drops the messages."""
    import redis

    from tests.plugins.celery_worker import use_broker

    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = _start_redis(port)
    request.addfinalizer(lambda: (redis_proc.kill(), redis_proc.wait()))
    undo = use_broker(url)
    request.addfinalizer(undo)
    run, _ = services.submit_run(home)
    assert redis.Redis.from_url(url).llen("optimization") == 1
    redis_proc.kill()
    redis_proc.wait()
    redis_proc = _start_redis(port)
    assert redis.Redis.from_url(url).llen("optimization") == 0, "the restart must have lost the message"

    worker = celery_worker(queues=QUEUES, concurrency=1, broker=url)
    assert OptimizationRun.objects.get(pk=run.pk).status == RunStatus.QUEUED
    assert services.reap_stuck_runs(stuck_after_s=0) == {"requeued": 1, "failed": 0}
    run = final_run(run.pk, worker=worker)
    assert run.status == RunStatus.SUCCEEDED and run.requeues == 1


def test_infeasible_home_ends_infeasible_with_its_explanation(owner, now, celery_worker):
    worker = celery_worker(queues=QUEUES, concurrency=1)
    seed_area_signals(now)
    home = seed_standard_home(owner, "Impossible EV", now, ev_energy_kwh=150.0)  # 10 h x 7.4 kW < 150 kWh
    response = client_for(owner).post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    run = final_run(response.json()["id"], worker=worker)
    assert run.status == RunStatus.INFEASIBLE, (run.status, run.error)
    assert run.explanation and any("Car" in line or "EV" in line for line in run.explanation), run.explanation
    body = client_for(owner).get(f"/api/v1/optimizations/{run.pk}").json()
    assert body["explanation"] == run.explanation and body["schedule"] is None
    assert home.notifications.filter(kind="plan_infeasible").exists()


def test_unexpected_error_ends_failed_and_shows_in_the_admin(home, operator, celery_worker):
    worker = celery_worker(queues=QUEUES, concurrency=1)
    problem = problem_builder.build_problem(home)
    start = timezone.datetime.fromisoformat(problem["start"])
    run = OptimizationRun.objects.create(  # a backend the optimizer does not have: solve() raises
        home=home, input_hash="broken", problem=problem, backend="no-such-backend", time_limit_s=2,
        horizon_start=start, horizon_end=start + timedelta(hours=24))
    services.enqueue_run(run)
    run = final_run(run.pk, worker=worker)
    assert run.status == RunStatus.FAILED and run.error.startswith("Unexpected error: ValueError"), run.error
    from django.test import Client

    admin = Client()
    admin.force_login(operator)
    page = admin.get("/admin/flexibility/optimizationrun/", {"status__exact": "failed"})
    assert page.status_code == 200
    assert "Unexpected error: ValueError" in page.content.decode()
