"""CO2 intensity in the JSON shape of Electricity Maps' `/v3/carbon-intensity/history` answer.

`{"zone": "PT", "history": [{"zone", "carbonIntensity" (gCO2eq/kWh), "datetime", ...}]}`.
An entry whose carbonIntensity is null is a gap: the series splits around it.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from .base import DocumentError, ParsedSeries, as_utc, check_aligned, check_resolution, regular_runs

SOURCE = "Electricity Maps carbon-intensity history"


def _datetime(raw, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise DocumentError(where, f"'{raw}' is not a time with a zone, like 2026-03-01T00:00:00.000Z")
    return as_utc(when)


def parse_electricitymaps_history(text: str, *, area: str | None = None, source: str = SOURCE) -> list[ParsedSeries]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"line {exc.lineno}, column {exc.colno}", f"not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("history"), list):
        raise DocumentError("history", "expected an object with a 'history' list")
    zone = area or doc.get("zone")
    if not isinstance(zone, str) or not zone:
        raise DocumentError("zone", "missing zone (or give the area)")
    entries: list[tuple[datetime, float | None]] = []
    for i, entry in enumerate(doc["history"]):
        where = f"history[{i}]"
        if not isinstance(entry, dict):
            raise DocumentError(where, "expected an object")
        if area is None and entry.get("zone", zone) != zone:
            raise DocumentError(f"{where}.zone", f"zone {entry.get('zone')} differs from the document's {zone}")
        when = _datetime(entry.get("datetime"), f"{where}.datetime")
        value = entry.get("carbonIntensity")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise DocumentError(f"{where}.carbonIntensity", f"{value!r} is not a non-negative number")
        entries.append((when, None if value is None else float(value)))
    if not entries:
        raise DocumentError("history", "empty")
    entries.sort(key=lambda e: e[0])
    steps = [(b[0] - a[0]).total_seconds() / 60 for a, b in zip(entries, entries[1:])]
    step = Counter(steps).most_common(1)[0][0] if steps else 60.0
    if 0 in steps:
        raise DocumentError("history", "two entries share a datetime")
    resolution = check_resolution(step, "history[].datetime")
    for i, (when, _) in enumerate(entries):
        check_aligned(when, resolution, f"history[{i}].datetime")
    points = [(w, round(v, 3)) for w, v in entries if v is not None]
    return regular_runs(points, resolution, kind="co2_intensity", area=zone, source=source)
