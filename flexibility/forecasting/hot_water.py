"""Hot-water demand of a water heater, from its own usage history.

The heat drawn in a slot is what went in minus what the tank kept and lost:
  drawn = electric energy x COP - tank heat capacity x temperature rise - standing loss.
Models: `usage-profile` (median drawn heat per local slot of day and day type over the
history, >= 2 days) or `default-draw-profile` (morning and evening draws) with less.
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from .base_load import day_types
from .common import Forecast, days_of_history, slot_index

WATER_WH_PER_LITRE_KELVIN = 4186.0 / 3600.0
MIN_DAYS_FOR_PROFILE = 2
HISTORY_DAYS = 28
# Typical draws (W thermal, by local hour): morning showers, a midday tap, evening showers and dishes.
DEFAULT_DRAW_W = [50.0] * 7 + [1500.0, 1000.0] + [50.0] * 10 + [700.0, 900.0, 500.0] + [50.0] * 2


def drawn_heat_w(power_w: pd.Series, temperature_c: pd.Series, *, volume_l: float, cop: float,
                 standing_loss_w: float) -> pd.Series:
    """Heat drawn (W thermal, mean over each 15-minute slot) from per-slot power and tank temperature.

    The slot's rise is its temperature minus the slot before's: exact for a hub that reads the tank once
    near each slot's end (the simulated hubs), half a slot late for a slot mean of many readings. (Pairing
    a slot's heating with the *next* slot's rise put every draw a slot early and turned each switch of
    the heater into a phantom draw of its power.)"""
    heat_in = power_w.fillna(0.0) * cop
    capacity_wh_per_k = volume_l * WATER_WH_PER_LITRE_KELVIN
    stored_w = temperature_c.diff() * capacity_wh_per_k / 0.25  # rise over the slot, Wh per 15 min -> W
    drawn = heat_in - stored_w - standing_loss_w
    return drawn.clip(lower=0.0)


def forecast_hot_water(history: pd.Series, start: datetime, slots: int, *, tz: str, country: str) -> Forecast:
    history = history[(history.index < pd.Timestamp(start))
                      & (history.index >= pd.Timestamp(start) - pd.Timedelta(days=HISTORY_DAYS))]
    index = slot_index(start, slots)
    local = index.tz_convert(tz)
    if days_of_history(history) < MIN_DAYS_FOR_PROFILE:
        return Forecast(start, 15, [DEFAULT_DRAW_W[h] for h in local.hour], "default-draw-profile")
    observed = history.dropna()
    olocal = observed.index.tz_convert(tz)
    weekend = day_types(observed.index, tz, country) > 0
    keys = pd.MultiIndex.from_arrays([weekend, olocal.hour * 4 + olocal.minute // 15])
    by_type = observed.groupby(keys).median()
    by_slot = observed.groupby(olocal.hour * 4 + olocal.minute // 15).median()
    target_weekend = day_types(index, tz, country) > 0
    target_slot = local.hour * 4 + local.minute // 15
    values = []
    for w, s in zip(target_weekend, target_slot):
        v = by_type.get((bool(w), int(s)))
        if v is None or pd.isna(v):
            v = by_slot.get(int(s), 0.0)
        values.append(round(max(float(v), 0.0), 1))
    return Forecast(start, 15, values, "usage-profile")
