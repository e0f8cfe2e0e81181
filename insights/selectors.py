"""Statistics of homes, their devices and portfolios: energy, cost, CO2, self-consumption, savings.

Definitions (per slot, then summed into local days or months of the scope's time zone):
- imported / exported: the grid meters' energy (`devices.telemetry.grouped_slot_energy`, from the
  15-minute roll-ups); PV: the PV devices' production; consumption = imported - exported + PV.
- cost: imported x the household's import price - exported x its export price (its tariff or
  dynamic series, as the planner sees them); CO2: imported x the area's CO2 intensity.
- self-consumption = (PV - exported) / PV; self-sufficiency = (PV - exported) / consumption.
- planned savings: what the plan in force promised against the unoptimized baseline. The plan in
  force in a slot is the newest stored schedule covering it that was made before the slot ended; a
  schedule's savings and baseline cost count evenly over its slots.
- realized savings: the baseline cost of the plans in force minus the measured cost, over the slots
  where every home of the scope reported and had a plan (`realized_slots` says how many).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone as dt_timezone
from typing import Any, Iterable, Optional
from zoneinfo import ZoneInfo

import numpy as np

from devices.models import Device, DeviceType, Home, SignalKind, SignalSeries, TariffKind
from devices.selectors import MAX_SERIES_SPAN
from flexibility.planning.models import RunStatus, Schedule
from flexibility.planning.problem_builder import signal_slots, site_prices
from flexibility.optimizer import TimeGrid
from flexibility.planning.slots import MAX_HORIZON_H, RESOLUTION_MIN

from devices.telemetry import SlotIndex, device_slot_energy, grouped_slot_energy

BUCKETS = ("day", "month")


@dataclass(frozen=True)
class Period(TimeGrid):
    """Local days [first, last] of a time zone as absolute slots (a DST day has 92 or 100 quarter-hours)."""

    first: Optional[date] = None
    last: Optional[date] = None
    slot_day: tuple[date, ...] = ()  # each slot's local date

    @classmethod
    def of_days(cls, zone: str, first: date, last: date, resolution_min: int = RESOLUTION_MIN) -> "Period":
        tz = ZoneInfo(zone)
        start = datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(dt_timezone.utc)
        nxt = last + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(dt_timezone.utc)
        slots = int((end - start).total_seconds() // (resolution_min * 60))
        step = timedelta(minutes=resolution_min)
        days = tuple((start + i * step).astimezone(tz).date() for i in range(slots))
        return cls(start, resolution_min, slots, zone, first, last, days)

    def bucket_index(self, bucket: str) -> tuple[list[str], np.ndarray]:
        """Bucket labels ('2026-11-29' or '2026-11') and each slot's bucket number."""
        keys = [d.isoformat() if bucket == "day" else d.strftime("%Y-%m") for d in self.slot_day]
        labels = list(dict.fromkeys(keys))
        pos = {k: i for i, k in enumerate(labels)}
        return labels, np.array([pos[k] for k in keys], dtype=np.int64)


def _array(values: Iterable[Optional[float]]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def price_groups(homes: list[Home], period: Period) -> list[tuple[list[int], np.ndarray, np.ndarray, np.ndarray]]:
    """Homes that share their prices and CO2 signal, each group with its per-slot import price,
    export price and CO2 intensity (NaN where unknown). A home with series of its own is alone."""
    kinds = [SignalKind.IMPORT_PRICE, SignalKind.EXPORT_PRICE, SignalKind.CO2_INTENSITY]
    own = set(SignalSeries.objects.filter(home__in=[h.pk for h in homes], kind__in=kinds, start__lt=period.end,
                                          start__gt=period.start - MAX_SERIES_SPAN)
              .values_list("home_id", "kind").distinct())
    groups: dict[tuple, list[Home]] = defaultdict(list)
    for h in homes:
        if h.tariff_kind == TariffKind.DYNAMIC:
            imp = ("dynamic", h.pk if (h.pk, SignalKind.IMPORT_PRICE) in own else (h.country, h.tariff_id))
        else:
            imp = ("tariff", h.tariff_id, h.timezone)
        exp = h.pk if (h.pk, SignalKind.EXPORT_PRICE) in own else (h.country, h.tariff_id)
        co2 = h.pk if (h.pk, SignalKind.CO2_INTENSITY) in own else h.country
        groups[(imp, exp, co2)].append(h)
    out = []
    for members in groups.values():
        rep = members[0]
        imp, exp = _prices_by_day(rep, period)
        out.append(([h.pk for h in members], imp, exp,
                    _array(signal_slots(rep, SignalKind.CO2_INTENSITY, period.start, period.slots))))
    return out


def _prices_by_day(home: Home, period: Period) -> tuple[np.ndarray, np.ndarray]:
    """Import and export prices per slot as the planner sees them; where a (dynamic) price is missing,
    only the local days without it are unknown (NaN)."""
    imp, exp = site_prices(home, period.start, period.slots)
    if imp is not None and exp is not None:
        return _array(imp), _array(exp)
    imp_all, exp_all = np.full(period.slots, np.nan), np.full(period.slots, np.nan)
    t = 0
    for day in sorted(set(period.slot_day)):
        n = period.slot_day.count(day)
        day_imp, day_exp = site_prices(home, period.slot_start(t), n)
        if day_imp is not None:
            imp_all[t:t + n] = day_imp
        if day_exp is not None:
            exp_all[t:t + n] = day_exp
        t += n
    return imp_all, exp_all


@dataclass
class PlansInForce:
    baseline_cost_eur: np.ndarray  # summed over the homes with a plan in the slot
    planned_savings_eur: np.ndarray
    homes: np.ndarray  # homes with a plan in force in the slot


def _schedules_in_force(home_ids: list[int], period: Period, *fields: str):
    """(home id, first slot, end slot, fields...) of each schedule overlapping the period, per home in
    creation order: writing them in that order leaves the plan in force in each slot."""
    res_s = period.resolution_min * 60
    # Slot numbers computed by the database: a month of a portfolio is 30,000 schedules, and parsing their
    # times in Python took longer than the rest of the statistics.
    rows = (Schedule.objects.filter(home_id__in=home_ids, run__status=RunStatus.SUCCEEDED, start__lt=period.end,
                                    start__gt=period.start - timedelta(hours=MAX_HORIZON_H),
                                    created_at__lt=period.end, resolution_minutes=period.resolution_min)
            .annotate(made_slot=SlotIndex("created_at", period.start, res_s),
                      first_slot=SlotIndex("start", period.start, res_s))
            .order_by("home_id", "created_at", "id")
            .values_list("home_id", "made_slot", "first_slot", "slots", *fields))
    for home_id, made, first, slots, *values in rows.iterator(chunk_size=5000):
        # A plan counts from the slot it was made in. Schedules start on slot boundaries; a plan made before
        # the period (made < 0: SQLite truncates instead of flooring there) counts from its start.
        lo, hi = max(first, made, 0), min(first + slots, period.slots)
        if lo < hi and slots:
            yield home_id, lo, hi, first, slots, values


def plans_in_force(home_ids: list[int], period: Period) -> PlansInForce:
    """Per slot, the schedules in force (see the module docstring), summed over homes."""
    n = period.slots
    base_sum, save_sum, count = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)

    def flush(base: np.ndarray, save: np.ndarray, has: np.ndarray) -> None:
        base_sum[has] += base[has]
        save_sum[has] += save[has]
        count[has] += 1

    current = None
    for home_id, lo, hi, _, slots, (baseline_cost, savings) in _schedules_in_force(
            home_ids, period, "baseline_cost_eur", "savings_eur"):
        if home_id != current:
            if current is not None:
                flush(base, save, has)
            current = home_id
            base, save, has = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
        base[lo:hi] = baseline_cost / slots
        save[lo:hi] = savings / slots
        has[lo:hi] = True
    if current is not None:
        flush(base, save, has)
    return PlansInForce(base_sum, save_sum, count)


def planned_net_import_kw(home: Home, period: Period) -> list[Optional[float]]:
    """The net import of the plan in force in each slot (None where no plan)."""
    out: list[Optional[float]] = [None] * period.slots
    for _, lo, hi, first, _, (net,) in _schedules_in_force([home.pk], period, "net_import_kw"):
        out[lo:hi] = net[lo - first:hi - first]
    return out


def _bucketed(values: np.ndarray, index: np.ndarray, buckets: int) -> np.ndarray:
    out = np.zeros(buckets)
    np.add.at(out, index, np.nan_to_num(values))
    return out


def _ratio(num: float, den: float) -> Optional[float]:
    return None if den <= 1e-9 else round(min(1.0, max(0.0, num / den)), 4)


def energy_statistics(homes: list[Home], period: Period, bucket: str = "day") -> dict[str, Any]:
    """Statistics of a set of homes (one home, or a portfolio) per bucket and in total."""
    home_ids = [h.pk for h in homes]
    n = period.slots
    imported, exported, cost, co2 = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    reporting = np.zeros(n, dtype=np.int64)
    priced = np.ones(n, dtype=bool)
    groups = price_groups(homes, period)
    meters, pv = grouped_slot_energy([g[0] for g in groups], period.start, n, period.resolution_min,
                                     device_type=DeviceType.PV)
    for (_, imp_price, exp_price, co2_g), meter in zip(groups, meters):
        imp, exp = np.array(meter.import_kwh), np.array(meter.export_kwh)
        imported += imp
        exported += exp
        reporting += np.array(meter.reporting)
        cost += np.nan_to_num(imp * imp_price - exp * exp_price)
        co2 += np.nan_to_num(imp * co2_g / 1000.0)
        priced &= ~(np.isnan(imp_price) & (imp > 0))
    pv_kwh = np.array(pv.import_kwh) + np.array(pv.export_kwh)  # PV counts by magnitude, whatever sign a hub uses
    plans = plans_in_force(home_ids, period)
    complete = (reporting == len(home_ids)) & (plans.homes == len(home_ids))
    realized = np.where(complete, plans.baseline_cost_eur - cost, 0.0)

    labels, index = period.bucket_index(bucket)
    k = len(labels)
    sums = {
        "import_kwh": _bucketed(imported, index, k), "export_kwh": _bucketed(exported, index, k),
        "pv_kwh": _bucketed(pv_kwh, index, k), "cost_eur": _bucketed(cost, index, k),
        "co2_kg": _bucketed(co2, index, k), "planned_savings_eur": _bucketed(plans.planned_savings_eur, index, k),
        "realized_savings_eur": _bucketed(realized, index, k),
        "baseline_cost_eur": _bucketed(np.where(complete, plans.baseline_cost_eur, 0.0), index, k),
    }
    sums["slots"] = _bucketed(np.ones(n), index, k)
    sums["reported_slots"] = _bucketed((reporting > 0).astype(float), index, k)
    sums["realized_slots"] = _bucketed(complete.astype(float), index, k)

    def row(i: Optional[int]) -> dict[str, Any]:
        return _finish({name: float(a.sum() if i is None else a[i]) for name, a in sums.items()})

    return {
        "timezone": period.timezone, "first_day": period.first.isoformat(), "last_day": period.last.isoformat(),
        "bucket": bucket, "homes": len(home_ids), "resolution_minutes": period.resolution_min,
        "prices_complete": bool(priced.all()),
        "totals": row(None),
        "buckets": [{"period": label, **row(i)} for i, label in enumerate(labels)],
    }


ADDITIVE = ("import_kwh", "export_kwh", "pv_kwh", "cost_eur", "co2_kg", "planned_savings_eur",
            "realized_savings_eur", "baseline_cost_eur", "slots", "reported_slots", "realized_slots")


def _finish(values: dict[str, float]) -> dict[str, Any]:
    """Sums -> the published figures: consumption, the two ratios, coverage; rounded."""
    consumption = values["import_kwh"] - values["export_kwh"] + values["pv_kwh"]
    own_use = values["pv_kwh"] - values["export_kwh"]
    out: dict[str, Any] = {name: round(values[name], 4) for name in ADDITIVE if not name.endswith("slots")}
    out.update(consumption_kwh=round(consumption, 4), self_consumption=_ratio(own_use, values["pv_kwh"]),
               self_sufficiency=_ratio(own_use, consumption),
               coverage=round(values["reported_slots"] / max(values["slots"], 1.0), 4),
               slots=int(values["slots"]), reported_slots=int(values["reported_slots"]),
               realized_slots=int(values["realized_slots"]))
    return out


def combine_buckets(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals of some buckets of one answer (e.g. the last 7 days of a month's days)."""
    return _finish({name: float(sum(b[name] for b in buckets)) for name in ADDITIVE})


def device_statistics(home: Home, period: Period, bucket: str = "day") -> list[dict[str, Any]]:
    """Per device of a home: energy consumed and produced, cost and CO2 of what it consumed."""
    (_, imp_price, _, co2_g), = price_groups([home], period)
    labels, index = period.bucket_index(bucket)
    per_device = device_slot_energy(home.pk, period.start, period.slots, period.resolution_min)
    devices = {d.pk: d for d in Device.objects.filter(home=home).order_by("id")}
    out = []
    for device_id, device in devices.items():
        series = per_device.get(device_id)
        consumed = np.array(series.import_kwh) if series else np.zeros(period.slots)
        produced = np.array(series.export_kwh) if series else np.zeros(period.slots)
        sums = {"consumed_kwh": consumed, "produced_kwh": produced, "cost_eur": consumed * imp_price,
                "co2_kg": consumed * co2_g / 1000.0}
        bucketed = {name: _bucketed(a, index, len(labels)) for name, a in sums.items()}
        out.append({
            "device": device_id, "name": device.name, "device_type": device.device_type,
            "totals": {name: round(float(a.sum()), 4) for name, a in bucketed.items()},
            "buckets": [{"period": label, **{name: round(float(a[i]), 4) for name, a in bucketed.items()}}
                        for i, label in enumerate(labels)],
        })
    return out


def default_days(zone: str, bucket: str, today: Optional[date] = None) -> tuple[date, date]:
    """The current local month for monthly buckets, else the last seven local days (today included)."""
    today = today or datetime.now(ZoneInfo(zone)).date()
    if bucket == "month":
        return today.replace(day=1), today
    return today - timedelta(days=6), today


def home_statistics(home: Home, bucket: str = "day", first: Optional[date] = None, last: Optional[date] = None,
                    with_devices: bool = False) -> dict[str, Any]:
    """A household's statistics in its own time zone (default: `default_days`)."""
    d_first, d_last = default_days(home.timezone, bucket)
    period = Period.of_days(home.timezone, first or d_first, last or d_last)
    out = {"home": home.pk, **energy_statistics([home], period, bucket)}
    if with_devices:
        out["devices"] = device_statistics(home, period, bucket)
    return out


def portfolio_statistics(portfolio, bucket: str = "day", first: Optional[date] = None,
                         last: Optional[date] = None) -> dict[str, Any]:
    """A portfolio's homes together, bucketed in the time zone most of them are in."""
    homes = list(portfolio.homes.prefetch_related("tariff").order_by("id"))  # one tariff object per tariff
    zones = defaultdict(int)
    for h in homes:
        zones[h.timezone] += 1
    zone = max(zones, key=zones.get) if zones else "UTC"
    d_first, d_last = default_days(zone, bucket)
    period = Period.of_days(zone, first or d_first, last or d_last)
    return {"portfolio": portfolio.pk, "portfolio_code": portfolio.code, **energy_statistics(homes, period, bucket)}


def home_series(home: Home, day: Optional[date] = None) -> dict[str, Any]:
    """One local day per slot, like FlexiHome's statistics: consumption, injection, PV, CO2 signal and
    price, and forecast against measured (base load, net import of the plan in force)."""
    day = day or datetime.now(home.tzinfo).date()
    period = Period.of_days(home.timezone, day, day)
    n, dt = period.slots, period.dt_h
    (_, imp_price, exp_price, co2_g), = price_groups([home], period)
    (meter,), pv = grouped_slot_energy([[home.pk]], period.start, n, period.resolution_min, device_type=DeviceType.PV)
    load_fc = signal_slots(home, SignalKind.LOAD_FORECAST, period.start, n)
    pv_fc = [0.0] * n
    for device in home.devices.filter(device_type=DeviceType.PV):
        for t, v in enumerate(signal_slots(home, SignalKind.PV_FORECAST, period.start, n, device=device)):
            pv_fc[t] = None if v is None or pv_fc[t] is None else pv_fc[t] + v

    def kw(values: list[float], t: int) -> Optional[float]:
        return round(values[t] / dt, 4) if meter.reporting[t] else None

    def num(x) -> Optional[float]:
        return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), 4)

    step = timedelta(minutes=period.resolution_min)
    rows = []
    planned = planned_net_import_kw(home, period)
    for t in range(n):
        pv_kw = (pv.import_kwh[t] + pv.export_kwh[t]) / dt if pv.reporting[t] else None
        consumption = None
        if meter.reporting[t]:
            consumption = round((meter.import_kwh[t] - meter.export_kwh[t]) / dt + (pv_kw or 0.0), 4)
        rows.append({
            "start": (period.start + t * step).isoformat(),
            "consumption_kw": consumption, "injection_kw": kw(meter.export_kwh, t),
            "measured_net_import_kw": None if not meter.reporting[t] else
            round((meter.import_kwh[t] - meter.export_kwh[t]) / dt, 4),
            "planned_net_import_kw": num(planned[t]), "pv_kw": num(pv_kw), "pv_forecast_kw": num(
                None if pv_fc[t] is None else pv_fc[t] / 1000.0),
            "load_forecast_kw": num(None if load_fc[t] is None else load_fc[t] / 1000.0),
            "co2_g_per_kwh": num(co2_g[t]), "import_price_eur_per_kwh": num(imp_price[t]),
            "export_price_eur_per_kwh": num(exp_price[t]),
        })
    return {"home": home.pk, "day": day.isoformat(), "timezone": home.timezone,
            "resolution_minutes": period.resolution_min, "slots": rows}
