"""Hot-water demand of a water heater, from its own usage history.

The heat drawn in a slot is what went in minus what the tank kept and lost:
  drawn = electric energy x COP - tank heat capacity x temperature rise - standing loss.
Models: `usage-profile` (median drawn heat per local slot of day and its neighbours, by day type
once there are enough days of each, over the history, >= 2 days) or `default-draw-profile` (morning
and evening draws) with less.
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from .base_load import day_types, local_hours
from .common import Forecast, days_of_history, slot_index

WATER_WH_PER_LITRE_KELVIN = 4186.0 / 3600.0
MIN_DAYS_FOR_PROFILE = 2
MIN_DAYS_PER_TYPE = 8  # days of a type (weekend / working day) before its own profile is used
NEIGHBOUR_SLOTS = 1  # a slot's median also reads the slots this close to it
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
    """Per local slot of day, the median drawn heat of that slot and its neighbours (NEIGHBOUR_SLOTS either
    side) over the history's days of the target's day type, or over all days while there are fewer than
    MIN_DAYS_PER_TYPE of that type. Showers come at a habit's time give or take half an hour: the neighbours
    give each slot's median three times the days (a per-slot median of four weekend days swung between no
    draw and a whole shower), and the day types split the days only once both have enough of them."""
    if history.empty:  # no usage measured yet: the default draws
        return Forecast(start, 15, [DEFAULT_DRAW_W[h] for h in local_hours(start, slots, tz)], "default-draw-profile")
    history = history[(history.index < pd.Timestamp(start))
                      & (history.index >= pd.Timestamp(start) - pd.Timedelta(days=HISTORY_DAYS))]
    index = slot_index(start, slots)
    local = index.tz_convert(tz)
    if days_of_history(history) < MIN_DAYS_FOR_PROFILE:
        return Forecast(start, 15, [DEFAULT_DRAW_W[h] for h in local.hour], "default-draw-profile")
    observed = history.dropna()
    olocal = observed.index.tz_convert(tz)
    frame = pd.DataFrame({"value": observed.to_numpy(), "weekend": day_types(observed.index, tz, country) > 0,
                          "slot": olocal.hour * 4 + olocal.minute // 15, "day": olocal.normalize()})
    days_per_type = frame.groupby("weekend")["day"].nunique()
    # each reading counts for its own slot and its neighbours
    spread = pd.concat([frame.assign(slot=(frame["slot"] + d) % 96)
                        for d in range(-NEIGHBOUR_SLOTS, NEIGHBOUR_SLOTS + 1)])
    by_type = spread.groupby(["weekend", "slot"])["value"].median()
    by_slot = spread.groupby("slot")["value"].median()
    target_weekend = day_types(index, tz, country) > 0
    target_slot = local.hour * 4 + local.minute // 15
    values = []
    for w, s in zip(target_weekend, target_slot):
        v = by_type.get((bool(w), int(s))) if days_per_type.get(bool(w), 0) >= MIN_DAYS_PER_TYPE else None
        if v is None or pd.isna(v):
            v = by_slot.get(int(s), 0.0)
        values.append(round(max(float(v), 0.0), 1))
    return Forecast(start, 15, values, "usage-profile")
