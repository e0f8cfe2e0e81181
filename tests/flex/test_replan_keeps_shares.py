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
