"""Time-of-use tariff calendars and their expansion into per-slot price series.

Built-in calendars follow the period boundaries of the Portuguese regulator
ERSE's "ciclo diário" (daily cycle, winter hours) for low-voltage households:
off-peak (vazio) 22:00-08:00; for tri-hourly, peak (ponta) 09:00-10:30 and
18:00-20:30, mid (cheias) the rest. The EUR/kWh prices are the three levels of
the FlexiHome Energy Manager default tri-hourly day (0.1044 / 0.1696 / 0.2337);
the bi-hourly and simple prices are illustrative values between them.

Dynamic tariffs follow the spot price of their area. Their `periods` hold the network access
fee per time-of-use period, added to spot x multiplier + supplier adder, then VAT. The built-in
ones are illustrative: Portugal with ERSE's tri-hourly periods and VAT 23 %, Spain with the
2.0TD periods (punta 10-14 and 18-22, llano 8-10, 14-18 and 22-24 on weekdays, valle at night
and all weekend) and VAT 21 %; both pay exports at 90 % of the spot price. Operators edit or
add tariffs in the admin; households may add their own.
"""
from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError

ALL_DAYS = [0, 1, 2, 3, 4, 5, 6]
OFF_PEAK, MID, PEAK = 0.1044, 0.1696, 0.2337

DEFAULT_TARIFFS = [
    {
        "code": "pt-simple",
        "name": "Portugal simple (flat)",
        "kind": "simple",
        "periods": [{"days": ALL_DAYS, "start": "00:00", "end": "24:00", "price_eur_per_kwh": 0.1650}],
    },
    {
        "code": "pt-bi-hourly-daily",
        "name": "Portugal bi-hourly, daily cycle",
        "kind": "bi_hourly",
        "periods": [
            {"days": ALL_DAYS, "start": "00:00", "end": "08:00", "price_eur_per_kwh": OFF_PEAK},
            {"days": ALL_DAYS, "start": "08:00", "end": "22:00", "price_eur_per_kwh": 0.1950},
            {"days": ALL_DAYS, "start": "22:00", "end": "24:00", "price_eur_per_kwh": OFF_PEAK},
        ],
    },
    {
        "code": "pt-tri-hourly-daily",
        "name": "Portugal tri-hourly, daily cycle",
        "kind": "tri_hourly",
        "periods": [
            {"days": ALL_DAYS, "start": "00:00", "end": "08:00", "price_eur_per_kwh": OFF_PEAK},
            {"days": ALL_DAYS, "start": "08:00", "end": "09:00", "price_eur_per_kwh": MID},
            {"days": ALL_DAYS, "start": "09:00", "end": "10:30", "price_eur_per_kwh": PEAK},
            {"days": ALL_DAYS, "start": "10:30", "end": "18:00", "price_eur_per_kwh": MID},
            {"days": ALL_DAYS, "start": "18:00", "end": "20:30", "price_eur_per_kwh": PEAK},
            {"days": ALL_DAYS, "start": "20:30", "end": "22:00", "price_eur_per_kwh": MID},
            {"days": ALL_DAYS, "start": "22:00", "end": "24:00", "price_eur_per_kwh": OFF_PEAK},
        ],
    },
]
WEEKDAYS, WEEKEND = [0, 1, 2, 3, 4], [5, 6]
for _t in DEFAULT_TARIFFS:  # the time-of-use tariffs above are Portugal's defaults of their kind
    _t.update(country="PT", is_default=True)
DEFAULT_TARIFFS += [
    {
        "code": "pt-dynamic-spot",
        "name": "Portugal dynamic (OMIE spot), tri-hourly network fees",
        "kind": "dynamic", "country": "PT", "is_default": True,
        "spot_multiplier": "1.0", "spot_adder_eur_per_kwh": "0.012", "vat_pct": "23",
        "export_kind": "spot", "export_spot_multiplier": "0.9", "export_spot_adder_eur_per_kwh": "0",
        "periods": [
            {"days": ALL_DAYS, "start": "00:00", "end": "08:00", "price_eur_per_kwh": 0.0118},
            {"days": ALL_DAYS, "start": "08:00", "end": "09:00", "price_eur_per_kwh": 0.0356},
            {"days": ALL_DAYS, "start": "09:00", "end": "10:30", "price_eur_per_kwh": 0.0642},
            {"days": ALL_DAYS, "start": "10:30", "end": "18:00", "price_eur_per_kwh": 0.0356},
            {"days": ALL_DAYS, "start": "18:00", "end": "20:30", "price_eur_per_kwh": 0.0642},
            {"days": ALL_DAYS, "start": "20:30", "end": "22:00", "price_eur_per_kwh": 0.0356},
            {"days": ALL_DAYS, "start": "22:00", "end": "24:00", "price_eur_per_kwh": 0.0118},
        ],
    },
    {
        "code": "es-dynamic-spot",
        "name": "Spain dynamic (OMIE spot), 2.0TD network fees",
        "kind": "dynamic", "country": "ES", "is_default": True,
        "spot_multiplier": "1.0", "spot_adder_eur_per_kwh": "0.010", "vat_pct": "21",
        "export_kind": "spot", "export_spot_multiplier": "0.9", "export_spot_adder_eur_per_kwh": "0",
        "periods": [
            {"days": WEEKDAYS, "start": "00:00", "end": "08:00", "price_eur_per_kwh": 0.0030},
            {"days": WEEKDAYS, "start": "08:00", "end": "10:00", "price_eur_per_kwh": 0.0280},
            {"days": WEEKDAYS, "start": "10:00", "end": "14:00", "price_eur_per_kwh": 0.0750},
            {"days": WEEKDAYS, "start": "14:00", "end": "18:00", "price_eur_per_kwh": 0.0280},
            {"days": WEEKDAYS, "start": "18:00", "end": "22:00", "price_eur_per_kwh": 0.0750},
            {"days": WEEKDAYS, "start": "22:00", "end": "24:00", "price_eur_per_kwh": 0.0280},
            {"days": WEEKEND, "start": "00:00", "end": "24:00", "price_eur_per_kwh": 0.0030},
        ],
    },
]
TARIFF_SOURCE = __doc__.strip()


def _minutes(hhmm: str) -> int:
    if hhmm == "24:00":
        return 24 * 60
    t = time.fromisoformat(hhmm)
    return t.hour * 60 + t.minute


def validate_periods(periods) -> None:
    """Each weekday's periods must tile 00:00-24:00 exactly once."""
    if not isinstance(periods, list) or not periods:
        raise ValidationError({"periods": "Must be a non-empty list."})
    cover = {d: [] for d in range(7)}
    for i, p in enumerate(periods):
        try:
            start, end = _minutes(p["start"]), _minutes(p["end"])
            price = float(p["price_eur_per_kwh"])
            days = p["days"]
        except (KeyError, TypeError, ValueError):
            raise ValidationError({f"periods[{i}]": "Needs days, start HH:MM, end HH:MM and price_eur_per_kwh."})
        if end <= start:
            raise ValidationError({f"periods[{i}].end": "Must be after start (use 24:00 for midnight)."})
        if not -5 <= price <= 5:
            raise ValidationError({f"periods[{i}].price_eur_per_kwh": "Must be within [-5, 5] EUR/kWh."})
        for d in days:
            if d not in cover:
                raise ValidationError({f"periods[{i}].days": "Weekdays are 0 (Monday) to 6."})
            cover[d].append((start, end))
    for d, spans in cover.items():
        spans.sort()
        at = 0
        for s, e in spans:
            if s != at:
                raise ValidationError({"periods": f"Weekday {d} is not covered exactly once around minute {at}."})
            at = e
        if at != 24 * 60:
            raise ValidationError({"periods": f"Weekday {d} is not covered up to 24:00."})


def price_at(periods: list[dict], local: datetime) -> float:
    minute = local.hour * 60 + local.minute
    for p in periods:
        if local.weekday() in p["days"] and _minutes(p["start"]) <= minute < _minutes(p["end"]):
            return float(p["price_eur_per_kwh"])
    raise ValueError(f"No tariff period covers {local.isoformat()}")


def price_series(periods: list[dict], start: datetime, slots: int, resolution_min: int, tz: str) -> list[float]:
    """Price of each absolute slot, read at the slot's local start time (DST-safe)."""
    zone = zoneinfo.ZoneInfo(tz)
    step = timedelta(minutes=resolution_min)
    by_time: dict[tuple[int, int, int], float] = {}  # a month of slots repeats a week of local times
    out = []
    for i in range(slots):
        local = (start + i * step).astimezone(zone)
        key = (local.weekday(), local.hour, local.minute)
        if key not in by_time:
            by_time[key] = price_at(periods, local)
        out.append(by_time[key])
    return out


def retail_from_spot(spot_eur_per_kwh: list[float], network_fee_eur_per_kwh: list[float], *, multiplier: float,
                     adder_eur_per_kwh: float, vat_pct: float) -> list[float]:
    """Dynamic retail price per slot: (spot x multiplier + adder + network fee) x (1 + VAT)."""
    vat = 1.0 + vat_pct / 100.0
    return [round((s * multiplier + adder_eur_per_kwh + f) * vat, 6)
            for s, f in zip(spot_eur_per_kwh, network_fee_eur_per_kwh, strict=True)]


def tariff_import_prices(tariff, start: datetime, slots: int, resolution_min: int, tz: str,
                         spot_eur_per_kwh: list[float] | None) -> list[float]:
    """A tariff's import price per slot; a dynamic tariff needs the spot price of those slots."""
    per_period = price_series(tariff.periods, start, slots, resolution_min, tz)
    if tariff.kind != "dynamic":
        return per_period
    if spot_eur_per_kwh is None:
        raise ValueError("A dynamic tariff needs the spot price.")
    return retail_from_spot(spot_eur_per_kwh, per_period, multiplier=float(tariff.spot_multiplier),
                            adder_eur_per_kwh=float(tariff.spot_adder_eur_per_kwh), vat_pct=float(tariff.vat_pct))


def tariff_export_prices(tariff, slots: int, spot_eur_per_kwh: list[float] | None) -> list[float]:
    """A tariff's export price per slot: flat, or spot x multiplier + adder."""
    if tariff.export_kind != "spot":
        return [float(tariff.export_price_eur_per_kwh)] * slots
    if spot_eur_per_kwh is None:
        raise ValueError("A spot-indexed export price needs the spot price.")
    m, a = float(tariff.export_spot_multiplier), float(tariff.export_spot_adder_eur_per_kwh)
    return [round(s * m + a, 6) for s in spot_eur_per_kwh]
