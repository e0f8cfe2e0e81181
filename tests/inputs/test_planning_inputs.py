"""Planning with inputs nobody typed: default tariff, forecasts made before the run, dynamic prices from spot."""
from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Home, SignalKind, SignalSeries, Tariff
from devices.services import replace_signal
from devices.tariffs import price_series
from flexibility.planning import problem_builder
from flexibility.planning.models import OptimizationRun, RunStatus
from tests.plugins.api import add_starter_devices, registered_household


def test_a_new_household_gets_a_plan_the_same_day_without_anyone_typing_inputs(db, django_capture_on_commit_callbacks):
    client = registered_household("new@example.com")
    home = client.post("/api/v1/homes/", {"name": "New home"}, format="json").json()
    assert home["tariff"] == "pt-tri-hourly-daily"
    add_starter_devices(client, home["id"], "NEW")
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/v1/homes/{home['id']}/optimizations", {}, format="json")
    assert r.status_code == 202, r.json()
    run = OptimizationRun.objects.get(pk=r.json()["id"])
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.explanation)
    sources = set(SignalSeries.objects.filter(home_id=home["id"]).values_list("kind", "source"))
    assert sources == {("load_forecast", "forecast:reference-profile"), ("pv_forecast", "forecast:pvlib-clearsky"),
                       ("heat_demand", "forecast:default-draw-profile")}
    latest = client.get(f"/api/v1/homes/{home['id']}/schedules/latest")
    assert latest.status_code == 200


def test_dynamic_tariff_prices_the_area_spot_and_pays_exports_from_it(user, make_home, slot_start):
    tariff = Tariff.objects.get(code="pt-dynamic-spot")
    home = make_home(user, tariff_kind="dynamic")
    assert home.tariff == tariff
    spot = [0.04 + 0.002 * (i % 48) for i in range(96)]
    replace_signal(SignalKind.IMPORT_PRICE, slot_start, 15, spot, area="PT", source="spot")
    replace_signal(SignalKind.LOAD_FORECAST, slot_start, 15, [300.0] * 96, home=home)
    problem = problem_builder.build_problem(home, slot_start, slot_start + timedelta(hours=24))
    fees = price_series(tariff.periods, slot_start, 96, 15, home.timezone)
    assert problem["site"]["import_price_eur_per_kwh"] == [round((s + 0.012 + f) * 1.23, 6) for s, f in zip(spot, fees)]
    assert problem["site"]["export_price_eur_per_kwh"] == [round(s * 0.9, 6) for s in spot]
    # A retail price series of the home itself wins over the tariff.
    replace_signal(SignalKind.IMPORT_PRICE, slot_start, 15, [0.2] * 96, home=home, source="supplier")
    assert problem_builder.build_problem(home, slot_start, slot_start + timedelta(hours=24))["site"][
        "import_price_eur_per_kwh"] == [0.2] * 96


def test_dynamic_tariff_of_another_area_reads_that_areas_spot(user, make_home, slot_start):
    tariff = Tariff.objects.get(code="es-dynamic-spot")
    home = make_home(user, country="PT", tariff_kind="dynamic", tariff=tariff)
    Home.objects.filter(pk=home.pk).update(tariff=tariff)
    replace_signal(SignalKind.IMPORT_PRICE, slot_start, 15, [0.05] * 8, area="ES")
    replace_signal(SignalKind.IMPORT_PRICE, slot_start, 15, [9.0] * 8, area="PT")
    tariff.spot_area = "ES"
    tariff.save()
    home.refresh_from_db()
    replace_signal(SignalKind.LOAD_FORECAST, slot_start, 15, [300.0] * 8, home=home)
    prices = problem_builder.build_problem(home, slot_start, slot_start + timedelta(hours=2))["site"][
        "import_price_eur_per_kwh"]
    assert max(prices) < 0.2  # (0.05 + 0.010 + fee <= 0.075) x 1.21, never the PT 9 EUR


def test_replans_forecast_again_only_when_the_forecast_is_stale(home, settings):
    from flexibility.planning.services.runs import ensure_forecasts
    from flexibility.planning.slots import default_horizon

    start, end = default_horizon()
    ensure_forecasts(home, start, end, refresh=False)
    first = SignalSeries.objects.get(home=home, kind="load_forecast")
    ensure_forecasts(home, start, end, refresh=True)  # made a moment ago: kept
    assert SignalSeries.objects.get(home=home, kind="load_forecast").pk == first.pk
    settings.FORECAST_REFRESH_MIN_AGE_S = 0
    ensure_forecasts(home, start, end, refresh=True)
    assert SignalSeries.objects.get(home=home, kind="load_forecast").pk != first.pk


def test_a_replan_during_an_ev_session_asks_only_for_what_the_car_still_needs(home, ev_charger, make_ev_session,
                                                                              slot_start):
    from devices.services import record_measurements

    session = make_ev_session(ev_charger, arrival=slot_start - timedelta(hours=2),
                              departure=slot_start + timedelta(hours=8), energy_kwh=20.0)
    # The charger drew 3.68 kW for the hour after arrival (one reading a minute), then stopped.
    record_measurements([{"home": home, "device": ev_charger, "time": session.arrival + timedelta(minutes=m),
                          "power_w": 3680.0 if m < 60 else 0.0} for m in range(120)])
    efficiency = ev_charger.parameters.get("efficiency", 1.0)
    replace_signal(SignalKind.LOAD_FORECAST, slot_start, 15, [300.0] * 96, home=home)
    problem = problem_builder.build_problem(home, slot_start, slot_start + timedelta(hours=24))
    (item,) = problem["ev_sessions"]
    assert item["energy_kwh"] == pytest.approx(20.0 - 3.68 * efficiency, abs=1e-3)
    assert item["arrival"] == slot_start.isoformat()  # planned from now on
