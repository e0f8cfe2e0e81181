"""Simulated household telemetry for forecasting tests and benchmarks (seeded, not tuned to the models).

Base load: the reference per-unit profile x contracted power x a per-home scale, lower on
weekends' mornings and higher at weekend middays, with multiplicative noise and random
appliance spikes (kettle, oven, iron) at random times. PV: pvlib clear sky x a daily cloudiness that
persists from day to day, and a per-slot flicker. Hot water: random showers around each home's habits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from flexibility.forecasting.accuracy import accuracy
from flexibility.forecasting.common import seasonal_naive, slot_index
from flexibility.forecasting.pv import PVSystem, clear_sky_ac_w
from flexibility.forecasting.reference import BUILTIN_LOAD_PER_UNIT


@dataclass
class SimulatedHome:
    seed: int
    tz: str = "Europe/Lisbon"
    contracted_kva: float = 6.9

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        self.scale = self.rng.uniform(0.25, 0.6)  # the reference profile peaks at 0.6 p.u.: most homes use less
        self.shift_slots = int(self.rng.integers(-4, 5))  # habits an hour earlier or later than the profile
        self.shower_hours = (self.rng.uniform(6.5, 8.5), self.rng.uniform(19.0, 22.5))

    def base_load_w(self, start: datetime, slots: int) -> pd.Series:
        index = slot_index(start, slots)
        local = index.tz_convert(self.tz)
        hours = (local.hour * 4 + local.minute // 15 - self.shift_slots) % 96 // 4
        profile = np.array([BUILTIN_LOAD_PER_UNIT[h] for h in hours]) * self.contracted_kva * 1000 * self.scale
        weekend = local.day_of_week >= 5
        profile = np.where(weekend & (local.hour < 9), profile * 0.7, profile)
        profile = np.where(weekend & (local.hour >= 11) & (local.hour < 16), profile * 1.35, profile)
        noise = self.rng.lognormal(0.0, 0.35, slots)
        spikes = np.zeros(slots)
        for _ in range(self.rng.poisson(3.0 * slots / 96)):
            at = int(self.rng.integers(0, slots))
            spikes[at:at + int(self.rng.integers(1, 4))] += self.rng.uniform(800, 2200)
        return pd.Series(profile * noise + spikes + 60.0, index=index)

    def pv_w(self, system: PVSystem, start: datetime, slots: int) -> pd.Series:
        index = slot_index(start, slots)
        clear = clear_sky_ac_w(system, index)
        days = index.tz_convert(self.tz).normalize()
        cloudiness, level = {}, self.rng.beta(5, 2)
        for d in sorted(set(days)):  # weather persists: each day is partly yesterday's
            level = 0.5 * level + 0.5 * self.rng.beta(5, 2)
            cloudiness[d] = level
        factor = np.array([cloudiness[d] for d in days]) * self.rng.uniform(0.85, 1.0, slots)
        return clear * factor

    def hot_water_w(self, start: datetime, slots: int) -> pd.Series:
        """Heat drawn (W thermal) per slot: a shower of ~1.5-2.5 kWh near each habit time, most days."""
        index = slot_index(start, slots)
        local = index.tz_convert(self.tz)
        hour = local.hour + local.minute / 60
        out = np.full(slots, 40.0)
        for day in sorted(set(local.normalize())):
            for habit in self.shower_hours:
                if self.rng.random() < 0.85:
                    at = habit + self.rng.normal(0, 0.4)
                    mask = (local.normalize() == day) & (hour >= at) & (hour < at + 0.5)
                    out[np.asarray(mask)] += self.rng.uniform(1.5, 2.5) * 1000 / 0.5
        return pd.Series(out, index=index)


def days_before(start: datetime, days: int) -> tuple[datetime, int]:
    return start - timedelta(days=days), days * 96


def mean_daily_mae(series: pd.Series, first_day: datetime, days: int, forecast) -> tuple[float, float]:
    """Day-ahead forecasts of `series` for `days` local days from `first_day`, each learned from what
    came before: (mean MAE of `forecast(history, day) -> Forecast`, mean MAE of seasonal naive)."""
    model, naive = [], []
    for k in range(days):
        day = first_day + timedelta(days=k)
        history = series[series.index < day]
        actual = list(series[(series.index >= day) & (series.index < day + timedelta(days=1))])
        model.append(accuracy(forecast(history, day).values, actual).mae)
        naive.append(accuracy(seasonal_naive(history, day, 96), actual).mae)
    return float(np.mean(model)), float(np.mean(naive))
