"""OMIE day-ahead marginal prices (files `marginalpdbc_YYYYMMDD.1`) for Portugal and Spain.

Layout (OMIE's public file model): a header line `MARGINALPDBC;`, then one line per
period `year;month;day;period;price Portugal;price Spain;` in EUR/MWh, and a closing `*`.
Period 1 starts at 00:00 Spanish peninsular time (Europe/Madrid) and periods follow each
other in real time: 23/24/25 hourly periods until 30 Sep 2025, 92/96/100 quarter-hours
since. Prices are stored in EUR/kWh.
"""
from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, timedelta

from .base import DocumentError, ParsedSeries, as_utc, regular_runs

SOURCE = "OMIE day-ahead marginal prices"
MARKET_ZONE = zoneinfo.ZoneInfo("Europe/Madrid")
AREAS = ("PT", "ES")  # column 5, column 6


def _day_length_hours(day: date) -> float:
    start = datetime(day.year, day.month, day.day, tzinfo=MARKET_ZONE)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=MARKET_ZONE)
    return (as_utc(end) - as_utc(start)).total_seconds() / 3600


def parse_omie_marginal_prices(text: str, *, source: str = SOURCE) -> list[ParsedSeries]:
    """Portugal and Spain price series from one or more days of a marginalpdbc file."""
    lines = text.splitlines()
    if not lines or not lines[0].strip().upper().startswith("MARGINALPDBC"):
        raise DocumentError("line 1", "expected the header 'MARGINALPDBC;'")
    days: dict[date, dict[int, tuple[float, float]]] = defaultdict(dict)
    closed = False
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line:
            continue
        if line == "*":
            closed = True
            continue
        if closed:
            raise DocumentError(f"line {number}", "data after the closing '*'")
        cells = line.rstrip(";").split(";")
        if len(cells) != 6:
            raise DocumentError(f"line {number}", f"expected 6 fields year;month;day;period;PT;ES, found {len(cells)}")
        try:
            day = date(int(cells[0]), int(cells[1]), int(cells[2]))
        except ValueError:
            raise DocumentError(f"line {number}", f"'{';'.join(cells[:3])}' is not a date") from None
        try:
            period = int(cells[3])
        except ValueError:
            raise DocumentError(f"line {number}, field period", f"'{cells[3]}' is not a whole number") from None
        prices = []
        for column, area in zip((4, 5), AREAS):
            try:
                prices.append(float(cells[column].replace(",", ".")))
            except ValueError:
                raise DocumentError(f"line {number}, field price {area}", f"'{cells[column]}' is not a number") from None
        if period in days[day]:
            raise DocumentError(f"line {number}, field period", f"period {period} of {day} appears twice")
        days[day][period] = (prices[0], prices[1])
    if not days:
        raise DocumentError("line 2", "no price lines")
    points: dict[str, list[tuple[datetime, float]]] = {area: [] for area in AREAS}
    resolution = None
    for day in sorted(days):
        periods = days[day]
        hours = _day_length_hours(day)
        count = len(periods)
        if count == hours:
            minutes = 60
        elif count == hours * 4:
            minutes = 15
        else:
            raise DocumentError(f"day {day.isoformat()}",
                                f"{count} periods: a {hours:g}-hour day has {hours:g} hourly or {hours * 4:g} quarter-hour periods")
        if sorted(periods) != list(range(1, count + 1)):
            raise DocumentError(f"day {day.isoformat()}", f"periods must run 1..{count} without gaps")
        if resolution not in (None, minutes):
            raise DocumentError(f"day {day.isoformat()}", "hourly and quarter-hour days mixed in one file")
        resolution = minutes
        start = as_utc(datetime(day.year, day.month, day.day, tzinfo=MARKET_ZONE))
        for period in range(1, count + 1):
            when = start + timedelta(minutes=minutes * (period - 1))
            for area, price in zip(AREAS, periods[period]):
                points[area].append((when, round(price / 1000.0, 6)))
    out: list[ParsedSeries] = []
    for area in AREAS:
        out.extend(regular_runs(points[area], resolution, kind="import_price", area=area, source=source))
    return out
