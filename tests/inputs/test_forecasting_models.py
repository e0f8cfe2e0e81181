"""Forecasting models on simulated homes: fallbacks when history is short, and better than
seasonal naive (same slot last week) with history."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from flexibility.forecasting import base_load, hot_water, pv
from flexibility.forecasting.reference import BUILTIN_LOAD_PER_UNIT

from .simulation import SimulatedHome, days_before, mean_daily_mae

UTC = timezone.utc
DAY = datetime(2026, 4, 14, 23, tzinfo=UTC)  # Lisbon midnight, a Wednesday


def _forecast(history, start=DAY, slots=96, **kw):
    return base_load.forecast_base_load(history, start, slots, tz="Europe/Lisbon", country="PT",
                                        per_unit_hourly=BUILTIN_LOAD_PER_UNIT, contracted_kva=6.9, **kw)


def test_no_history_falls_back_to_the_reference_profile_scaled_by_contracted_power():
    f = _forecast(pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC")))
    assert f.model == "reference-profile"
    assert len(f.values) == 96
    assert f.values[0] == round(BUILTIN_LOAD_PER_UNIT[0] * 6900, 1)  # local midnight: the profile's hour 0


def test_a_few_days_give_the_history_profile_then_the_model():
    home = SimulatedHome(seed=1)
    start, slots = days_before(DAY, 5)
    short = home.base_load_w(start, slots)
    assert _forecast(short).model == "history-profile"
    start, slots = days_before(DAY, 28)
    assert _forecast(home.base_load_w(start, slots)).model == "lightgbm-daytype"


@pytest.mark.parametrize("seed", range(8))
def test_base_load_forecast_beats_seasonal_naive(seed):
    """Per home, the mean MAE over a week of daily day-ahead forecasts beats the same slot last week."""
    home = SimulatedHome(seed=seed)
    start, slots = days_before(DAY, 42)
    model_mae, naive_mae = mean_daily_mae(home.base_load_w(start, slots + 7 * 96), DAY, 7,
                                          lambda history, day: _forecast(history, start=day))
    assert model_mae < naive_mae


def test_base_load_is_the_meter_minus_devices_plus_pv():
    idx = pd.date_range(DAY, periods=4, freq="15min")
    meter = pd.Series([1000.0, 200.0, np.nan, 500.0], index=idx)
    ev = pd.Series([700.0, 0.0], index=idx[:2])
    solar = pd.Series([0.0, -300.0, 0.0, 100.0], index=idx)
    out = base_load.base_load_from_meter(meter, [ev], [solar])
    assert out.iloc[0] == 300.0 and out.iloc[1] == 500.0 and np.isnan(out.iloc[2]) and out.iloc[3] == 600.0


def test_holidays_are_sunday_like_days():
    saturdays = pd.DatetimeIndex([datetime(2026, 4, 18, 11, tzinfo=UTC), datetime(2026, 4, 25, 11, tzinfo=UTC)])
    assert list(base_load.day_types(saturdays, "Europe/Lisbon", "PT")) == [1, 2]  # 25 April: Liberty Day
    christmas = pd.DatetimeIndex([datetime(2026, 12, 24, 11, tzinfo=UTC), datetime(2026, 12, 25, 11, tzinfo=UTC)])
    assert list(base_load.day_types(christmas, "Europe/Lisbon", "PT")) == [0, 2]  # Thursday, Friday holiday
    assert list(base_load.day_types(christmas, "Europe/Lisbon", "XX")) == [0, 0]  # no calendar: weekdays only


def test_pv_clear_sky_without_history_and_a_learned_cloud_factor_with_it():
    system = pv.PVSystem(peak_power_kw=4.0, latitude=38.72, longitude=-9.14, tilt_deg=30, azimuth_deg=180)
    empty = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    clear = pv.forecast_pv(system, empty, DAY, 96, tz="Europe/Lisbon")
    assert clear.model == "pvlib-clearsky"
    assert 3.0 * 0.25 * 96 > max(clear.values) / 1000 > 2.5  # near peak power at noon in April, below it
    assert clear.values[0] == 0.0  # midnight
    # Facing north at a steep tilt makes less than facing south.
    north = pv.forecast_pv(pv.PVSystem(4.0, 38.72, -9.14, tilt_deg=60, azimuth_deg=0), empty, DAY, 96, tz="Europe/Lisbon")
    assert sum(north.values) < 0.6 * sum(clear.values)
    # A week measured at 60 % of clear sky teaches a factor near 0.6.
    idx = pd.date_range(DAY - pd.Timedelta(days=7), DAY, freq="15min", inclusive="left")
    measured = pv.clear_sky_ac_w(system, idx) * 0.6
    cloudy = pv.forecast_pv(system, -measured, DAY, 96, tz="Europe/Lisbon")  # sign of the reading does not matter
    assert cloudy.model.startswith("pvlib-clearsky-x-cloud-0.6")
    assert sum(cloudy.values) == pytest.approx(0.6 * sum(clear.values), rel=0.02)


def test_systems_of_one_place_share_its_sky_and_keep_their_own_power():
    """The irradiance of a place is computed once (a chunk's homes without coordinates share their zone's
    city); each system's forecast is still the one computed on its own."""
    idx = pd.date_range(DAY - pd.Timedelta(days=7), DAY, freq="15min", inclusive="left")
    measured = pd.Series(np.abs(np.sin(np.arange(len(idx)) / 20.0)) * 900.0, index=idx).drop(idx[100:140])
    systems = [pv.PVSystem(kw, 38.72, -9.14, 30, 180) for kw in (2.0, 6.5)] + [pv.PVSystem(3.0, 41.15, -8.61, 20, 150)]
    pv._plane_of_array.cache_clear()
    alone = []
    for system in systems:
        alone.append(pv.forecast_pv(system, measured, DAY, 96, tz="Europe/Lisbon"))
        pv._plane_of_array.cache_clear()
    shared = [pv.forecast_pv(system, measured, DAY, 96, tz="Europe/Lisbon") for system in systems]
    assert shared == alone
    assert pv._plane_of_array.cache_info().hits >= 2  # the second system of the first place reused its sky
    assert shared[1].values != shared[0].values


def test_pv_forecast_with_cloud_factor_beats_seasonal_naive():
    """Over homes with random systems and ten days each, the mean of per-home MAEs beats seasonal naive."""
    model_mae, naive_mae = [], []
    for seed in range(5):
        home = SimulatedHome(seed=seed)
        system = pv.PVSystem(peak_power_kw=float(home.rng.uniform(2, 8)), latitude=38.7, longitude=-9.1,
                             tilt_deg=float(home.rng.uniform(10, 40)), azimuth_deg=float(home.rng.uniform(120, 240)))
        start, slots = days_before(DAY, 14)
        model, naive = mean_daily_mae(home.pv_w(system, start, slots + 10 * 96), DAY, 10,
                                      lambda history, day: pv.forecast_pv(system, history, day, 96, tz="Europe/Lisbon"))
        model_mae.append(model)
        naive_mae.append(naive)
    assert np.mean(model_mae) < np.mean(naive_mae)


def test_hot_water_demand_from_tank_power_and_temperature():
    """Each slot's temperature is read near its end: a slot's rise is its reading minus the slot before's."""
    idx = pd.date_range(DAY, periods=4, freq="15min")
    power = pd.Series([0.0, 2000.0, 0.0, 0.0], index=idx)
    temperature = pd.Series([50.0, 55.0, 45.0, 45.0], index=idx)
    drawn = hot_water.drawn_heat_w(power, temperature, volume_l=200, cop=1.0, standing_loss_w=50)
    per_kelvin_w = 200 * 4186 / 3600 / 0.25  # 200 l warming 1 K in a quarter-hour
    assert pd.isna(drawn.iloc[0])  # no reading before it: unknown, not zero
    assert drawn.iloc[1] == pytest.approx(max(2000 - 5 * per_kelvin_w - 50, 0))
    assert drawn.iloc[2] == pytest.approx(10 * per_kelvin_w - 50)  # 10 K lost in a slot with no heating: a shower
    assert drawn.iloc[3] == 0.0  # only standing loss: nothing drawn


def test_hot_water_demand_recovers_the_draws_of_a_simulated_tank_in_their_slots():
    """The closed loop's tank (hub_bridge.physics) under its own thermostat, read as its hub reports it
    (slot mean power, temperature at the slot's end): the estimate is the drawn heat, slot for slot. It
    used to pair a slot's heating with the next slot's rise: each shower a slot early, and a phantom
    draw of the heater's power wherever the thermostat switched."""
    from hub_bridge.physics import HomePhysics, Tank, Truth

    slots = 2 * 96
    draws = SimulatedHome(seed=3).hot_water_w(DAY, slots)
    tank = HomePhysics(Truth(DAY, [0.0] * slots, [0.0] * slots, [float(x) for x in draws]), managed=False,
                       tank=Tank("WH", 200, 2.0, 45.0, 65.0, 55.0, standing_loss_w=50.0))
    power, temperature = [], []
    for k in range(slots):
        outcome = tank.advance(DAY + k * timedelta(minutes=15))
        power.append(outcome.device_w["WH"])
        temperature.append(tank.tank.temperature_c)
    drawn = hot_water.drawn_heat_w(pd.Series(power, index=draws.index), pd.Series(temperature, index=draws.index),
                                   volume_l=200, cop=1.0, standing_loss_w=50)
    assert np.allclose(drawn.iloc[1:], draws.iloc[1:], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_hot_water_profile_beats_seasonal_naive_and_falls_back_without_history(seed):
    home = SimulatedHome(seed=seed)
    empty = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    assert hot_water.forecast_hot_water(empty, DAY, 96, tz="Europe/Lisbon", country="PT").model == "default-draw-profile"
    start, slots = days_before(DAY, 21)
    models = set()

    def forecast(history, day):
        f = hot_water.forecast_hot_water(history, day, 96, tz="Europe/Lisbon", country="PT")
        models.add(f.model)
        return f

    model_mae, naive_mae = mean_daily_mae(home.hot_water_w(start, slots + 7 * 96), DAY, 7, forecast)
    assert models == {"usage-profile"} and model_mae < naive_mae
