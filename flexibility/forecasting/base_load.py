"""Base load: what the home uses apart from the devices the HEMS plans.

Models, by how much history there is:
- `lightgbm-daytype`: gradient-boosted trees (LightGBM, L1 loss) on the local slot of day, the
  day type (workday / Saturday / Sunday or public holiday, from `holidays`), the weekday, the
  same slot a week earlier and the last week's mean level. Needs MIN_DAYS_FOR_MODEL days.
- `history-profile`: the median of each local slot of day over the history (>= 2 days).
- `reference-profile`: the FlexiHome per-unit household profile x contracted power, when the
  home has less than two days of telemetry.
"""
from __future__ import annotations

import functools
from datetime import datetime

import holidays
import lightgbm
import numpy as np
import pandas as pd

from .common import SLOT, Forecast, days_of_history, slot_index

MIN_DAYS_FOR_MODEL = 14
MIN_DAYS_FOR_PROFILE = 2
HISTORY_DAYS = 56  # the model learns from the last eight weeks at most
MODEL_PARAMS = {"objective": "l1", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20,
                "num_threads": 1, "seed": 7, "deterministic": True, "verbose": -1}
ROUNDS = 150
FEATURES = ["slot_of_day", "day_type", "weekday", "lag_week", "level"]


def base_load_from_meter(home_w: pd.Series, device_w: list[pd.Series], pv_w: list[pd.Series]) -> pd.Series:
    """Home meter minus the controlled devices (consumption positive) plus what PV produced, per slot.

    PV devices may report production with either sign; its magnitude is used. Slots where the
    meter is missing stay missing; a missing device reading counts as zero.
    """
    base = home_w.copy()
    for d in device_w:
        base = base.sub(d.reindex(base.index).fillna(0.0), fill_value=None)
    for p in pv_w:
        base = base.add(p.reindex(base.index).abs().fillna(0.0), fill_value=None)
    return base.clip(lower=0.0)


def day_types(index: pd.DatetimeIndex, tz: str, country: str) -> np.ndarray:
    """0 workday, 1 Saturday, 2 Sunday or public holiday (local dates)."""
    local = index.tz_convert(tz)
    years = sorted(set(local.year))
    try:
        calendar = holidays.country_holidays(country, years=years)
    except NotImplementedError:
        calendar = {}
    out = np.where(local.day_of_week == 5, 1, np.where(local.day_of_week == 6, 2, 0))
    is_holiday = np.array([d in calendar for d in local.date])
    return np.where(is_holiday, 2, out)


def _features(index: pd.DatetimeIndex, history: pd.Series, tz: str, country: str, level: np.ndarray) -> pd.DataFrame:
    local = index.tz_convert(tz)
    return pd.DataFrame({
        "slot_of_day": local.hour * 4 + local.minute // 15,
        "day_type": day_types(index, tz, country),
        "weekday": local.day_of_week,
        "lag_week": history.reindex(index - pd.Timedelta(days=7)).to_numpy(),
        "level": level,
    }, index=index)


def _training_levels(history: pd.Series, tz: str) -> np.ndarray:
    """For each slot: the mean of the week before its local day started (what was known that morning)."""
    local_days = history.index.tz_convert(tz).normalize()
    daily_mean = history.groupby(local_days).mean()
    weekly = daily_mean.rolling(7, min_periods=1).mean().shift(1)
    return weekly.reindex(local_days).to_numpy()


@functools.lru_cache(maxsize=256)
def local_hours(start: datetime, slots: int, tz: str) -> tuple[int, ...]:
    """The local hour of each slot from `start`: the homes of a day-ahead chunk share their zone and day,
    so each chunk computes it once (pandas' time-zone conversion costs more than the rest of a reference
    forecast)."""
    return tuple(int(h) for h in slot_index(start, slots).tz_convert(tz).hour)


def _reference(start: datetime, slots: int, tz: str, per_unit_hourly: list[float], contracted_kva: float) -> list[float]:
    return [round(per_unit_hourly[h] * contracted_kva * 1000.0, 1) for h in local_hours(start, slots, tz)]


def forecast_base_load(history: pd.Series, start: datetime, slots: int, *, tz: str, country: str,
                       per_unit_hourly: list[float], contracted_kva: float) -> Forecast:
    """Base load (W) for `slots` quarter-hours from `start`, from per-slot history (W, UTC index)."""
    if history.empty:  # a home without telemetry (yet): the reference profile
        return Forecast(start, 15, _reference(start, slots, tz, per_unit_hourly, contracted_kva), "reference-profile")
    history = history[history.index < pd.Timestamp(start)]
    history = history[history.index >= pd.Timestamp(start) - pd.Timedelta(days=HISTORY_DAYS)]
    days = days_of_history(history)
    if days < MIN_DAYS_FOR_PROFILE:
        return Forecast(start, 15, _reference(start, slots, tz, per_unit_hourly, contracted_kva), "reference-profile")
    index = slot_index(start, slots)
    if days < MIN_DAYS_FOR_MODEL:
        observed = history.dropna()
        local = observed.index.tz_convert(tz)
        profile = observed.groupby(local.hour * 4 + local.minute // 15).median()
        target = index.tz_convert(tz)
        values = profile.reindex(target.hour * 4 + target.minute // 15)
        values = values.fillna(float(observed.median()))
        return Forecast(start, 15, [round(max(float(v), 0.0), 1) for v in values], "history-profile")
    full = history.reindex(pd.date_range(history.index.min(), pd.Timestamp(start) - SLOT, freq=SLOT))
    train = _features(full.index, full, tz, country, _training_levels(full, tz))
    train["target"] = full.to_numpy()
    train = train.dropna(subset=["target"])
    data = lightgbm.Dataset(train[FEATURES], label=train["target"], categorical_feature=["day_type", "weekday"],
                            free_raw_data=True)
    model = lightgbm.train(MODEL_PARAMS, data, num_boost_round=ROUNDS)
    recent = full[full.index >= pd.Timestamp(start) - pd.Timedelta(days=7)].mean()
    rows = _features(index, full, tz, country, np.full(slots, recent))
    predicted = model.predict(rows[FEATURES])
    return Forecast(start, 15, [round(max(float(v), 0.0), 1) for v in predicted], "lightgbm-daytype")
