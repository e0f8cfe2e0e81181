"""Re-optimization on a real worker: debounced per home (Redis key + countdown), triggered by a new cycle."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories.homes import seed_standard_home
from devices.models import Cycle, Device
from flexibility.planning import slots
from flexibility.planning.models import OptimizationRun, RunStatus, RunTrigger
from flexibility.planning.services import schedule_reoptimization

from .conftest import client_for
from .test_workers import QUEUES, final_run, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_debounce_keys_left():
    """Home ids repeat across sessions: a key left by an earlier session (TTL window + 60 s) would absorb a trigger."""
    import redis

    from tests.plugins.celery_worker import broker_url

    r = redis.Redis.from_url(broker_url())
    keys = list(r.scan_iter(match="hems:reoptimize:*"))
    if keys:
        r.delete(*keys)
    r.close()


def reoptimize_runs(home) -> list[OptimizationRun]:
    return list(OptimizationRun.objects.filter(home=home, trigger=RunTrigger.REOPTIMIZE))


def test_triggers_within_the_window_make_one_run_per_home(home, owner, now, settings, celery_worker):
    settings.OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S = 1
    other = seed_standard_home(owner, "Second home", now)
    probe = seed_standard_home(owner, "Probe home", now)
    worker = celery_worker(queues=QUEUES, concurrency=1)
    for reason in ("cycle_created", "comfort_changed", "load_forecast_replaced", "cycle_changed"):
        schedule_reoptimization(home.pk, reason)
    schedule_reoptimization(other.pk, "cycle_created")
    # A task due after every task above (same countdown, later ETA; one pool process): once its run
    # exists, every re-optimization sent before it has run too.
    from tasks.planning import reoptimize_home

    reoptimize_home.apply_async(args=[probe.pk, "probe"], countdown=2)
    wait_for(lambda: reoptimize_runs(probe), timeout=60, what="the probe run", worker=worker)
    runs = reoptimize_runs(home)
    assert len(runs) == 1, [r.pk for r in runs]
    assert len(reoptimize_runs(other)) == 1
    received = [line for line in worker.log().splitlines()
                if "tasks.optimization.reoptimize_home[" in line and "received" in line.lower()]
    assert len(received) == 3, received  # home, other, probe: the three absorbed triggers sent nothing
    assert final_run(runs[0].pk, worker=worker).status == RunStatus.SUCCEEDED
    # The window is over once the task ran: the next trigger (after a real change) plans again.
    washer_cycle = Cycle.objects.get(device__home=home, device__serial_number="WM-1")
    Cycle.objects.filter(pk=washer_cycle.pk).update(latest_end=washer_cycle.latest_end - timedelta(minutes=30))
    schedule_reoptimization(home.pk, "cycle_changed")
    wait_for(lambda: len(reoptimize_runs(home)) == 2, timeout=60, what="a second run after the window",
             worker=worker)


def test_new_cycle_through_the_api_re_plans_the_remaining_horizon(home, owner, now, settings, celery_worker):
    settings.OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S = 1
    worker = celery_worker(queues=QUEUES, concurrency=1)
    washer = Device.objects.get(home=home, serial_number="WM-1")
    slot = slots.floor_to_slot(now)
    response = client_for(owner).post("/api/v1/cycles/", {
        "device": washer.pk, "sequence_id": "WM-1-api", "program": "quick 30",
        "earliest_start": (slot + timedelta(hours=14)).isoformat(),
        "latest_end": (slot + timedelta(hours=20)).isoformat(),
        "power_profile": [{"duration_min": 30, "expected_power_w": 1800, "max_power_w": 2000}],
    }, format="json")
    assert response.status_code == 201, response.content
    cycle = Cycle.objects.get(pk=response.json()["id"])
    (run,) = wait_for(lambda: reoptimize_runs(home), timeout=60, what="the re-optimization run", worker=worker)
    run = final_run(run.pk, worker=worker)
    assert run.status == RunStatus.SUCCEEDED, (run.error, worker.log())
    assert run.horizon_start == slots.floor_to_slot(run.queued_at), "the remaining horizon, from now"
    assert f"cycle-{cycle.pk}" in {c["id"] for c in run.problem["cycles"]}
    assert f"cycle-{cycle.pk}" in run.schedule.devices
