"""ENTSO-E Transparency Platform day-ahead prices (Publication_MarketDocument, type A44).

The values are read by `entsoe-py`'s own parser (`entsoe.parsers.parse_prices`), which
also fills the positions an A03 curve leaves out. It does not check documents, so the
structure is checked first here, naming the element and its line when something is wrong.
Prices arrive in EUR/MWh and are stored in EUR/kWh.
"""
from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from datetime import datetime

import bs4
from entsoe.mappings import Area
from entsoe.parsers import parse_prices

from .base import DocumentError, ParsedSeries, check_resolution, regular_runs

SOURCE = "ENTSO-E Transparency Platform, day-ahead prices (A44)"
RESOLUTIONS = {"PT15M": 15, "PT30M": 30, "PT60M": 60}
CURVE_TYPES = {"A01", "A03"}


def area_for_eic(eic: str) -> str:
    """The project's area name for an EIC bidding-zone code ('10YPT-REN------W' -> 'PT')."""
    for area in Area:
        if area.code == eic:
            return area.name
    raise KeyError(eic)


def _where(tag: bs4.Tag, path: str) -> str:
    return f"element {path} (line {tag.sourceline})"


def _child(parent: bs4.Tag, name: str, path: str) -> bs4.Tag:
    tag = parent.find(name.lower(), recursive=False)
    if tag is None or not tag.get_text(strip=True):
        raise DocumentError(_where(parent, path), f"missing <{name}>")
    return tag


def _text(parent: bs4.Tag, name: str, path: str) -> str:
    return _child(parent, name, path).get_text(strip=True)


def _time(parent: bs4.Tag, name: str, path: str) -> datetime:
    tag = _child(parent, name, path)
    raw = tag.get_text(strip=True)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise DocumentError(_where(tag, f"{path}/{name}"), f"'{raw}' is not a UTC time like 2026-01-01T23:00Z")
    return when


def _check_structure(soup: bs4.BeautifulSoup) -> str:
    """Check what the values parser relies on; returns the document's one bidding zone (EIC)."""
    root = soup.find("publication_marketdocument")
    if root is None:
        ack = soup.find("acknowledgement_marketdocument")
        if ack is not None:
            reason = ack.find("text")
            raise DocumentError(_where(ack, "Acknowledgement_MarketDocument"),
                                "the platform sent no data: " + (reason.get_text(strip=True) if reason else "no reason"))
        raise DocumentError("root element", "expected <Publication_MarketDocument>")
    doc_type = _text(root, "type", "Publication_MarketDocument")
    if doc_type != "A44":
        raise DocumentError(_where(root.find("type"), "Publication_MarketDocument/type"),
                            f"document type {doc_type} is not A44 (day-ahead prices)")
    series = root.find_all("timeseries", recursive=False)
    if not series:
        raise DocumentError(_where(root, "Publication_MarketDocument"), "no <TimeSeries>")
    zones: set[str] = set()
    for i, ts in enumerate(series, start=1):
        path = f"TimeSeries[{i}]"
        zones.add(_text(ts, "in_Domain.mRID", path))
        currency = _text(ts, "currency_Unit.name", path)
        if currency != "EUR":
            raise DocumentError(_where(ts.find("currency_unit.name"), f"{path}/currency_Unit.name"),
                                f"currency {currency} is not EUR")
        unit = _text(ts, "price_Measure_Unit.name", path)
        if unit != "MWH":
            raise DocumentError(_where(ts.find("price_measure_unit.name"), f"{path}/price_Measure_Unit.name"),
                                f"unit {unit} is not MWH")
        curve = _text(ts, "curveType", path)
        if curve not in CURVE_TYPES:
            raise DocumentError(_where(ts.find("curvetype"), f"{path}/curveType"), f"curve type {curve} is not A01 or A03")
        periods = ts.find_all("period", recursive=False)
        if not periods:
            raise DocumentError(_where(ts, path), "no <Period>")
        for j, period in enumerate(periods, start=1):
            _check_period(period, f"{path}/Period[{j}]")
    if len(zones) > 1:
        raise DocumentError("element TimeSeries/in_Domain.mRID", f"one bidding zone per document, found {sorted(zones)}")
    return zones.pop()


def _check_period(period: bs4.Tag, path: str) -> None:
    interval = _child(period, "timeInterval", path)
    start = _time(interval, "start", f"{path}/timeInterval")
    end = _time(interval, "end", f"{path}/timeInterval")
    res_tag = _child(period, "resolution", path)
    res = res_tag.get_text(strip=True)
    if res not in RESOLUTIONS:
        raise DocumentError(_where(res_tag, f"{path}/resolution"), f"resolution {res} is not one of {list(RESOLUTIONS)}")
    slots = (end - start).total_seconds() / 60 / RESOLUTIONS[res]
    if end <= start or slots != int(slots):
        raise DocumentError(_where(interval, f"{path}/timeInterval"), "end must be a whole number of slots after start")
    points = period.find_all("point", recursive=False)
    if not points:
        raise DocumentError(_where(period, path), "no <Point>")
    for k, point in enumerate(points, start=1):
        ppath = f"{path}/Point[{k}]"
        pos_tag = _child(point, "position", ppath)
        try:
            position = int(pos_tag.get_text(strip=True))
        except ValueError:
            position = 0
        if not 1 <= position <= slots:
            raise DocumentError(_where(pos_tag, f"{ppath}/position"), f"position must be 1..{int(slots)}")
        amount = _child(point, "price.amount", ppath)
        try:
            float(amount.get_text(strip=True).replace(",", ""))
        except ValueError:
            raise DocumentError(_where(amount, f"{ppath}/price.amount"),
                                f"'{amount.get_text(strip=True)}' is not a number") from None


def parse_entsoe_day_ahead(text: str, *, area: str | None = None, source: str = SOURCE) -> list[ParsedSeries]:
    """Import prices (EUR/kWh) from an A44 document; `area` overrides the zone name found in it."""
    try:
        ET.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except ET.ParseError as exc:
        line, column = exc.position
        raise DocumentError(f"line {line}, column {column}", "not well-formed XML") from None
    with warnings.catch_warnings():
        # entsoe-py reads with the lenient HTML parser (lower-cased names); well-formedness was checked above.
        warnings.simplefilter("ignore", bs4.XMLParsedAsHTMLWarning)
        soup = bs4.BeautifulSoup(text, "html.parser")
        eic = _check_structure(soup)
        by_resolution = parse_prices(text)
    if area is None:
        try:
            area = area_for_eic(eic)
        except KeyError:
            raise DocumentError("element TimeSeries/in_Domain.mRID", f"unknown bidding zone {eic}; give the area") from None
    out: list[ParsedSeries] = []
    covered: list[tuple[datetime, datetime]] = []
    for freq in ("15min", "30min", "60min"):  # finest first: a coarser curve only fills what is left
        values = by_resolution.get(freq)
        if values is None or values.empty:
            continue
        values = values[~values.index.duplicated(keep="first")].sort_index()
        minutes = check_resolution(int(freq.removesuffix("min")), "element Period/resolution")
        points = [(t.to_pydatetime(), round(float(v) / 1000.0, 6)) for t, v in values.items()]
        for s in regular_runs(points, minutes, kind="import_price", area=area, source=source):
            if any(s.start < b and a < s.end for a, b in covered):
                continue
            covered.append((s.start, s.end))
            out.append(s)
    out.sort(key=lambda s: s.start)
    return out
