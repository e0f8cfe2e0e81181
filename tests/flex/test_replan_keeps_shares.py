"""Every plan (a re-plan after a new cycle or a drifted state of charge, the household's own, the day-ahead one)
keeps the activation shares the home was planned to follow, also when they were planned while it was made."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from flexibility.grid import services as flex_services
from flexibility.grid.models import ActivationShare, ShareStatus
from flexibility.optimizer import problem_from_dict, solve
from flexibility.planning import signals as planning_signals
from flexibility.planning.models import FleetRun, OptimizationRun, RunStatus, RunTrigger, Schedule
from flexibility.planning.services import execute_run, plan_fleet_chunk, submit_run
from flexibility.planning.services.replanning import reoptimize
from flexibility.planning.slots import floor_to_slot

from .conftest import store_offer

pytestmark = pytest.mark.django_db


def _net(run: OptimizationRun, when, slots: int) -> list[float]:
    schedule = OptimizationRun.objects.get(pk=run.pk).schedule
    first = int((when - schedule.start) / timedelta(minutes=schedule.resolution_minutes))
    return [float(v) for v in schedule.net_import_kw[first:first + slots]]


def test_a_re_plan_keeps_the_planned_share_and_would_leave_it_without(aggregator, household):
    offer = store_offer(household, up=2.0)
    start = offer.start + timedelta(hours=12)
    setpoints = [2.5, 2.5, 2.0, 2.0]  # the battery charges at midday prices, which a plan alone would not do
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": household.pk, "start": start.isoformat(), "setpoints_kw": setpoints}, format="json")
    assert r.status_code == 201, r.json()
    share = flex_services.replan_share(ActivationShare.objects.get(activation_id=r.json()["id"]).pk)
    assert share.status == ShareStatus.PLANNED, share.message

    run = reoptimize(household.pk, "the battery's state of charge left the plan")
    assert run is not None and run.trigger == RunTrigger.REOPTIMIZE
    request = run.problem["grid_request"]
    assert request["penalty_eur_per_kwh"] > 1.0
    assert sum(v is not None for v in request["min_net_import_kw"]) == len(setpoints)
    execute_run(run.pk)
    assert _net(run, start, len(setpoints)) == pytest.approx(setpoints, abs=1e-3)

    # The same problem without the commitment plans the home elsewhere in those slots: the test can fail.
    free = {key: value for key, value in run.problem.items() if key != "grid_request"}
    first = int((start - run.horizon_start) / timedelta(minutes=free["resolution_min"]))
    net = solve(problem_from_dict(free)).to_dict()["net_import_kw"][first:first + len(setpoints)]
    assert net != pytest.approx(setpoints, abs=1e-3)


def test_failed_or_infeasible_shares_are_not_carried(aggregator, household):
    offer = store_offer(household, up=2.0)
    start = offer.start + timedelta(hours=12)
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": household.pk, "start": start.isoformat(), "setpoints_kw": [2.5]}, format="json")
    assert r.status_code == 201, r.json()
    ActivationShare.objects.filter(activation_id=r.json()["id"]).update(status=ShareStatus.INFEASIBLE)
    run = reoptimize(household.pk, "a new cycle")
    assert run is not None and "grid_request" not in run.problem


def _activate(aggregator, home, start, setpoints, chunk: bool = False) -> ActivationShare:
    """Activate the home and plan its share alone (`replan_share`) or as a chunk task does (`replan_shares`)."""
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": home.pk, "start": start.isoformat(), "setpoints_kw": setpoints}, format="json")
    assert r.status_code == 201, r.json()
    share = ActivationShare.objects.get(activation_id=r.json()["id"])
    if chunk:
        flex_services.replan_shares([share.pk])
        return ActivationShare.objects.get(pk=share.pk)
    return flex_services.replan_share(share.pk)


@pytest.mark.parametrize("chunk", [False, True])
def test_a_later_activation_of_the_home_keeps_the_earlier_one(aggregator, household, chunk):
    offer = store_offer(household, up=2.0)
    morning, evening = offer.start + timedelta(hours=12), offer.start + timedelta(hours=19)
    first = _activate(aggregator, household, morning, [2.5, 2.5, 2.0, 2.0])
    assert first.status == ShareStatus.PLANNED, first.message
    second = _activate(aggregator, household, evening, [0.0, 0.0], chunk)
    assert second.status == ShareStatus.PLANNED, second.message
    request = second.run.problem["grid_request"]
    assert request["penalty_eur_per_kwh"] is None and sum(v is not None for v in request["min_net_import_kw"]) == 6
    assert _net(second.run, morning, 4) == pytest.approx([2.5, 2.5, 2.0, 2.0], abs=1e-3)
    assert _net(second.run, evening, 2) == pytest.approx([0.0, 0.0], abs=1e-3)


@pytest.mark.parametrize("chunk", [False, True])
def test_a_later_activation_that_contradicts_a_planned_one_is_infeasible_and_the_plan_stays(aggregator, household,
                                                                                              chunk):
    offer = store_offer(household, up=2.0)
    at = offer.start + timedelta(hours=12)
    first = _activate(aggregator, household, at, [2.5])
    assert first.status == ShareStatus.PLANNED, first.message
    second = _activate(aggregator, household, at, [0.0], chunk)
    assert second.status == ShareStatus.INFEASIBLE, second.message
    assert f"At {at.isoformat()} the home already follows another activation (2.5 kW), which this one (0 kW)" \
        in second.message
    latest = OptimizationRun.objects.filter(home=household, schedule__isnull=False).latest("queued_at")
    assert latest.pk == first.run_id and _net(latest, at, 1) == pytest.approx([2.5], abs=1e-3)



MORNING = [2.5, 2.5, 2.0, 2.0]


class Replans(list):
    """The homes a re-plan was asked for; `with replans():` runs the callbacks of what it encloses on commit
    (in-process here: no broker), so a re-plan asked there runs too."""

    def __init__(self, capture):
        super().__init__()
        self._capture = capture

    def __call__(self):
        return self._capture(execute=True)


@pytest.fixture
def replans(django_capture_on_commit_callbacks):
    asked = Replans(django_capture_on_commit_callbacks)
    planning_signals.replan_due.connect(lambda sender, home_id, **kw: asked.append(home_id), weak=False,
                                        dispatch_uid="test.replans")
    yield asked
    planning_signals.replan_due.disconnect(dispatch_uid="test.replans")


def _queued(aggregator, home, start, setpoints) -> ActivationShare:
    """An activation of the home whose share is not planned yet."""
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": home.pk, "start": start.isoformat(), "setpoints_kw": setpoints}, format="json")
    assert r.status_code == 201, r.json()
    return ActivationShare.objects.select_related("activation", "home", "home__tariff", "offer").get(
        activation_id=r.json()["id"])


def _built_together(*shares: ActivationShare) -> None:
    """Each share's problem built before any of their plans is stored, as workers planning at once do."""
    for share in shares:
        assert flex_services._record_share_runs([share], {}), share


def _newest_plan(home) -> OptimizationRun:
    return Schedule.objects.filter(home=home).order_by("-pk").first().run


def test_two_activations_planned_at_once_end_in_a_plan_that_keeps_both(aggregator, household, replans):
    offer = store_offer(household, up=2.0)
    morning, evening = offer.start + timedelta(hours=12), offer.start + timedelta(hours=19)
    first = _queued(aggregator, household, morning, MORNING)
    # 2 kW: the battery (3 kW) can follow it whatever base load the re-plan's fresh forecast expects there
    second = _queued(aggregator, household, evening, [2.0, 2.0])
    _built_together(first, second)
    with replans():
        assert flex_services.replan_share(first.pk).status == ShareStatus.PLANNED
    assert replans == []  # the first plan stored and recorded knew every share planned so far
    with replans():
        second = flex_services.replan_share(second.pk)
    assert second.status == ShareStatus.PLANNED, second.message
    # The second share's own plan does not keep the first share: the race is real ...
    assert _net(second.run, morning, len(MORNING)) != pytest.approx(MORNING, abs=1e-3)
    # ... so the home was re-planned, keeping both.
    assert replans == [household.pk]
    latest = _newest_plan(household)
    assert latest.trigger == RunTrigger.REOPTIMIZE and latest.status == RunStatus.SUCCEEDED
    assert _net(latest, morning, len(MORNING)) == pytest.approx(MORNING, abs=1e-3)
    assert _net(latest, evening, 2) == pytest.approx([2.0, 2.0], abs=1e-3)
    assert replans == [household.pk]  # the re-plan knew everything: it asked for no other


def test_two_contradicting_activations_planned_at_once_leave_the_later_infeasible(aggregator, household, replans):
    offer = store_offer(household, up=2.0)
    at = offer.start + timedelta(hours=12)
    first, second = _queued(aggregator, household, at, [2.5]), _queued(aggregator, household, at, [0.0])
    _built_together(first, second)
    with replans():
        assert flex_services.replan_share(first.pk).status == ShareStatus.PLANNED
        assert flex_services.replan_shares([second.pk]) == {second.pk: ShareStatus.INFEASIBLE}
    second.refresh_from_db()
    assert f"At {at.isoformat()} the home already follows another activation (2.5 kW), which this one (0 kW)" \
        in second.message
    assert replans == [household.pk]  # the second share's plan was stored: the home follows the first again
    latest = _newest_plan(household)
    assert latest.trigger == RunTrigger.REOPTIMIZE and _net(latest, at, 1) == pytest.approx([2.5], abs=1e-3)


@pytest.mark.parametrize("trigger", [RunTrigger.API, RunTrigger.REOPTIMIZE])
def test_a_plan_made_while_an_activation_was_planned_is_followed_by_one_that_keeps_it(
        aggregator, household, replans, trigger):
    offer = store_offer(household, up=2.0)
    morning = offer.start + timedelta(hours=12)
    share = _queued(aggregator, household, morning, MORNING)
    start = floor_to_slot(timezone.now())
    run, _ = submit_run(household, trigger=trigger, horizon_start=start, horizon_end=offer.end, force=True,
                        enqueue=False)
    assert "grid_request" not in run.problem  # nothing was planned yet
    with replans():
        assert flex_services.replan_share(share.pk).status == ShareStatus.PLANNED
    assert replans == []
    with replans():
        execute_run(run.pk)
    assert _net(run, morning, len(MORNING)) != pytest.approx(MORNING, abs=1e-3)  # stored, without the share
    assert replans == [household.pk]
    latest = _newest_plan(household)
    assert latest.pk != run.pk and latest.problem["grid_request"]["penalty_eur_per_kwh"] > 1.0
    assert _net(latest, morning, len(MORNING)) == pytest.approx(MORNING, abs=1e-3)

    # A plan asked for now, whatever asks (the household through the API too), keeps the share from the start.
    again, _ = submit_run(household, trigger=trigger, horizon_start=start, horizon_end=offer.end, force=True,
                          enqueue=False)
    request = again.problem["grid_request"]
    assert request["penalty_eur_per_kwh"] > 1.0 and sum(v is not None for v in request["min_net_import_kw"]) == 4
    with replans():
        execute_run(again.pk)
    assert replans == [household.pk] and _newest_plan(household).pk == again.pk
    assert _net(again, morning, len(MORNING)) == pytest.approx(MORNING, abs=1e-3)


def test_the_day_ahead_plan_keeps_the_homes_planned_shares(aggregator, household, replans):
    offer = store_offer(household, up=2.0)
    morning = offer.start + timedelta(hours=12)
    assert flex_services.replan_share(_queued(aggregator, household, morning, MORNING).pk).status == \
        ShareStatus.PLANNED
    fleet = FleetRun.objects.create(delivery_day=offer.start.astimezone(household.tzinfo).date(), homes=1,
                                    chunks_total=1)
    with replans():
        assert plan_fleet_chunk(fleet.pk, [household.pk])["submitted"] == 1
    run = fleet.runs.get()
    assert run.status == RunStatus.SUCCEEDED and run.problem["grid_request"]["penalty_eur_per_kwh"] > 1.0
    assert _net(run, morning, len(MORNING)) == pytest.approx(MORNING, abs=1e-3)
    assert replans == []
