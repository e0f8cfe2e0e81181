"""Queries that read the household/DER domain, always scoped to a user."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from .models import (
    ROLLUP_SLOT_MINUTES, Circuit, ComfortPreference, Cycle, Device, EVSession, Home, Hub, Measurement, SignalSeries,
    Tariff,
)
from .models import MinimumState
from .permissions import scope_to_owner, writes_any_scope

# A series holds at most one week of values (SignalSeries.clean), which bounds range queries.
MAX_SERIES_SPAN = timedelta(days=7)


def homes_for(user: Any) -> QuerySet[Home]:
    return scope_to_owner(Home.objects.select_related("owner", "tariff").prefetch_related("do_not_disturb_windows"),
                          user, "owner")


def hubs_for(user: Any) -> QuerySet[Hub]:
    """Households see the hubs claimed by their homes; unclaimed hubs are operators' business."""
    return scope_to_owner(Hub.objects.select_related("home"), user, "home__owner")


def devices_for(user: Any) -> QuerySet[Device]:
    return scope_to_owner(Device.objects.select_related("home", "hub"), user, "home__owner")


def cycles_for(user: Any) -> QuerySet[Cycle]:
    return scope_to_owner(Cycle.objects.select_related("device"), user, "device__home__owner")


def ev_sessions_for(user: Any) -> QuerySet[EVSession]:
    return scope_to_owner(EVSession.objects.select_related("device"), user, "device__home__owner")


def minimum_states_for(user: Any) -> QuerySet[MinimumState]:
    return scope_to_owner(MinimumState.objects.select_related("device"), user, "device__home__owner")


def circuits_for(user: Any) -> QuerySet[Circuit]:
    return scope_to_owner(Circuit.objects.select_related("home").prefetch_related("devices"), user, "home__owner")


def comfort_for(device: Device) -> ComfortPreference:
    """The device's comfort preference, or an unsaved empty one (all defaults)."""
    try:
        return device.comfort
    except ComfortPreference.DoesNotExist:
        return ComfortPreference(device=device)


def signals_for(user: Any) -> QuerySet[SignalSeries]:
    """Area-wide series (no home) plus the series of the user's own homes."""
    qs = SignalSeries.objects.all()
    if user is None or not user.is_authenticated:
        return qs.none()
    if writes_any_scope(user):
        return qs
    return qs.filter(Q(home__isnull=True) | Q(home__owner=user))


def signals_overlapping(qs: QuerySet[SignalSeries], start: datetime | None, end: datetime | None) -> QuerySet[SignalSeries]:
    """Series that cover part of [start, end). `end` of a series is derived, so bound the scan by the max span."""
    if end is not None:
        qs = qs.filter(start__lt=end)
    if start is not None:
        candidates = qs.filter(start__gt=start - MAX_SERIES_SPAN).only("id", "start", "resolution_minutes", "values")
        ids = [s.id for s in candidates if s.end > start]
        qs = qs.filter(id__in=ids)
    return qs


def measurements_for(user: Any) -> QuerySet[Measurement]:
    return scope_to_owner(Measurement.objects.all(), user, "home__owner")


def tariffs() -> QuerySet[Tariff]:
    return Tariff.objects.order_by("code")


def tariffs_for(user: Any) -> QuerySet[Tariff]:
    """Public tariffs plus the user's own; staff see all."""
    qs = tariffs().select_related("owner")
    if user is None or not user.is_authenticated:
        return qs.filter(owner__isnull=True)
    if user.is_staff:
        return qs
    return qs.filter(Q(owner__isnull=True) | Q(owner=user))


ROLLUP_BUCKETS = {"slot": None, "hour": "hour"}
DAY_BUCKETS = ("day", "month")
ROLLUP_GROUPINGS = ("home", "device", "total")


def _grouping(per: str, alias: str, device_ids: list[int] | None) -> tuple[list[str], list[str]]:
    """(key columns, WHERE terms) of a per-home / per-device / portfolio-total read."""
    if per not in ROLLUP_GROUPINGS:
        raise ValueError(f"per must be one of {ROLLUP_GROUPINGS}")
    keys = {"home": ["home_id"], "device": ["home_id", "device_id"], "total": []}[per]
    where = [f"{alias}.home_id = ANY(%(homes)s)",
             f"{alias}.device_id IS NOT NULL" if per == "device" else f"{alias}.device_id IS NULL"]
    if per == "device" and device_ids is not None:
        where.append(f"{alias}.device_id = ANY(%(devices)s)")
    return keys, where


def _fetch(sql: str, params: dict, names: list[str]) -> list[dict]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [dict(zip(names, row)) for row in cur.fetchall()]


def telemetry_rollups(home_ids: list[int], start: datetime, end: datetime, bucket: str = "slot",
                      per: str = "home", zone: str = "UTC", device_ids: list[int] | None = None) -> list[dict]:
    """Telemetry of homes over [start, end) by 15-minute slot or hour (in `zone`), from the slot roll-ups.

    per="home": each home's own meter (rows without device); "device": each device of the homes
    (optionally only `device_ids`); "total": the homes' meters summed (a portfolio). Each row:
    bucket start, home_id and device_id where grouped, mean_power_w (summed over homes for
    "total"), energy_wh (slot mean power x slot length, summed), import_wh / export_wh (the
    positive / negative slot energies), last soc_pct, mean temperature_c, samples. Days and months
    read `telemetry_days`. The caller scopes `home_ids` to what its user may see.
    """
    if bucket not in ROLLUP_BUCKETS:
        raise ValueError(f"bucket must be one of {sorted(ROLLUP_BUCKETS)} (days and months: telemetry_days)")
    keys, where = _grouping(per, "r", device_ids)
    hours = ROLLUP_SLOT_MINUTES / 60.0
    trunc = ROLLUP_BUCKETS[bucket]
    bucket_sql = "r.slot_start" if trunc is None else f"date_trunc('{trunc}', r.slot_start AT TIME ZONE %(zone)s)"
    group = "".join(f"{k}, " for k in keys)
    sql = f"""
        WITH s AS (
            SELECT {"".join(f"r.{k}, " for k in keys)}{bucket_sql} AS bucket, r.slot_start AS slot, r.samples,
                   r.soc_pct_last, r.soc_at, r.temperature_samples, r.temperature_c_sum,
                   r.power_w_sum / NULLIF(r.power_samples, 0) AS mean_w
              FROM devices_measurementrollup r
             WHERE {" AND ".join(where)} AND r.slot_start >= %(start)s AND r.slot_start < %(end)s
        )
        SELECT {group}bucket, sum(samples),
               sum(mean_w) / NULLIF(count(DISTINCT slot) FILTER (WHERE mean_w IS NOT NULL), 0),
               sum(mean_w) * {hours}, sum(greatest(mean_w, 0)) * {hours}, sum(greatest(-mean_w, 0)) * {hours},
               (array_agg(soc_pct_last ORDER BY soc_at DESC) FILTER (WHERE soc_at IS NOT NULL))[1],
               sum(temperature_c_sum) / NULLIF(sum(temperature_samples), 0)
          FROM s GROUP BY {group}bucket ORDER BY {group}bucket"""
    params = {"homes": list(home_ids), "start": start, "end": end, "zone": zone, "devices": list(device_ids or [])}
    rows = _fetch(sql, params, keys + ["bucket", "samples", "mean_power_w", "energy_wh", "import_wh", "export_wh",
                                       "soc_pct", "temperature_c"])
    if trunc is not None:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(zone)
        for row in rows:  # date_trunc of a local time gives a naive local wall time
            row["bucket"] = row["bucket"].replace(tzinfo=tz)
    return rows


def telemetry_days(home_ids: list[int], first_day: date, last_day: date, bucket: str = "day",
                   per: str = "home", device_ids: list[int] | None = None) -> list[dict]:
    """Telemetry of homes from `first_day` to `last_day` (inclusive, each home's local days) by day or
    month, from the daily roll-ups (today's is at most 15 minutes old).

    Rows: bucket (the day, or the first day of the month), keys as in `telemetry_rollups`, energy_wh,
    import_wh, export_wh, power_w_max, last soc_pct, mean temperature_c, samples, slots.
    """
    if bucket not in DAY_BUCKETS:
        raise ValueError(f"bucket must be one of {DAY_BUCKETS}")
    keys, where = _grouping(per, "d", device_ids)
    bucket_sql = "d.day" if bucket == "day" else "date_trunc('month', d.day)::date"
    group = "".join(f"{k}, " for k in keys)
    sql = f"""
        SELECT {"".join(f"d.{k}, " for k in keys)}{bucket_sql} AS bucket, sum(d.samples), sum(d.slots),
               sum(d.energy_wh), sum(d.import_wh), sum(d.export_wh), max(d.power_w_max),
               (array_agg(d.soc_pct_last ORDER BY d.day DESC) FILTER (WHERE d.soc_pct_last IS NOT NULL))[1],
               sum(d.temperature_c_sum) / NULLIF(sum(d.temperature_samples), 0)
          FROM devices_measurementday d
         WHERE {" AND ".join(where)} AND d.day >= %(first)s AND d.day <= %(last)s
         GROUP BY {group}bucket ORDER BY {group}bucket"""
    params = {"homes": list(home_ids), "first": first_day, "last": last_day, "devices": list(device_ids or [])}
    return _fetch(sql, params, keys + ["bucket", "samples", "slots", "energy_wh", "import_wh", "export_wh",
                                       "power_w_max", "soc_pct", "temperature_c"])
