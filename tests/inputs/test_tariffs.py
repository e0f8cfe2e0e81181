"""Dynamic retail tariffs from the spot price, export tariffs, defaults for new homes, household tariffs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from devices.models import Home, Tariff
from devices.tariffs import price_series, retail_from_spot, tariff_export_prices, tariff_import_prices

UTC = timezone.utc


def test_retail_price_is_spot_times_multiplier_plus_adder_and_fee_with_vat():
    assert retail_from_spot([0.05, -0.01], [0.0118, 0.0642], multiplier=1.1, adder_eur_per_kwh=0.012, vat_pct=23) == [
        round((0.05 * 1.1 + 0.012 + 0.0118) * 1.23, 6), round((-0.011 + 0.012 + 0.0642) * 1.23, 6)]
    with pytest.raises(ValueError):
        retail_from_spot([0.05], [0.01, 0.02], multiplier=1, adder_eur_per_kwh=0, vat_pct=0)


@pytest.mark.django_db
def test_dynamic_tariff_prices_each_slot_with_its_time_of_use_network_fee():
    tariff = Tariff.objects.get(code="pt-dynamic-spot")
    start = datetime(2026, 3, 28, 23, tzinfo=UTC)  # Lisbon 23:00 on the eve of the 23-hour DST day
    spot = [0.05 + 0.001 * i for i in range(96)]
    prices = tariff_import_prices(tariff, start, 96, 15, "Europe/Lisbon", spot)
    fees = price_series(tariff.periods, start, 96, 15, "Europe/Lisbon")
    assert prices == [round((s + 0.012 + f) * 1.23, 6) for s, f in zip(spot, fees)]
    assert len(set(fees)) == 3  # off-peak, mid and peak fees all occur in these 24 h
    assert tariff_export_prices(tariff, 96, spot) == [round(s * 0.9, 6) for s in spot]
    with pytest.raises(ValueError):
        tariff_import_prices(tariff, start, 96, 15, "Europe/Lisbon", None)
    flat = Tariff.objects.get(code="pt-tri-hourly-daily")
    assert tariff_export_prices(flat, 3, None) == [0.0, 0.0, 0.0]
    assert tariff_import_prices(flat, start, 4, 15, "Europe/Lisbon", None) == price_series(
        flat.periods, start, 4, 15, "Europe/Lisbon")


def test_spain_2_0td_fees_differ_on_weekdays_and_weekends(db):
    tariff = Tariff.objects.get(code="es-dynamic-spot")
    monday_noon = datetime(2026, 3, 30, 10, tzinfo=UTC)  # 12:00 Madrid: punta
    sunday_noon = monday_noon - timedelta(days=1)
    assert price_series(tariff.periods, monday_noon, 1, 15, "Europe/Madrid") == [0.075]
    assert price_series(tariff.periods, sunday_noon, 1, 15, "Europe/Madrid") == [0.003]


def test_new_homes_get_their_countrys_default_tariff_shown_in_the_api(api_client):
    pt = api_client.post("/api/v1/homes/", {"name": "PT", "country": "PT"}, format="json")
    assert pt.status_code == 201, pt.json()
    assert (pt.json()["tariff"], pt.json()["tariff_kind"]) == ("pt-tri-hourly-daily", "tri_hourly")
    dyn = api_client.post("/api/v1/homes/", {"name": "PT dyn", "tariff_kind": "dynamic"}, format="json").json()
    assert dyn["tariff"] == "pt-dynamic-spot"
    es = api_client.post("/api/v1/homes/", {"name": "ES", "country": "ES", "timezone": "Europe/Madrid"},
                         format="json").json()
    assert (es["tariff"], es["tariff_kind"]) == ("es-dynamic-spot", "dynamic")
    # A country without tariffs keeps none: planning then names the missing tariff.
    fr = api_client.post("/api/v1/homes/", {"name": "FR", "country": "FR", "timezone": "Europe/Paris"},
                         format="json").json()
    assert fr["tariff"] is None
    detail = api_client.get(f"/api/v1/homes/{pt.json()['id']}/").json()
    assert detail["tariff"] == "pt-tri-hourly-daily"


def test_a_household_adds_its_own_tariff_and_only_its_homes_may_use_it(api_client, other_client, home, other_home):
    body = {
        "code": "alice-dynamic", "name": "Alice's supplier", "kind": "dynamic", "country": "PT",
        "periods": [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00", "price_eur_per_kwh": 0.03}],
        "spot_multiplier": 1.05, "spot_adder_eur_per_kwh": 0.01, "vat_pct": 23, "export_kind": "spot",
        "export_spot_multiplier": 0.8,
    }
    r = api_client.post("/api/v1/tariffs/", body, format="json")
    assert r.status_code == 201, r.json()
    tariff = Tariff.objects.get(code="alice-dynamic")
    assert tariff.owner == api_client.user and not tariff.is_default
    assert tariff.vat_pct == Decimal("23.00")
    ok = api_client.patch(f"/api/v1/homes/{home.pk}/", {"tariff": "alice-dynamic", "tariff_kind": "dynamic"},
                          format="json")
    assert ok.status_code == 200 and ok.json()["tariff"] == "alice-dynamic"
    # Bob neither sees nor uses nor edits it.
    assert "alice-dynamic" not in {t["code"] for t in other_client.get("/api/v1/tariffs/").json()}
    bad = other_client.patch(f"/api/v1/homes/{other_home.pk}/", {"tariff": "alice-dynamic", "tariff_kind": "dynamic"},
                             format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"tariff"}
    assert other_client.patch(f"/api/v1/tariffs/{tariff.pk}/", {"vat_pct": 0}, format="json").status_code == 404
    # Bad periods are named; nothing is stored.
    broken = dict(body, code="alice-broken", periods=[{"days": [0], "start": "00:00", "end": "12:00",
                                                        "price_eur_per_kwh": 0.1}])
    r = api_client.post("/api/v1/tariffs/", broken, format="json")
    assert r.status_code == 400 and "periods" in r.json()["error"]["fields"]
    assert not Tariff.objects.filter(code="alice-broken").exists()
    # In use: deleting is a conflict; the home keeps its tariff.
    assert api_client.delete(f"/api/v1/tariffs/{tariff.pk}/").status_code == 409
    assert Home.objects.get(pk=home.pk).tariff_id == tariff.pk
