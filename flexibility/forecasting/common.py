"""What every forecasting model returns, and the slot grid they share."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

SLOT = pd.Timedelta(minutes=15)
SLOTS_PER_DAY = 96


@dataclass(frozen=True)
class Forecast:
    """Per-slot values (W) from `start`, and the model that produced them (stored with the series)."""

    start: datetime
    resolution_minutes: int
    values: list[float]
    model: str


def slot_index(start: datetime, slots: int) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=slots, freq=SLOT)


def days_of_history(history: pd.Series) -> float:
    """How many days of slots the history actually covers (NaN slots do not count)."""
    return float(history.notna().sum()) / SLOTS_PER_DAY


def local_hour_of(index: pd.DatetimeIndex, tz: str) -> pd.Index:
    return index.tz_convert(tz).hour


def seasonal_naive(history: pd.Series, start: datetime, slots: int) -> list[float] | None:
    """The benchmark: the same slot one week earlier (None when last week is missing)."""
    idx = slot_index(start, slots) - pd.Timedelta(days=7)
    values = history.reindex(idx)
    if values.isna().any():
        return None
    return [float(v) for v in values]


def step_after(start: datetime, slots: int) -> datetime:
    return start + timedelta(minutes=15 * slots)
