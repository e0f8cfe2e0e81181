"""Forecasting a home from its own telemetry, storing the series, and scoring them afterwards."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from devices.models import THERMAL_TYPES, Device, DeviceType, Home, SignalKind, SignalSeries
from devices.signal_ingest import store_series

from . import base_load, hot_water, pv
from .accuracy import accuracy
from .common import Forecast, seasonal_naive, slot_index
from .models import ForecastAccuracy
from .reference import load_per_unit_hourly
from .selectors import SlotTelemetry, slot_telemetry, slot_telemetry_of_homes, stored_forecast

log = logging.getLogger(__name__)
HISTORY_DAYS = max(base_load.HISTORY_DAYS, hot_water.HISTORY_DAYS, pv.CLOUD_DAYS)
SOURCE_PREFIX = "forecast:"


@dataclass(frozen=True)
class HomeForecast:
    kind: str
    device_id: int | None
    forecast: Forecast


def _reference_file() -> Path | None:
    path = getattr(settings, "REFERENCE_DATA_FILE", None)
    return Path(path) if path else None


def _per_unit_hourly(path: Path | None) -> tuple[list[float], str]:
    """`load_per_unit_hourly`, read again only when the file changed (a chunk forecasts hundreds of homes)."""
    try:
        stamp = path.stat().st_mtime_ns if path is not None else None
    except OSError:
        stamp = None
    return _per_unit_hourly_cached(path, stamp)


@functools.lru_cache(maxsize=8)
def _per_unit_hourly_cached(path: Path | None, stamp: int | None) -> tuple[list[float], str]:
    return load_per_unit_hourly(path)


def _series(values: pd.Series | None) -> pd.Series:
    if values is None:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    return values


def measured_base_load(home: Home, telemetry: SlotTelemetry, devices: list[Device]) -> pd.Series:
    if telemetry.home_w.empty:  # no meter readings: no base load, whatever the devices measured
        return telemetry.home_w
    pv_ids = {d.pk for d in devices if d.device_type == DeviceType.PV}
    controlled = [w for pk, w in telemetry.device_w.items() if pk not in pv_ids]
    produced = [w for pk, w in telemetry.device_w.items() if pk in pv_ids]
    return base_load.base_load_from_meter(telemetry.home_w, controlled, produced)


def measured_heat(device: Device, telemetry: SlotTelemetry) -> pd.Series:
    p = device.parameters
    return hot_water.drawn_heat_w(
        _series(telemetry.device_w.get(device.pk)), _series(telemetry.device_c.get(device.pk)),
        volume_l=float(p["tank_volume_l"]), cop=float(p.get("cop", 1.0)),
        standing_loss_w=float(p.get("standing_loss_kw", 0)) * 1000)


def pv_system(device: Device, home: Home) -> pv.PVSystem:
    p = device.parameters
    latitude, longitude = pv.location_for(p, home.timezone)
    return pv.PVSystem(float(p["peak_power_kw"]), latitude, longitude, float(p.get("tilt_deg", 30)),
                       float(p.get("azimuth_deg", 180)))


def history_span(start: datetime, now: datetime | None) -> tuple[datetime, datetime]:
    """The telemetry a forecast from `start` learns from: HISTORY_DAYS before min(start, now)."""
    known_until = min(start, now) if now else start
    return known_until - timedelta(days=HISTORY_DAYS), known_until


def make_forecasts(home: Home, start: datetime, slots: int, *, now: datetime | None = None,
                   telemetry: SlotTelemetry | None = None, devices: list[Device] | None = None) -> list[HomeForecast]:
    """Base load, each PV system and each water heater of `home` from `start`, learned from
    telemetry before min(start, now). `telemetry` (of `history_span`) and `devices` (all of the
    home's, by id): when the caller read them for many homes at once."""
    if telemetry is None:
        telemetry = slot_telemetry(home, *history_span(start, now))
    if devices is None:
        devices = list(home.devices.order_by("id"))
    per_unit, _ = _per_unit_hourly(_reference_file())
    out = [HomeForecast(SignalKind.LOAD_FORECAST, None, base_load.forecast_base_load(
        measured_base_load(home, telemetry, devices), start, slots, tz=home.timezone, country=home.country,
        per_unit_hourly=per_unit, contracted_kva=float(home.contracted_power_kva)))]
    for d in devices:
        if d.device_type == DeviceType.PV:
            try:
                system = pv_system(d, home)
            except KeyError:
                continue  # no coordinates and an unknown zone: planning names the missing PV forecast
            out.append(HomeForecast(SignalKind.PV_FORECAST, d.pk, pv.forecast_pv(
                system, _series(telemetry.device_w.get(d.pk)), start, slots, tz=home.timezone)))
        elif d.device_type in THERMAL_TYPES:
            out.append(HomeForecast(SignalKind.HEAT_DEMAND, d.pk, hot_water.forecast_hot_water(
                measured_heat(d, telemetry), start, slots, tz=home.timezone, country=home.country)))
    return out


def _stored_items(home: Home, forecasts: list[HomeForecast], devices: list[Device] | None = None) -> list[dict]:
    """The series to store; with the home's `devices` (read with it), each device is named by its row,
    so storing checks no reference again."""
    by_id = {d.pk: d for d in devices or []}
    return [{"kind": f.kind, "home": home, **({"device": by_id[f.device_id]} if f.device_id in by_id
                                               else {"device_id": f.device_id}), "start": f.forecast.start,
             "resolution_minutes": f.forecast.resolution_minutes, "values": f.forecast.values,
             "source": (SOURCE_PREFIX + f.forecast.model)[:120]} for f in forecasts]


def forecast_home(home: Home, start: datetime, slots: int, *, now: datetime | None = None) -> list[HomeForecast]:
    """Make and store the home's forecasts (one transaction); the planner that asked does not re-plan for them."""
    forecasts = make_forecasts(home, start, slots, now=now)
    store_series(_stored_items(home, forecasts), announce=False)
    return forecasts


def forecast_homes(spans: list[tuple[Home, datetime, int]], *, now: datetime | None = None
                   ) -> dict[int, list[SignalSeries]]:
    """`forecast_home` for many homes (a day-ahead chunk), their series stored in one write.

    A home whose forecast cannot be made or stored is logged and left without one (the planner then
    names what it lacks, for that home only). Returns the series stored, by home id (the homes
    forecast), so a planner does not read them back.
    """
    made: list[tuple[Home, list[dict]]] = []
    ids = [home.pk for home, _, _ in spans]
    devices: dict[int, list[Device]] = {pk: [] for pk in ids}
    for d in Device.objects.filter(home_id__any=ids).order_by("id"):
        devices[d.home_id].append(d)
    windows: dict[tuple[datetime, datetime], list[int]] = {}
    for home, start, _ in spans:
        windows.setdefault(history_span(start, now), []).append(home.pk)
    telemetry: dict[int, SlotTelemetry] = {}
    for (since, until), members in windows.items():  # one query per history window (one per time zone)
        telemetry.update(slot_telemetry_of_homes(members, since, until))
    for home, start, slots in spans:
        try:
            made.append((home, _stored_items(home, make_forecasts(
                home, start, slots, now=now, telemetry=telemetry[home.pk], devices=devices[home.pk]),
                devices[home.pk])))
        except Exception:
            log.exception("forecasting home %s failed", home.pk)
    stored: dict[int, list[SignalSeries]] = {}
    try:
        with transaction.atomic():
            rows = store_series([item for _, items in made for item in items], announce=False).rows
        for home, _ in made:
            stored[home.pk] = []
        for row in rows:
            stored[row.home_id].append(row)
        return stored
    except (OperationalError, InterfaceError):
        raise  # the database, not a home
    except Exception:
        log.exception("storing the forecasts of %s homes at once failed; storing them one by one", len(made))
    for home, items in made:
        try:
            with transaction.atomic():
                stored[home.pk] = list(store_series(items, announce=False).rows)
        except Exception:
            log.exception("storing the forecasts of home %s failed", home.pk)
    return stored


def local_day_span(home: Home, day: date) -> tuple[datetime, int]:
    start, end = home.local_day_bounds(day)
    return start, int((end - start) / timedelta(minutes=15))


@transaction.atomic
def score_day(home: Home, day: date) -> list[ForecastAccuracy]:
    """Compare the forecasts stored for the home's local `day` with what was measured; store the errors."""
    start, slots = local_day_span(home, day)
    # from a slot before last week's day: a slot's drawn heat needs the tank's temperature before it
    telemetry = slot_telemetry(home, start - timedelta(days=7, minutes=15), start + timedelta(minutes=15 * slots))
    devices = list(home.devices.order_by("id"))
    index = slot_index(start, slots)
    measured: list[tuple[str, Device | None, pd.Series]] = [
        (SignalKind.LOAD_FORECAST, None, measured_base_load(home, telemetry, devices))]
    for d in devices:
        if d.device_type == DeviceType.PV:
            measured.append((SignalKind.PV_FORECAST, d, _series(telemetry.device_w.get(d.pk)).abs()))
        elif d.device_type in THERMAL_TYPES:
            measured.append((SignalKind.HEAT_DEMAND, d, measured_heat(d, telemetry)))
    rows = []
    for kind, device, series in measured:
        forecast, model = stored_forecast(home, kind, start, slots, device.pk if device else None)
        actual = [None if pd.isna(v) else float(v) for v in series.reindex(index)]
        result = accuracy(forecast, actual)
        if result is None:
            continue
        naive = seasonal_naive(series, start, slots)
        # on the slots the forecast has: a re-plan's forecast replaces the day's from its start on, and
        # the part of the day before it is then not scored (the naive must not be scored there either)
        naive_result = accuracy([n if f is not None else None for n, f in zip(naive, forecast)], actual) \
            if naive is not None else None
        row, _ = ForecastAccuracy.objects.update_or_create(
            home=home, device=device, kind=kind, day=day,
            defaults={"model": model or "unknown", "mae_w": result.mae, "rmse_w": result.rmse, "bias_w": result.bias,
                      "slots": result.slots, "naive_mae_w": naive_result.mae if naive_result else None})
        rows.append(row)
    return rows
