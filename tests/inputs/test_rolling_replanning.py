"""The rolling re-planning tick on stored plans and telemetry: who is re-planned, and why."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from devices.models import Cycle, CycleState, SignalKind, SignalSeries
from devices.services import record_measurements
from flexibility.planning import services
from flexibility.planning.models import OptimizationRun, RunStatus, RunTrigger, Schedule
from flexibility.planning.services import rolling
from flexibility.planning.slots import floor_to_slot


@pytest.fixture
def planned(home, battery, washing_machine, make_cycle, slot_start, django_capture_on_commit_callbacks):
    """A home with a battery and a washing-machine cycle, planned from the current slot (eager solve)."""
    make_cycle(washing_machine, earliest_start=slot_start + timedelta(hours=2),
               latest_end=slot_start + timedelta(hours=12))
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = services.submit_run(home)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.explanation)
    return run


def _now(run):
    return run.horizon_start + timedelta(minutes=20)


def _planned_soc_pct(run, battery, now):
    schedule = Schedule.objects.get(run=run)
    t = int((now - schedule.start) / timedelta(minutes=15))
    return 100 * schedule.devices[f"battery-{battery.pk}"]["soc_kwh"][t] / battery.parameters["capacity_kwh"]


def test_a_home_on_its_plan_is_left_alone(planned, home, battery):
    now = _now(planned)
    record_measurements([{"home": home, "device": battery, "time": now - timedelta(minutes=2),
                          "soc_pct": _planned_soc_pct(planned, battery, now) + 3}])
    assert rolling.homes_with_current_plan(now) == [home.pk]
    result = rolling.check_chunk([home.pk], now)
    assert (result.homes, result.replans, result.reasons) == (1, 0, {})


def test_soc_off_the_plan_re_plans_from_now(planned, home, battery, django_capture_on_commit_callbacks):
    now = _now(planned)
    off = max(_planned_soc_pct(planned, battery, now) - 30, 0)
    record_measurements([{"home": home, "device": battery, "time": now - timedelta(minutes=2), "soc_pct": off}])
    with django_capture_on_commit_callbacks(execute=True):  # embedded mode: the debounced re-plan runs at once
        result = rolling.check_chunk([home.pk], now)
    assert result.replans == 1 and "battery" in result.reasons[home.pk][0]
    replan = OptimizationRun.objects.filter(home=home, trigger=RunTrigger.REOPTIMIZE).get()
    assert replan.problem["batteries"][0]["initial_soc_pct"] == pytest.approx(off)


def test_cycle_started_early_and_ev_plugged_in_are_reasons(planned, home, washing_machine, ev_charger,
                                                             make_ev_session):
    now = _now(planned)
    cycle = Cycle.objects.get(device=washing_machine)
    Cycle.objects.filter(pk=cycle.pk).update(state=CycleState.RUNNING, scheduled_start=now - timedelta(minutes=10))
    session = make_ev_session(ev_charger, arrival=now - timedelta(minutes=5), departure=now + timedelta(hours=8))
    reasons = rolling.check_chunk([home.pk], now, max_replans=0).reasons[home.pk]
    assert f"cycle {cycle.pk} started" in reasons
    assert f"EV session {session.pk} plugged in" in reasons


def test_load_off_its_forecast_for_two_hours_is_a_reason_one_hour_is_not(planned, home):
    now = _now(planned)
    until = floor_to_slot(now)
    # The forecast the plan was made with starts at the plan; the one of the hours before comes from earlier.
    SignalSeries.objects.create(kind=SignalKind.LOAD_FORECAST, home=home, start=until - timedelta(hours=3),
                                resolution_minutes=15, values=[400.0] * 12, source="test")
    record_measurements([{"home": home, "time": until - timedelta(minutes=m), "power_w": 2000.0}
                         for m in (5, 20, 35, 50)])  # the last hour only
    assert rolling.check_chunk([home.pk], now, max_replans=0).reasons == {}
    record_measurements([{"home": home, "time": until - timedelta(minutes=m), "power_w": 1500.0}
                         for m in (65, 80, 95, 110)])  # and the hour before
    reasons = rolling.check_chunk([home.pk], now, max_replans=0).reasons[home.pk]
    assert reasons == ["base load 2000 W instead of 400 W (the hour before: 1500 W instead of 400 W)"]


def test_at_most_the_configured_replans_per_chunk(planned, home, battery, make_home, user):
    now = _now(planned)
    record_measurements([{"home": home, "device": battery, "time": now - timedelta(minutes=1), "soc_pct": 100.0}])
    result = rolling.check_chunk([home.pk], now, max_replans=0)
    assert result.reasons and result.replans == 0
    assert rolling.check_chunk([make_home(user).pk], now).homes == 0  # no plan, nothing to check


def test_the_tick_announces_chunks(planned, home, settings, django_capture_on_commit_callbacks):
    from flexibility.planning import signals

    got = []

    def receiver(sender, home_ids, now, **kwargs):
        got.append(home_ids)

    signals.rolling_chunk_due.connect(receiver, dispatch_uid="test-rolling")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert rolling.start_tick(_now(planned), chunk_size=1) == 1
    finally:
        signals.rolling_chunk_due.disconnect(dispatch_uid="test-rolling")
    assert got == [[home.pk]]


def test_a_replan_runs_from_the_current_slot_to_where_the_plan_ends(home, slot_start,
                                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = services.submit_run(home, horizon_start=slot_start - timedelta(minutes=15),
                                       horizon_end=slot_start + timedelta(hours=6))
    with django_capture_on_commit_callbacks(execute=True):
        replan = services.reoptimize(home.pk, "battery off its plan")
    assert replan.trigger == RunTrigger.REOPTIMIZE
    assert replan.horizon_end == first.horizon_end  # not a fresh 24 h: prices beyond may not be published
    assert replan.horizon_start == floor_to_slot(replan.queued_at)  # the current slot


def test_a_request_the_replan_in_progress_is_planning_is_not_a_lost_trigger(planned, home, washing_machine,
                                                                             make_cycle, slot_start, request):
    """The listener's re-plan of a new cycle is building when the tick looks: the cycle is newer than the home's
    last stored run, but not lost (re-planning it again only doubled the work)."""
    import redis as redis_lib

    from tests.plugins.celery_worker import broker_url, use_broker

    request.addfinalizer(use_broker(broker_url()))
    cycle = make_cycle(washing_machine, earliest_start=slot_start + timedelta(hours=3),
                       latest_end=slot_start + timedelta(hours=9))
    now = _now(planned)
    assert f"cycle {cycle.pk} is not in the plan" in rolling.check_chunk([home.pk], now, max_replans=0).reasons[home.pk]
    key = f"hems:replanning:{home.pk}"
    r = redis_lib.Redis.from_url(broker_url())
    r.set(key, timezone.now().isoformat(), ex=60)  # what reoptimize holds while it plans
    request.addfinalizer(lambda: r.delete(key))
    assert rolling.check_chunk([home.pk], now, max_replans=0).reasons == {}
