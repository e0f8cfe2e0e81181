"""Statistics endpoints: the household sees its own homes, operators their portfolios; bad queries are 400."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from flexibility.grid import services as grid_services
from flexibility.grid.models import Portfolio

from .conftest import DAY, at, meter

pytestmark = pytest.mark.django_db


def test_household_reads_its_own_statistics_and_series(api_client, winter_home, other_home):
    meter(winter_home, at(DAY, 2), 4, 2000.0)
    r = api_client.get(f"/api/v1/homes/{winter_home.pk}/statistics/",
                       {"first_day": DAY.isoformat(), "last_day": DAY.isoformat(), "devices": "true"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["home"] == winter_home.pk and body["totals"]["import_kwh"] == pytest.approx(2.0)
    assert isinstance(body["devices"], list)
    r = api_client.get(f"/api/v1/homes/{winter_home.pk}/statistics/series/", {"day": DAY.isoformat()})
    assert r.status_code == 200 and len(r.json()["slots"]) == 96
    assert r.json()["slots"][8]["measured_net_import_kw"] == pytest.approx(2.0)
    for url in (f"/api/v1/homes/{other_home.pk}/statistics/", f"/api/v1/homes/{other_home.pk}/statistics/series/"):
        assert api_client.get(url).status_code == 404
    assert APIClient().get(f"/api/v1/homes/{winter_home.pk}/statistics/").status_code == 401


@pytest.mark.parametrize("query, field", [
    ({"first_day": "2026-11-10", "last_day": "2026-11-09"}, "last_day"),
    ({"first_day": "2025-01-01", "last_day": "2026-11-09"}, "last_day"),
    ({"bucket": "week"}, "bucket"),
    ({"first_day": "10/11/2026"}, "first_day"),
])
def test_bad_queries_name_the_field(api_client, winter_home, query, field):
    r = api_client.get(f"/api/v1/homes/{winter_home.pk}/statistics/", query)
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]


def test_operators_read_their_portfolios_only(winter_home, other_home, api_client, staff_client):
    mine = Portfolio.objects.create(code="mine", name="Mine")
    mine.homes.set([winter_home])
    theirs = Portfolio.objects.create(code="theirs", name="Theirs")
    theirs.homes.set([other_home])
    _, key = grid_services.create_service_account("stats-aggregator", portfolios=[mine])
    aggregator = APIClient()
    aggregator.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    meter(winter_home, at(DAY, 2), 4, 2000.0)
    query = {"first_day": DAY.isoformat(), "last_day": DAY.isoformat()}
    r = aggregator.get(f"/api/v1/operator/portfolios/{mine.pk}/statistics/", query)
    assert r.status_code == 200 and r.json()["totals"]["import_kwh"] == pytest.approx(2.0)
    assert r.json()["portfolio_code"] == "mine"
    assert aggregator.get(f"/api/v1/operator/portfolios/{theirs.pk}/statistics/").status_code == 404
    assert api_client.get(f"/api/v1/operator/portfolios/{mine.pk}/statistics/").status_code == 403
    assert staff_client.get(f"/api/v1/operator/portfolios/{theirs.pk}/statistics/", query).status_code == 200
