"""Reading telemetry per slot, stored forecasts and forecast accuracy."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.db.models import QuerySet

from devices.models import ROLLUP_SLOT_MINUTES, Home, MeasurementRollup, SignalSeries
from devices.permissions import scope_to_owner

from .models import ForecastAccuracy


@dataclass
class SlotTelemetry:
    """Per-slot means (UTC index): the home meter and each device's power and temperature."""

    home_w: pd.Series
    device_w: dict[int, pd.Series] = field(default_factory=dict)
    device_c: dict[int, pd.Series] = field(default_factory=dict)


def _series(rows: list[tuple[datetime, Any]]) -> pd.Series:
    rows = [(t, v) for t, v in rows if v is not None]
    if not rows:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    index = pd.DatetimeIndex([t for t, _ in rows]).tz_convert("UTC")
    return pd.Series([float(v) for _, v in rows], index=index, dtype=float).sort_index()


def slot_telemetry(home: Home, since: datetime, until: datetime) -> SlotTelemetry:
    """Telemetry of `home` in the 15-minute slots from the one holding `since` to the one holding
    `until` (exclusive when `until` starts a slot), as slot means.

    Read from the 15-minute roll-ups (kept for years, one row per slot and series, maintained by the
    telemetry writer on every database) rather than the raw rows: 90 times fewer rows for 10 s readings.
    """
    return slot_telemetry_of_homes([home.pk], since, until)[home.pk]


def slot_telemetry_of_homes(home_ids: list[int], since: datetime, until: datetime) -> dict[int, SlotTelemetry]:
    """`slot_telemetry` of many homes with one query."""
    step = timedelta(minutes=ROLLUP_SLOT_MINUTES)
    rows = (MeasurementRollup.objects.filter(home_id__any=home_ids, slot_start__gt=since - step, slot_start__lt=until)
            .values_list("home_id", "device_id", "slot_start", "power_samples", "power_w_sum", "temperature_samples",
                         "temperature_c_sum").order_by())
    by_device: dict[int, dict[int | None, list[tuple[datetime, Any, Any]]]] = {pk: {} for pk in home_ids}
    for home_id, device_id, slot, n_power, power_sum, n_temperature, temperature_sum in rows:
        by_device[home_id].setdefault(device_id, []).append(
            (slot, power_sum / n_power if n_power else None,
             temperature_sum / n_temperature if n_temperature else None))
    out = {}
    for home_id, series in by_device.items():
        telemetry = out[home_id] = SlotTelemetry(home_w=_series([(t, p) for t, p, _ in series.pop(None, [])]))
        for device_id, device_rows in series.items():
            telemetry.device_w[device_id] = _series([(t, p) for t, p, _ in device_rows])
            telemetry.device_c[device_id] = _series([(t, c) for t, _, c in device_rows])
    return out


def stored_forecast(home: Home, kind: str, start: datetime, slots: int, device_id: int | None = None
                    ) -> tuple[list[float | None], str]:
    """Per slot, the newest stored 15-minute forecast value (None where none), and its model."""
    end = start + timedelta(minutes=15 * slots)
    qs = (SignalSeries.objects.filter(kind=kind, home=home, device_id=device_id, resolution_minutes=15,
                                      start__lt=end, start__gt=start - timedelta(days=7))
          .order_by("-created_at", "-id"))
    out: list[float | None] = [None] * slots
    model = ""
    for s in qs:
        offset = int((s.start - start) / timedelta(minutes=15))
        for i, v in enumerate(s.values):
            t = offset + i
            if 0 <= t < slots and out[t] is None:
                out[t] = float(v)
                model = model or s.source.removeprefix("forecast:")
    return out, model


def accuracy_for(user: Any) -> QuerySet[ForecastAccuracy]:
    return scope_to_owner(ForecastAccuracy.objects.select_related("home", "device"), user, "home__owner")
