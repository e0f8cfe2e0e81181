"""Forecasting a home from its stored telemetry, with and without history; accuracy stored and shown."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from devices.models import Measurement, SignalKind, SignalSeries
from devices.services import record_measurements
from flexibility.forecasting import pv as pv_model
from flexibility.forecasting.models import ForecastAccuracy
from flexibility.forecasting.selectors import slot_telemetry
from flexibility.forecasting.services import forecast_home, local_day_span, pv_system, score_day

from .simulation import SimulatedHome

UTC = timezone.utc
DAY = date(2026, 4, 15)


def _telemetry(home, devices, sim: SimulatedHome, start: datetime, slots: int) -> None:
    """Home meter = base load + EV + water heater - PV; readings every 15 minutes."""
    base = sim.base_load_w(start, slots)
    solar = sim.pv_w(pv_system(devices["pv"], home), start, slots)
    drawn = sim.hot_water_w(start, slots)
    ev = np.where((base.index.tz_convert("Europe/Lisbon").hour >= 1) & (base.index.tz_convert("Europe/Lisbon").hour < 4),
                  3700.0, 0.0)
    rows = []
    temperature = 55.0
    for i, t in enumerate(base.index):
        heater = 2000.0 if temperature < 50 else 0.0
        temperature += (heater - drawn.iloc[i] - 50) * 0.25 / (200 * 4186 / 3600)
        rows += [
            {"home": home, "time": t.to_pydatetime(), "power_w": float(base.iloc[i] + ev[i] + heater - solar.iloc[i])},
            {"home": home, "device": devices["ev"], "time": t.to_pydatetime(), "power_w": float(ev[i])},
            {"home": home, "device": devices["pv"], "time": t.to_pydatetime(), "power_w": float(solar.iloc[i])},
            {"home": home, "device": devices["wh"], "time": t.to_pydatetime(), "power_w": heater,
             "temperature_c": round(temperature, 3)},
        ]
    record_measurements(rows)


@pytest.fixture
def equipped(home, make_device):
    return {"ev": make_device(home, "ev_charger"),
            "pv": make_device(home, "pv", parameters={"peak_power_kw": 4.0, "tilt_deg": 25, "azimuth_deg": 170}),
            "wh": make_device(home, "water_heater")}


def test_without_history_the_fallbacks_forecast_and_say_so(home, equipped):
    start, slots = local_day_span(home, DAY)
    made = {(f.kind, f.device_id): f.forecast for f in forecast_home(home, start, slots)}
    assert made[(SignalKind.LOAD_FORECAST, None)].model == "reference-profile"
    assert made[(SignalKind.PV_FORECAST, equipped["pv"].pk)].model == "pvlib-clearsky"
    assert made[(SignalKind.HEAT_DEMAND, equipped["wh"].pk)].model == "default-draw-profile"
    stored = {(s.kind, s.device_id): s for s in SignalSeries.objects.filter(home=home)}
    assert stored[(SignalKind.LOAD_FORECAST, None)].source == "forecast:reference-profile"
    assert stored[(SignalKind.PV_FORECAST, equipped["pv"].pk)].values == made[(SignalKind.PV_FORECAST, equipped["pv"].pk)].values
    assert all(s.start == start and len(s.values) == slots for s in stored.values())
    # Forecasting again replaces, never duplicates.
    forecast_home(home, start, slots)
    assert SignalSeries.objects.filter(home=home).count() == 3


def test_with_history_models_learn_and_accuracy_is_stored_and_readable(home, equipped, api_client, other_client,
                                                                       client, staff_user):
    sim = SimulatedHome(seed=11)
    start, slots = local_day_span(home, DAY)
    _telemetry(home, equipped, sim, start - timedelta(days=21), 22 * 96)  # three weeks before, and the day itself
    made = {(f.kind, f.device_id): f.forecast for f in forecast_home(home, start, slots, now=start)}
    assert made[(SignalKind.LOAD_FORECAST, None)].model == "lightgbm-daytype"
    assert made[(SignalKind.PV_FORECAST, equipped["pv"].pk)].model.startswith("pvlib-clearsky-x-cloud-")
    assert made[(SignalKind.HEAT_DEMAND, equipped["wh"].pk)].model == "usage-profile"
    # The base load learned is the meter minus EV and heater plus PV: no 3.7 kW EV hours in it.
    night = [v for i, v in enumerate(made[(SignalKind.LOAD_FORECAST, None)].values) if 8 <= i < 12]
    assert max(night) < 1500

    rows = {(r.kind, r.device_id): r for r in score_day(home, DAY)}
    load = rows[(SignalKind.LOAD_FORECAST, None)]
    assert load.model == "lightgbm-daytype" and load.slots == slots
    assert load.naive_mae_w is not None and load.mae_w < load.naive_mae_w
    assert load.rmse_w >= load.mae_w >= abs(load.bias_w)
    assert rows[(SignalKind.PV_FORECAST, equipped["pv"].pk)].mae_w > 0
    # hot water too is compared with last week's (its first slot's draw needs the reading before it)
    assert rows[(SignalKind.HEAT_DEMAND, equipped["wh"].pk)].naive_mae_w is not None
    assert score_day(home, DAY) and ForecastAccuracy.objects.filter(home=home).count() == 3  # re-scoring updates

    r = api_client.get("/api/v1/forecast-accuracy/", {"home": home.pk, "kind": "load_forecast"})
    assert r.status_code == 200
    [item] = r.json()["results"]
    assert item["model"] == "lightgbm-daytype" and item["day"] == DAY.isoformat()
    assert item["mae_w"] == pytest.approx(load.mae_w)
    assert other_client.get("/api/v1/forecast-accuracy/").json()["count"] == 0
    assert other_client.get(f"/api/v1/forecast-accuracy/{load.pk}/").status_code == 404
    client.force_login(staff_user)
    page = client.get("/admin/forecasting/forecastaccuracy/")
    assert page.status_code == 200 and b"lightgbm-daytype" in page.content


def test_pv_without_coordinates_uses_the_home_zone_and_coordinates_win(home, make_device):
    plain = make_device(home, "pv", parameters={"peak_power_kw": 3.0})
    assert pv_system(plain, home).latitude == pv_model.ZONE_LOCATIONS["Europe/Lisbon"][0]
    placed = make_device(home, "pv", parameters={"peak_power_kw": 3.0, "latitude": 41.15, "longitude": -8.61})
    assert (pv_system(placed, home).latitude, pv_system(placed, home).longitude) == (41.15, -8.61)


def test_history_is_read_per_slot_from_the_rollups(home, equipped):
    t0 = datetime(2026, 4, 1, 10, tzinfo=UTC)
    record_measurements([{"home": home, "time": t0 + timedelta(minutes=m), "power_w": 100.0 * (m % 3)}
                         for m in range(0, 30, 5)])
    t = slot_telemetry(home, t0, t0 + timedelta(hours=1))
    assert list(t.home_w.round(3)) == [100.0, 100.0]
    assert Measurement.objects.filter(home=home).count() == 6


def test_seasonal_naive_is_scored_on_the_slots_the_forecast_covers(home, equipped):
    """A re-plan's forecast from midday replaces the day's: the model is scored on the afternoon only, and so
    must seasonal naive be (it was scored on the whole day, and won or lost on the morning)."""
    from flexibility.forecasting.accuracy import accuracy
    from flexibility.forecasting.common import seasonal_naive
    from flexibility.forecasting.services import measured_heat

    start, slots = local_day_span(home, DAY)
    _telemetry(home, equipped, SimulatedHome(seed=5), start - timedelta(days=8), 9 * 96)
    half = slots // 2
    midday = start + timedelta(minutes=15 * half)
    forecast_home(home, midday, slots - half, now=midday)
    row = next(r for r in score_day(home, DAY) if r.kind == SignalKind.HEAT_DEMAND)
    heat = measured_heat(equipped["wh"], slot_telemetry(home, start - timedelta(days=8), start + timedelta(days=1)))
    afternoon = heat[heat.index >= midday][: slots - half]
    naive = seasonal_naive(heat, midday, slots - half)
    assert row.slots == slots - half
    assert row.naive_mae_w == pytest.approx(accuracy(naive, list(afternoon)).mae)
