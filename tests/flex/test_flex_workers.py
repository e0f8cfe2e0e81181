"""End to end through real workers: offers from the optimizer envelope, activations re-planned and dispatched."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from flexibility.grid.models import Activation, ActivationStatus, FlexibilityOffer
from flexibility.optimizer import problem_from_dict, solve
from flexibility.planning.problem_builder import build_problem
from hub_bridge.models import CommandKind, HubCommand
from tasks.grid import build_offer

from .conftest import tomorrow

pytestmark = pytest.mark.django_db(transaction=True)
DEADLINE_S = 120


def wait_for(condition, what: str, worker):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"Timed out waiting for {what}:\n{worker.log()[-3000:]}")


def test_offer_limits_are_achievable_and_an_activation_inside_is_met_exactly(celery_worker, household, portfolio, aggregator):
    worker = celery_worker(queues=["optimization", "default"], concurrency=1)
    day = tomorrow()
    build_offer.delay(household.pk, day.isoformat())
    offer = wait_for(lambda: FlexibilityOffer.objects.filter(home=household, delivery_day=day).first(), "the offer", worker)
    assert offer.slots == 96
    assert max(h - b for h, b in zip(offer.max_kw, offer.baseline_kw)) > 1.0  # the battery offers room

    # Each limit is achievable: re-solving with that slot pinned to it is feasible and holds it.
    base = build_problem(household, offer.start, offer.end)
    for t in range(0, offer.slots, 3):
        for limit in {offer.min_kw[t], offer.max_kw[t]}:
            pinned = [None] * offer.slots
            pinned[t] = limit
            problem = dict(base, grid_request={"min_net_import_kw": pinned, "max_net_import_kw": pinned,
                                               "penalty_eur_per_kwh": None})
            result = solve(problem_from_dict(problem), time_limit_s=10).to_dict()
            assert result["status"] in ("OPTIMAL", "FEASIBLE"), (t, limit, result["explanation"])
            assert result["net_import_kw"][t] == pytest.approx(limit, abs=1e-3)

    # An activation inside the envelope: re-planned by the worker, met exactly, dispatched to the hub.
    first = 48  # noon
    setpoints = [round((offer.baseline_kw[t] + offer.max_kw[t]) / 2, 3) for t in range(first, first + 4)]
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": household.pk, "start": (offer.start + timedelta(minutes=15 * first)).isoformat(),
        "setpoints_kw": setpoints}, format="json")
    assert r.status_code == 201, r.json()
    act = wait_for(lambda: Activation.objects.exclude(status=ActivationStatus.PLANNING).filter(pk=r.json()["id"]).first(),
                   "the activation to be planned", worker)
    assert act.status == ActivationStatus.PLANNED, list(act.shares.values("status", "message"))
    share = act.shares.get()
    assert share.planned_kw == pytest.approx(setpoints, abs=1e-3)
    assert share.run.schedule.net_import_kw[first:first + 4] == pytest.approx(setpoints, abs=1e-3)
    assert HubCommand.objects.filter(run=share.run, kind=CommandKind.SET_BATTERY_SETPOINT).exists()
    delivery = aggregator.get(f"/api/v1/operator/activations/{act.pk}/delivery/").json()
    assert [s["planned_kw"] for s in delivery["slots"]] == pytest.approx(setpoints, abs=1e-3)


def test_portfolio_activation_is_planned_by_workers_within_each_envelope(celery_worker, household, neighbour, portfolio, aggregator):
    worker = celery_worker(queues=["optimization", "default"], concurrency=2)
    day = tomorrow()
    for home in (household, neighbour):
        build_offer.delay(home.pk, day.isoformat())
    offers = wait_for(lambda: (lambda qs: qs if len(qs) == 2 else None)(list(FlexibilityOffer.objects.filter(delivery_day=day))),
                      "both offers", worker)
    t = 40
    total_base = sum(o.baseline_kw[t] for o in offers)
    total_max = sum(o.max_kw[t] for o in offers)
    request = round(total_base + 0.75 * (total_max - total_base), 3)
    r = aggregator.post("/api/v1/operator/activations/", {
        "portfolio": portfolio.pk, "start": (offers[0].start + timedelta(minutes=15 * t)).isoformat(),
        "setpoints_kw": [request]}, format="json")
    assert r.status_code == 201, r.json()
    act = wait_for(lambda: Activation.objects.exclude(status=ActivationStatus.PLANNING).filter(pk=r.json()["id"]).first(),
                   "the portfolio activation to be planned", worker)
    assert act.status == ActivationStatus.PLANNED, list(act.shares.values("status", "message"))
    planned = [s.planned_kw[0] for s in act.shares.all()]
    assert sum(planned) == pytest.approx(request, abs=2e-3)
    by_home = {o.home_id: o for o in offers}
    for share in act.shares.all():
        o = by_home[share.home_id]
        assert o.min_kw[t] - 1e-3 <= share.planned_kw[0] <= o.max_kw[t] + 1e-3
