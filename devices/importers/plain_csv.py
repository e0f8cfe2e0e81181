"""A plain CSV of signal values, one row per slot.

Columns (header required): `start` (ISO 8601 with its offset), `value`, and optionally
`area`, `kind` (import_price, export_price, co2_intensity; default import_price) and `unit`
(EUR/MWh, EUR/kWh or g/kWh; default EUR/MWh for prices, g/kWh for CO2). The resolution is
the most common step between rows of one (kind, area); missing rows split the series.
"""
from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import datetime

from .base import DocumentError, ParsedSeries, as_utc, check_aligned, check_resolution, regular_runs

SOURCE = "CSV file"
KINDS = {"import_price", "export_price", "co2_intensity"}
UNIT_FACTORS = {  # -> EUR/kWh or g/kWh
    ("import_price", "EUR/MWh"): 0.001, ("import_price", "EUR/kWh"): 1.0,
    ("export_price", "EUR/MWh"): 0.001, ("export_price", "EUR/kWh"): 1.0,
    ("co2_intensity", "g/kWh"): 1.0,
}
DEFAULT_UNITS = {"import_price": "EUR/MWh", "export_price": "EUR/MWh", "co2_intensity": "g/kWh"}


def parse_signal_csv(text: str, *, area: str | None = None, source: str = SOURCE) -> list[ParsedSeries]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    for required in ("start", "value"):
        if required not in header:
            raise DocumentError("line 1", f"missing column '{required}'")
    if "area" not in header and not area:
        raise DocumentError("line 1", "missing column 'area' (or give the area)")
    reader.fieldnames = header
    rows: dict[tuple[str, str], list[tuple[datetime, float, int]]] = defaultdict(list)
    for row in reader:
        line = reader.line_num
        kind = (row.get("kind") or "import_price").strip()
        if kind not in KINDS:
            raise DocumentError(f"line {line}, column kind", f"'{kind}' is not one of {sorted(KINDS)}")
        row_area = area or (row.get("area") or "").strip()
        if not row_area:
            raise DocumentError(f"line {line}, column area", "empty")
        unit = (row.get("unit") or DEFAULT_UNITS[kind]).strip()
        factor = UNIT_FACTORS.get((kind, unit))
        if factor is None:
            raise DocumentError(f"line {line}, column unit", f"unit '{unit}' does not fit {kind}")
        raw = (row.get("start") or "").strip()
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise DocumentError(f"line {line}, column start", f"'{raw}' is not a time with an offset")
        try:
            value = float((row.get("value") or "").strip())
        except ValueError:
            raise DocumentError(f"line {line}, column value", f"'{row.get('value')}' is not a number") from None
        if kind == "co2_intensity" and value < 0:
            raise DocumentError(f"line {line}, column value", "CO2 intensity must not be negative")
        rows[(kind, row_area)].append((as_utc(when), value * factor, line))
    if not rows:
        raise DocumentError("line 2", "no data rows")
    out: list[ParsedSeries] = []
    for (kind, row_area), items in sorted(rows.items()):
        items.sort()
        for a, b in zip(items, items[1:]):
            if a[0] == b[0]:
                raise DocumentError(f"line {b[2]}, column start", f"{kind} {row_area} at {b[0].isoformat()} appears twice")
        steps = [(b[0] - a[0]).total_seconds() / 60 for a, b in zip(items, items[1:])]
        resolution = check_resolution(Counter(steps).most_common(1)[0][0] if steps else 60.0, f"rows of {kind} {row_area}")
        for when, _, line in items:
            check_aligned(when, resolution, f"line {line}, column start")
        points = [(w, round(v, 6)) for w, v, _ in items]
        out.extend(regular_runs(points, resolution, kind=kind, area=row_area, source=source))
    return out
