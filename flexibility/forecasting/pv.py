"""PV output from the system's parameters with pvlib, scaled by a cloud factor learned from
what the system measured.

Clear-sky irradiance (Ineichen with pvlib's Linke turbidity climatology) is transposed onto
the panel plane (tilt, azimuth), turned into DC power with PVWatts (-0.4 %/K, cell
temperature from the SAPM model at a mild 15 degC air, 1 m/s wind) and AC with a flat 14 %
system loss. The cloud factor is the median, over the recent days with telemetry, of measured
energy / clear-sky energy in daylight; with no such days the forecast is clear-sky.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pvlib

from .common import SLOT, Forecast, slot_index

SYSTEM_LOSS = 0.14
GAMMA_PDC = -0.004
AIR_C, WIND_M_S = 15.0, 1.0
CLOUD_DAYS = 7
MIN_CLEAR_SKY_WH_PER_KWP = 500.0  # a day counts for the cloud factor only if the sky could give this much
CLOUD_FACTOR_BOUNDS = (0.05, 1.1)
# Where a PV system without coordinates most likely is: its home's time zone's main city.
ZONE_LOCATIONS = {
    "Europe/Lisbon": (38.72, -9.14), "Atlantic/Madeira": (32.65, -16.91), "Atlantic/Azores": (37.74, -25.67),
    "Europe/Madrid": (40.42, -3.70), "Atlantic/Canary": (28.12, -15.43), "Europe/Paris": (48.86, 2.35),
    "Europe/Berlin": (52.52, 13.40), "Europe/Rome": (41.90, 12.50), "Europe/London": (51.51, -0.13),
    "Europe/Amsterdam": (52.37, 4.90), "Europe/Brussels": (50.85, 4.35), "Europe/Vienna": (48.21, 16.37),
    "Europe/Zurich": (47.38, 8.54), "Europe/Copenhagen": (55.68, 12.57), "Europe/Stockholm": (59.33, 18.07),
    "Europe/Oslo": (59.91, 10.75), "Europe/Helsinki": (60.17, 24.94), "Europe/Warsaw": (52.23, 21.01),
    "Europe/Prague": (50.08, 14.44), "Europe/Athens": (37.98, 23.73), "Europe/Dublin": (53.35, -6.26),
}


@dataclass(frozen=True)
class PVSystem:
    peak_power_kw: float
    latitude: float
    longitude: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0  # pvlib convention: 180 = facing south
    altitude_m: float = 0.0


@functools.lru_cache(maxsize=4096)
def _monthly_linke_turbidity(latitude: float, longitude: float) -> tuple[float, ...]:
    """pvlib's Linke turbidity climatology at a place, per month (reading its HDF5 file once per place)."""
    mid_months = pd.DatetimeIndex([f"2020-{m:02d}-15" for m in range(1, 13)], tz="UTC")
    values = pvlib.clearsky.lookup_linke_turbidity(mid_months, latitude, longitude, interp_turbidity=False)
    return tuple(float(v) for v in values)


@functools.lru_cache(maxsize=64)
def _plane_of_array(latitude: float, longitude: float, altitude_m: float, tilt_deg: float, azimuth_deg: float,
                    first: pd.Timestamp, last: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """Clear-sky irradiance on the panel plane (W/m2) and the cell temperature at 5-minute points over the
    slots `first` to `last`: the same for every system of one place and orientation (the homes of a
    chunk without coordinates stand at their zone's city), so a chunk computes it once per place and
    history window; only the peak power differs between them. Callers must not modify the series."""
    # Sample each slot at 5-minute points and average: the sun moves within a quarter-hour.
    fine = pd.date_range(first, last + SLOT, freq="5min", inclusive="left")
    location = pvlib.location.Location(latitude, longitude, altitude=altitude_m)
    solar = location.get_solarposition(fine)
    monthly = _monthly_linke_turbidity(round(latitude, 2), round(longitude, 2))
    linke = pd.Series([monthly[m - 1] for m in fine.month], index=fine)
    sky = location.get_clearsky(fine, model="ineichen", solar_position=solar, linke_turbidity=linke)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg, azimuth_deg, solar["apparent_zenith"], solar["azimuth"], sky["dni"], sky["ghi"], sky["dhi"])
    cell = pvlib.temperature.sapm_cell(poa["poa_global"], AIR_C, WIND_M_S,
                                       **pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"])
    return poa["poa_global"], cell


def clear_sky_ac_w(system: PVSystem, index: pd.DatetimeIndex) -> pd.Series:
    """Clear-sky AC power (W), averaged over each 15-minute slot starting at `index`."""
    poa_global, cell = _plane_of_array(system.latitude, system.longitude, system.altitude_m, system.tilt_deg,
                                       system.azimuth_deg, index[0], index[-1])
    dc = pvlib.pvsystem.pvwatts_dc(poa_global, cell, system.peak_power_kw * 1000.0, GAMMA_PDC)
    ac = (dc * (1 - SYSTEM_LOSS)).clip(lower=0.0).fillna(0.0)
    return ac.resample(SLOT, label="left", closed="left").mean().reindex(index).fillna(0.0)


def cloud_factor(system: PVSystem, measured_w: pd.Series, before: datetime, tz: str) -> float | None:
    """Median over recent days of measured / clear-sky daylight energy (None without usable days)."""
    measured = measured_w[(measured_w.index < pd.Timestamp(before))
                          & (measured_w.index >= pd.Timestamp(before) - pd.Timedelta(days=CLOUD_DAYS))].abs()
    measured = measured.dropna()
    if measured.empty:
        return None
    clear = clear_sky_ac_w(system, pd.DatetimeIndex(measured.index))
    days = measured.index.tz_convert(tz).date
    ratios = []
    for day in sorted(set(days)):
        mask = days == day
        sky_wh = float(clear[mask].sum()) * 0.25
        if sky_wh < MIN_CLEAR_SKY_WH_PER_KWP * system.peak_power_kw * (mask.sum() / 96):
            continue
        ratios.append(float(measured[mask].sum()) * 0.25 / sky_wh)
    if not ratios:
        return None
    lo, hi = CLOUD_FACTOR_BOUNDS
    return float(np.clip(np.median(ratios), lo, hi))


def forecast_pv(system: PVSystem, measured_w: pd.Series, start: datetime, slots: int, *, tz: str) -> Forecast:
    index = slot_index(start, slots)
    clear = clear_sky_ac_w(system, index)
    factor = cloud_factor(system, measured_w, start, tz)
    if factor is None:
        return Forecast(start, 15, [round(float(v), 1) for v in clear], "pvlib-clearsky")
    return Forecast(start, 15, [round(float(v) * factor, 1) for v in clear], f"pvlib-clearsky-x-cloud-{factor:.2f}")


def location_for(parameters: dict, tz: str) -> tuple[float, float]:
    if parameters.get("latitude") is not None and parameters.get("longitude") is not None:
        return float(parameters["latitude"]), float(parameters["longitude"])
    if tz in ZONE_LOCATIONS:
        return ZONE_LOCATIONS[tz]
    raise KeyError(f"no latitude/longitude for this PV system and no known location for time zone {tz}")
