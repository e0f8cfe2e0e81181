"""A re-plan (new cycle, drifted state of charge, ...) keeps the activation shares the home was planned to follow."""
from __future__ import annotations

from datetime import timedelta

import pytest

from flexibility.grid import services as flex_services
from flexibility.grid.models import ActivationShare, ShareStatus
from flexibility.planning.models import OptimizationRun, RunTrigger
from flexibility.planning.services import execute_run, submit_run
from flexibility.planning.services.replanning import reoptimize

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

    # The same re-plan without the commitment plans the home elsewhere in those slots: the test can fail.
    free, _ = submit_run(household, trigger=RunTrigger.REOPTIMIZE, horizon_start=run.horizon_start,
                         horizon_end=run.horizon_end, force=True, enqueue=False)
    assert "grid_request" not in free.problem
    execute_run(free.pk)
    assert _net(free, start, len(setpoints)) != pytest.approx(setpoints, abs=1e-3)


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
