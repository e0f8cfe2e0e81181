"""Problem building, 422s for missing data, owner scoping, dedup, results and recommendations (eager mode)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from devices.models import Cycle, DoNotDisturbWindow, EVSession, Measurement, SignalSeries
from flexibility.planning import problem_builder, services, slots
from flexibility.planning.models import OptimizationRun, Recommendation, RunStatus, Schedule
from flexibility.notifications.models import Notification
from flexibility.optimizer import problem_from_dict
from hub_bridge.models import HubCommand

from .conftest import client_for

pytestmark = pytest.mark.django_db


def submit(client, home, body=None):
    return client.post(f"/api/v1/homes/{home.pk}/optimizations", body or {}, format="json")


def test_problem_from_database_is_valid_for_the_optimizer(home, now):
    problem = problem_builder.build_problem(home, now=now)
    parsed = problem_from_dict(problem)
    assert parsed.grid.slots == 96 and problem["resolution_min"] == 15
    assert {c["device"] for c in problem["cycles"]} == {"WM-1", "DW-1"}
    assert problem["ev_sessions"][0]["energy_kwh"] == 10.0
    # Tri-hourly prices: the 22:00-08:00 off-peak price appears, and the 6.9 kVA load is in kW.
    assert min(problem["site"]["import_price_eur_per_kwh"]) == pytest.approx(0.1044)
    assert 0.5 < max(problem["site"]["base_load_kw"]) < 6.9


def test_thermal_storage_energy_and_do_not_disturb(home, now):
    from devices.models import ComfortPreference, Device, SignalKind

    wh = Device(home=home, serial_number="WH-1", name="Water heater", device_type="water_heater",
                parameters={"electric_power_kw": 2.0, "tank_volume_l": 200})
    wh.full_clean()
    wh.save()
    ComfortPreference.objects.create(device=wh, temperature_min_c=45, temperature_max_c=65)
    Measurement.objects.create(home=home, device=wh, time=now, temperature_c=55)
    SignalSeries.objects.create(kind=SignalKind.HEAT_DEMAND, home=home, device=wh, resolution_minutes=60,
                                start=slots.floor_to_slot(now, 60) - timedelta(hours=1), values=[300.0] * 30)
    local = now.astimezone(home.tzinfo)
    DoNotDisturbWindow.objects.create(home=home, weekday=local.weekday(), start_time=datetime.min.time().replace(hour=23),
                                      end_time=datetime.min.time().replace(hour=7))
    problem = problem_builder.build_problem(home, now=now)
    thermal = problem["thermal_storages"][0]
    assert thermal["max_energy_kwh"] == pytest.approx(200 * 4.186 / 3600 * 20, abs=1e-3)
    assert thermal["initial_energy_kwh"] == pytest.approx(200 * 4.186 / 3600 * 10, abs=1e-3)
    assert thermal["heat_demand_kw"][0] == pytest.approx(0.3)
    dnd = problem["do_not_disturb"]
    assert dnd, "the 23:00-07:00 window of today must fall in the next 24 h"
    first_start = datetime.fromisoformat(dnd[0]["start"]).astimezone(home.tzinfo)
    assert first_start.hour in (23, local.hour) or first_start == slots.floor_to_slot(now)
    problem_from_dict(problem)


def test_a_missing_forecast_is_made_before_planning(owner, owner_client, now):
    from tests.factories.homes import seed_area_signals, seed_standard_home

    seed_area_signals(now)
    bare = seed_standard_home(owner, "No forecast", now, with_load=False)
    response = submit(owner_client, bare)
    assert response.status_code == 202, response.content
    made = SignalSeries.objects.get(home=bare, kind="load_forecast")
    assert made.source == "forecast:reference-profile"  # no telemetry yet: the contracted-power profile
    run = OptimizationRun.objects.get(home=bare)
    assert run.problem["site"]["base_load_kw"][0] == round(made.values[0] / 1000.0, 4)


def test_missing_prices_are_422_and_nothing_is_queued(owner, owner_client, now):
    from devices.models import TariffKind
    from tests.factories.homes import seed_standard_home

    bare = seed_standard_home(owner, "No prices", now)
    bare.tariff, bare.tariff_kind = None, TariffKind.DYNAMIC
    bare.save()
    response = submit(owner_client, bare)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "unprocessable"
    assert "import_price" in response.json()["error"]["message"]
    assert not OptimizationRun.objects.filter(home=bare).exists()


def test_missing_tariff_and_passed_cycle_are_named(home, owner_client, now):
    home.tariff = None
    home.save()
    cycle = Cycle.objects.filter(device__home=home).first()
    Cycle.objects.filter(pk=cycle.pk).update(earliest_start=now - timedelta(hours=5),
                                             latest_end=now + timedelta(minutes=20), scheduled_start=None)
    message = submit(owner_client, home).json()["error"]["message"]
    assert "tariff" in message
    assert f"cycle {cycle.pk}" in message and "already passed" in message


def test_other_users_home_and_run_are_404(home, stranger, owner_client, django_capture_on_commit_callbacks):
    assert submit(client_for(stranger), home).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        run_id = submit(owner_client, home).json()["id"]
    assert client_for(stranger).get(f"/api/v1/optimizations/{run_id}").status_code == 404
    assert client_for(stranger).get(f"/api/v1/homes/{home.pk}/schedules/latest").status_code == 404


def test_eager_run_stores_schedule_recommendations_and_notifies(home, owner, owner_client,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(owner_client, home)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["created"] is True and body["status_url"].endswith(f"/api/v1/optimizations/{body['id']}")
    run = owner_client.get(body["status_url"]).json()
    assert run["status"] == "succeeded", run
    assert run["timings"]["finished_at"] and run["solver_stats"]
    schedule = run["schedule"]
    assert schedule["cost_eur"] < schedule["baseline_cost_eur"] - 0.01  # the user's starts are at peak price
    assert {d["item"] for d in schedule["devices"]} >= {f"cycle-{c.pk}" for c in Cycle.objects.filter(device__home=home)}
    # Each slot has its start, prices and CO2 beside the powers; devices carry their API ids and reasons.
    assert len(schedule["slot_starts"]) == len(schedule["import_price_eur_per_kwh"]) == schedule["slots"]
    assert len(schedule["baseline_net_import_kw"]) == schedule["slots"]
    moved = [d for d in schedule["devices"] if d["kind"] == "cycle"]
    assert all(d["device"] in set(home.devices.values_list("pk", flat=True)) for d in moved)
    assert all(" moved from " in d["reason"] and d["reason"].startswith(d["name"]) for d in moved)
    # The user's starts (peak price) move to cheaper slots.
    recs = owner_client.get("/api/v1/recommendations", {"status": "pending"}).json()["results"]
    assert recs, "moving cycles must produce recommendations"
    assert all(r["saving_eur"] > 0 for r in recs)
    latest = owner_client.get(f"/api/v1/homes/{home.pk}/schedules/latest").json()
    assert latest["id"] == schedule["id"]
    notes = owner_client.get("/api/v1/notifications").json()["results"]
    assert any(n["kind"] == "plan_changed" for n in notes)

    # Accept one (the device has no hub: a notification instead of a command), decline the other.
    first, *rest = recs
    with django_capture_on_commit_callbacks(execute=True):
        accepted = owner_client.post(f"/api/v1/recommendations/{first['id']}/accept").json()
    assert accepted["status"] == "accepted"
    assert Cycle.objects.get(pk=first["cycle"]).scheduled_start.isoformat().startswith(first["recommended_start"][:16])
    assert Notification.objects.filter(user=owner, kind="device_without_hub").exists()
    assert owner_client.post(f"/api/v1/recommendations/{first['id']}/decline").status_code == 409
    if rest:
        assert owner_client.post(f"/api/v1/recommendations/{rest[0]['id']}/decline").json()["status"] == "declined"

    note = owner_client.get("/api/v1/notifications").json()["results"][0]
    assert owner_client.post(f"/api/v1/notifications/{note['id']}/dismiss").json()["dismissed_at"]
    assert owner_client.post("/api/v1/notifications/dismiss-all").json()["dismissed"] >= 1
    assert owner_client.get("/api/v1/notifications", {"dismissed": "false"}).json()["count"] == 0


def test_automatic_management_sends_commands_to_the_hub(owner, now, django_capture_on_commit_callbacks):
    from tests.factories.homes import seed_area_signals, seed_standard_home

    seed_area_signals(now)
    auto = seed_standard_home(owner, "Automatic", now, hub=True, automatic=True)
    with django_capture_on_commit_callbacks(execute=True):
        run, created = services.submit_run(auto)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.explanation)
    kinds = set(HubCommand.objects.filter(run=run).values_list("kind", flat=True))
    assert "set_ev_power" in kinds
    assert "start_cycle" in kinds
    assert Recommendation.objects.filter(schedule__run=run, status="accepted").exists()


def test_identical_input_returns_the_existing_run_unless_forced(home, owner_client,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = submit(owner_client, home).json()
        again = submit(owner_client, home)
        forced = submit(owner_client, home, {"force": True})
    assert again.status_code == 200 and again.json()["id"] == first["id"] and again.json()["created"] is False
    assert forced.status_code == 202 and forced.json()["id"] != first["id"]
    assert OptimizationRun.objects.filter(home=home).count() == 2


def test_result_write_is_idempotent(home):
    run, _ = services.submit_run(home)  # on_commit not executed: run stays queued
    result = services.solve_problem(run)
    assert services.store_result(run.pk, result) == RunStatus.SUCCEEDED
    assert services.store_result(run.pk, result) == RunStatus.SUCCEEDED
    assert services.execute_run(run.pk) is None  # a late redelivery does nothing
    assert Schedule.objects.filter(run=run).count() == 1
    assert Recommendation.objects.filter(schedule__run=run).count() == Recommendation.objects.filter(home=home).count()


def test_reaper_requeues_then_gives_up(home, settings):
    settings.OPTIMIZATION_MAX_ATTEMPTS = 2
    run, _ = services.submit_run(home)
    later = timezone.now() + timedelta(seconds=settings.OPTIMIZATION_STUCK_AFTER_S + 1)
    assert services.reap_stuck_runs(now=later) == {"requeued": 1, "failed": 0}
    OptimizationRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now(), attempts=2)
    assert services.reap_stuck_runs(now=later) == {"requeued": 0, "failed": 1}
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "Gave up" in run.error


def test_invalid_request_body_is_400(home, owner_client):
    response = submit(owner_client, home, {"backend": "quantum", "time_limit_s": -1})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"backend", "time_limit_s"}


def test_a_replan_sends_only_the_setpoints_that_changed(owner, now, django_capture_on_commit_callbacks):
    from tests.factories.homes import seed_area_signals, seed_standard_home

    seed_area_signals(now)
    auto = seed_standard_home(owner, "Automatic", now, hub=True, automatic=True)
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = services.submit_run(auto)
    sent = HubCommand.objects.filter(run=first, kind="set_ev_power").count()
    assert sent >= 1
    with django_capture_on_commit_callbacks(execute=True):
        same, _ = services.submit_run(auto, force=True)  # same inputs: the same plan
    same.refresh_from_db()
    assert same.status == RunStatus.SUCCEEDED
    assert not HubCommand.objects.filter(run=same, kind="set_ev_power").exists()
    # A changed EV need changes its setpoints: those are sent.
    EVSession.objects.filter(device__home=auto).update(energy_kwh=4.0)
    with django_capture_on_commit_callbacks(execute=True):
        changed, _ = services.submit_run(auto, force=True)
    assert HubCommand.objects.filter(run=changed, kind="set_ev_power").exists()
