"""POST /api/v1/signals/: bulk, idempotent by (kind, scope, start), all or nothing, scoped by who writes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


from devices.models import SignalSeries

UTC = timezone.utc
START = datetime(2026, 5, 4, 23, tzinfo=UTC)


def series(kind="load_forecast", slots=96, res=15, start=START, **scope):
    return {"kind": kind, "start": start.isoformat(), "resolution_minutes": res,
            "values": [100.0 + i for i in range(slots)], **scope}


def post(client, *items):
    return client.post("/api/v1/signals/", {"series": list(items)}, format="json")


def fields(response) -> set[str]:
    return set(response.json()["error"]["fields"])


def test_household_writes_forecasts_and_prices_of_its_own_home_idempotently(api_client, home, pv):
    body = [series(home=home.pk), series("pv_forecast", home=home.pk, device=pv.pk),
            series("import_price", res=60, slots=24, home=home.pk)]
    first = post(api_client, *body)
    assert first.status_code == 201, first.json()
    assert first.json() == {"stored": 3, "replaced": 0}
    again = post(api_client, *body)
    assert again.json() == {"stored": 3, "replaced": 3}
    assert SignalSeries.objects.filter(home=home).count() == 3
    stored = SignalSeries.objects.get(kind="pv_forecast")
    assert (stored.device_id, stored.start, stored.values[:2]) == (pv.pk, START, [100.0, 101.0])
    listed = api_client.get("/api/v1/signals/", {"home": home.pk, "kind": "load_forecast"}).json()
    assert listed["count"] == 1


def test_household_cannot_write_another_homes_series_nor_area_signals(api_client, home, other_home):
    r = post(api_client, series(home=home.pk), series(home=other_home.pk),
             series("import_price", area="PT"), series("co2_intensity", home=home.pk))
    assert r.status_code == 400
    assert fields(r) == {"series[1].home", "series[2].area", "series[3].kind"}
    assert not SignalSeries.objects.exists()  # the good first series was not stored either


def test_every_bad_field_is_named_and_nothing_is_written(api_client, home):
    bad_values = series(home=home.pk, start=START + timedelta(days=1))
    bad_values["values"][5] = "lots"
    naive = series(home=home.pk, start=START + timedelta(days=2))
    naive["start"] = "2026-05-06T00:00:00"
    r = post(api_client, series(home=home.pk), bad_values, naive,
             series(home=home.pk, start=START + timedelta(minutes=7)),
             dict(series(home=home.pk, start=START + timedelta(days=3)), unit="W"),
             series(home=home.pk, start=START + timedelta(hours=12)))
    assert r.status_code == 400
    assert fields(r) == {"series[1].values", "series[2].start", "series[3].start", "series[4].unit",
                         "series[5].start"}  # 5 overlaps series[0] in the same request
    assert r.json()["error"]["code"] == "invalid"
    assert not SignalSeries.objects.exists()


def test_a_long_series_is_stored_in_week_long_pieces(staff_client):
    bad = series("import_price", area="PT", res=60, slots=24 * 20)
    bad["values"][200] = None
    r = post(staff_client, bad)
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"series[0].values": ["values[200] is not a number."]}
    r = post(staff_client, series("import_price", area="PT", res=60, slots=24 * 20))
    assert r.status_code == 201 and r.json()["stored"] == 3
    pieces = list(SignalSeries.objects.order_by("start"))
    assert [len(p.values) for p in pieces] == [168, 168, 144]
    assert pieces[1].start == START + timedelta(days=7) and pieces[1].values[0] == 100.0 + 168


def test_anonymous_is_refused(db, anon_client):
    assert post(anon_client, series(area="PT", kind="import_price")).status_code == 401


def test_the_envelope_is_checked(api_client):
    r = api_client.post("/api/v1/signals/", {"series": [series()], "extra": 1}, format="json")
    assert r.status_code == 400 and fields(r) == {"extra"}
    r = api_client.post("/api/v1/signals/", {"series": []}, format="json")
    assert r.status_code == 400 and fields(r) == {"series"}


def _key_client(key: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def test_data_provider_account_writes_area_prices_and_any_homes_forecasts(db, home, other_home):
    from flexibility.grid.services import create_service_account

    _, key = create_service_account("prices-feed", role="data_provider")
    provider = _key_client(key)
    r = post(provider, series("import_price", res=60, slots=48, area="PT"), series("co2_intensity", res=60, slots=24,
             area="ES"), series(home=other_home.pk))
    assert r.status_code == 201, r.json()
    assert SignalSeries.objects.filter(home__isnull=True).count() == 2
    assert provider.get("/api/v1/signals/", {"home": other_home.pk}).json()["count"] == 1
    # It is not an operator of the flexibility market.
    assert provider.get("/api/v1/operator/portfolios/").status_code == 403
    # And operator or aggregator accounts do not write signals.
    _, operator_key = create_service_account("dso", role="system_operator")
    assert post(_key_client(operator_key), series("import_price", area="PT")).status_code == 403
    assert post(_key_client("nope.nope"), series("import_price", area="PT")).status_code == 401
