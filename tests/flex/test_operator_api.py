"""Operator API: roles and portfolio scope, offers, activations (split, 422, 409), delivery."""
from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from devices.models import Measurement
from devices.services import record_measurements
from flexibility.grid.models import Activation, ActivationShare, FlexibilityOffer

from .conftest import CORRELATION, jwt_client, make_home, store_offer, tomorrow

pytestmark = pytest.mark.django_db


def offers_all(*homes):
    return [store_offer(h) for h in homes]


def test_household_token_and_no_credentials_cannot_reach_operator_endpoints(household, portfolio):
    offers_all(household)
    url = f"/api/v1/operator/offers/?delivery_day={tomorrow()}"
    assert jwt_client(household.owner).get(url).status_code == 403
    assert APIClient().get(url).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Api-Key abc.def")
    assert bad.get(url).status_code == 401
    r = jwt_client(household.owner).post("/api/v1/operator/activations/", {}, format="json")
    assert r.status_code == 403


def test_service_account_sees_only_its_portfolios(aggregator, household, neighbour, outsider):
    offers_all(household, neighbour, outsider)
    r = aggregator.get(f"/api/v1/operator/offers/?delivery_day={tomorrow()}")
    assert r.status_code == 200
    assert sorted(o["home"] for o in r.json()["results"]) == sorted([household.pk, neighbour.pk])
    r = aggregator.get("/api/v1/operator/portfolios/")
    assert [p["code"] for p in r.json()["results"]] == ["feeder-1"]
    offer = FlexibilityOffer.objects.get(home=outsider)
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": outsider.pk, "start": offer.start.isoformat(), "setpoints_kw": [1.0]}, format="json")
    assert r.status_code == 404
    assert not Activation.objects.exists()


def test_non_contributing_homes_are_not_offered(aggregator, portfolio):
    lazy = make_home("hh00000009", opt_in=False)
    portfolio.homes.add(lazy)
    store_offer(lazy)
    r = aggregator.get(f"/api/v1/operator/offers/?delivery_day={tomorrow()}")
    assert lazy.pk not in [o["home"] for o in r.json()["results"]]


def test_portfolio_offer_sums_limits_with_a_merit_order(aggregator, portfolio, household, neighbour):
    store_offer(household, up=2.0)
    store_offer(neighbour, up=1.0, down=0.5)
    r = aggregator.get(f"/api/v1/operator/portfolios/{portfolio.pk}/offer/?delivery_day={tomorrow()}")
    assert r.status_code == 200
    body = r.json()
    assert body["homes"] == 2
    assert body["max_kw"][0] == pytest.approx(0.5 + 2.0 + 0.5 + 1.0)
    assert body["min_kw"][0] == pytest.approx(0.5 - 1.0 + 0.5 - 0.5)
    assert body["merit_order"][0]["up"][-1]["cumulative_kw"] == pytest.approx(3.0)


def test_portfolio_activation_is_split_within_envelopes_and_meets_the_sum(aggregator, portfolio, household, neighbour):
    a, b = store_offer(household, up=2.0), store_offer(neighbour, up=1.0)
    start = a.start + timedelta(hours=10)
    request = [3.5, 2.0, None, 0.2]
    r = aggregator.post("/api/v1/operator/activations/", {
        "portfolio": portfolio.pk, "start": start.isoformat(), "setpoints_kw": request}, format="json")
    assert r.status_code == 201, r.json()
    shares = {s["home"]: s for s in r.json()["shares"]}
    offers = {household.pk: a, neighbour.pk: b}
    for t, req in enumerate(request):
        if req is None:
            assert all(s["target_kw"][t] is None for s in shares.values())
            continue
        assert sum(s["target_kw"][t] for s in shares.values()) == pytest.approx(req)
        for home_id, s in shares.items():
            o = offers[home_id]
            assert o.min_kw[40 + t] - 1e-9 <= s["min_kw"][t] <= s["target_kw"][t] <= s["max_kw"][t] <= o.max_kw[40 + t] + 1e-9
    assert ActivationShare.objects.filter(activation_id=r.json()["id"]).count() == 2


def test_activation_beyond_the_offer_is_422_with_the_maximum_per_slot(aggregator, household):
    offer = store_offer(household, up=2.0)
    start = offer.start + timedelta(hours=12)
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": household.pk, "start": start.isoformat(), "setpoints_kw": [2.0, 2.6]}, format="json")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "beyond_offer"
    assert err["available"]["max_kw"] == [2.5, 2.5]
    assert err["available"]["slots_beyond"] == [1]
    assert "2.500" in err["message"]
    assert not Activation.objects.exists()


def test_activation_after_the_delivery_window_is_409(aggregator, household):
    yesterday = tomorrow() - timedelta(days=2)
    offer = store_offer(household, day=yesterday)
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": household.pk, "start": offer.start.isoformat(), "setpoints_kw": [1.0]}, format="json")
    assert r.status_code == 409
    assert "ended" in r.json()["error"]["message"] or "begun" in r.json()["error"]["message"]


def test_bad_activation_requests_are_400(aggregator, household, portfolio):
    offer = store_offer(household)
    for body in (
        {"start": offer.start.isoformat(), "setpoints_kw": [1.0]},
        {"home": household.pk, "portfolio": portfolio.pk, "start": offer.start.isoformat(), "setpoints_kw": [1.0]},
        {"home": household.pk, "start": (offer.start + timedelta(minutes=7)).isoformat(), "setpoints_kw": [1.0]},
        {"home": household.pk, "start": offer.start.isoformat(), "setpoints_kw": [None]},
        {"home": household.pk, "start": offer.start.isoformat(), "setpoints_kw": ["x"]},
    ):
        r = aggregator.post("/api/v1/operator/activations/", body, format="json")
        assert r.status_code == 400, body
        assert set(r.json()["error"]) == {"code", "message", "fields"}


def test_delivery_reports_requested_planned_and_measured(aggregator, household):
    offer = store_offer(household)
    start = offer.start + timedelta(hours=10)
    r = aggregator.post("/api/v1/operator/activations/", {
        "home": household.pk, "start": start.isoformat(), "min_kw": [1.5, None], "max_kw": [None, 0.2]}, format="json")
    assert r.status_code == 201
    act = Activation.objects.get(pk=r.json()["id"])
    share = act.shares.get()
    share.planned_kw = [1.5, 0.1]
    share.save()
    record_measurements([
        Measurement(home=household, time=start + timedelta(minutes=1), power_w=1400),
        Measurement(home=household, time=start + timedelta(minutes=9), power_w=1600),
    ])
    r = aggregator.get(f"/api/v1/operator/activations/{act.pk}/delivery/")
    slots = r.json()["slots"]
    assert slots[0] == {"start": start.isoformat(), "requested_min_kw": 1.5, "requested_max_kw": None,
                        "planned_kw": 1.5, "measured_kw": pytest.approx(1.5)}
    assert slots[1]["measured_kw"] is None and slots[1]["requested_max_kw"] == 0.2
