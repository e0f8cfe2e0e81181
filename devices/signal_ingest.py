"""Storing many signal series at once: the write path of the ingestion API, the importers and
the forecasts.

A request is all or nothing: every series is validated first (errors name `series[i].field`),
then one transaction replaces, per scope (kind, area, home, device), the stored series that
overlap the new ones and inserts them in bulk. Sending the same series twice stores it once,
so imports and API clients may retry freely.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Model

from .importers import PARSERS, DocumentError, ParsedSeries, detect_format
from .importers.base import MAX_SERIES_SPAN
from .models import HOME_SIGNALS, SIGNAL_UNITS, SignalKind, SignalSeries
from .services import _reoptimize_on_commit, full_clean

Scope = tuple[str, str, int | None, int | None]  # kind, area, home id, device id


@dataclass(frozen=True)
class StoreResult:
    created: int
    replaced: int
    rows: list[SignalSeries] = field(default_factory=list, compare=False, repr=False)  # the series stored


def _scope(s: SignalSeries) -> Scope:
    return (s.kind, s.area, s.home_id, s.device_id)


def _lock_scopes(scopes: Iterable[Scope]) -> None:
    """Serialize concurrent writers of one scope (two identical requests must not both insert)."""
    if connection.vendor != "postgresql":
        return  # SQLite (local demo) serializes writers anyway
    keys = sorted({int.from_bytes(hashlib.blake2b(repr(s).encode(), digest_size=8).digest(), "big", signed=True)
                   for s in scopes})
    if not keys:
        return
    with connection.cursor() as cursor:  # one statement, the locks taken in key order (no deadlock)
        cursor.execute("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) s",
                       [keys])


def validate_series(items: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> list[SignalSeries]:
    """Unsaved, validated SignalSeries for `items`; one ValidationError names every bad field
    (`names[i]`, default "series[i]", prefixes the fields of item i)."""
    errors: dict[str, list] = {}
    rows: list[SignalSeries] = []
    names = list(names) if names is not None else [f"series[{i}]" for i in range(len(items))]
    for i, item in enumerate(items):
        s = SignalSeries(**item)
        # A home or device given as a saved row (a caller that read it, e.g. forecasting) needs no query to
        # check it exists: the foreign key still refuses a row deleted meanwhile when the series is inserted.
        known = [name for name in ("home", "device") if isinstance(item.get(name), Model) and item[name].pk]
        try:
            full_clean(s, exclude=known or None, prefix=names[i])
            if s.device_id and s.home_id and s.device.home_id != s.home_id:
                raise ValidationError({f"{names[i]}.device": "The device belongs to another home."})
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
        s.unit = SIGNAL_UNITS[SignalKind(s.kind)] if s.kind in SignalKind.values else ""
        rows.append(s)
    by_scope: dict[Scope, list[tuple[int, SignalSeries]]] = defaultdict(list)
    for i, s in enumerate(rows):
        if not any(k.startswith(names[i] + ".") for k in errors) and s.start is not None:
            by_scope[_scope(s)].append((i, s))
    for members in by_scope.values():
        members.sort(key=lambda m: m[1].start)
        for (i, a), (j, b) in zip(members, members[1:]):
            if b.start < a.end and names[i] != names[j]:
                errors.setdefault(f"{names[j]}.start", []).append(
                    f"Overlaps {names[i]} of the same kind and scope in this request.")
    if errors:
        raise ValidationError(errors)
    return rows


def split_weeks(items: Sequence[Mapping[str, Any]], item_names: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Series longer than a week -> week-long pieces (a stored series holds at most a week), with
    the name of the item each piece came from, so errors name what the client sent."""
    out: list[dict[str, Any]] = []
    names: list[str] = []
    for name, item in zip(item_names, items, strict=True):
        values, res = item.get("values"), item.get("resolution_minutes")
        per_week = MAX_SERIES_SPAN // timedelta(minutes=res) if isinstance(res, int) and res > 0 else 0
        if not isinstance(values, list) or not per_week or len(values) <= per_week or item.get("start") is None:
            out.append(dict(item))
            names.append(name)
            continue
        for k in range(0, len(values), per_week):
            out.append({**item, "values": values[k:k + per_week],
                        "start": item["start"] + timedelta(minutes=res * k)})
            names.append(name)
    return out, names


@transaction.atomic
def ingest(items: Sequence[Mapping[str, Any]], names: Sequence[str], *, validate_only: bool = False) -> StoreResult:
    """The ingestion API's write: series of any length, all or nothing, errors named `names[i]`.

    `validate_only`: check (raising ValidationError) without storing, when the request already failed.
    """
    pieces, piece_names = split_weeks(items, names)
    if validate_only:
        validate_series(pieces, piece_names)
        return StoreResult(created=0, replaced=0)
    return store_series(pieces, names=piece_names)


@transaction.atomic
def store_series(items: Sequence[Mapping[str, Any]], *, announce: bool = True,
                 names: Sequence[str] | None = None) -> StoreResult:
    """Validate and store `items` (SignalSeries fields: kind, start, resolution_minutes, values,
    area, home, device, source), replacing overlapping series of the same scope.

    `announce`: forecasts of a home ask for the home to be planned again (a forecast written by
    the planner's own forecasting step passes False).
    """
    rows = validate_series(items, names)
    by_scope: dict[Scope, list[SignalSeries]] = defaultdict(list)
    for s in rows:
        by_scope[_scope(s)].append(s)
    _lock_scopes(by_scope)
    stale = _overlapped(by_scope)
    if stale:
        SignalSeries.objects.filter(pk__in=stale).delete()
    SignalSeries.objects.bulk_create(rows, batch_size=500)
    if announce:
        for home_id in sorted({s.home_id for s in rows if s.home_id and s.kind in HOME_SIGNALS}):
            _reoptimize_on_commit(home_id, "forecast_replaced")
    return StoreResult(created=len(rows), replaced=len(stale), rows=rows)


def _overlapped(by_scope: dict[Scope, list[SignalSeries]]) -> list[int]:
    """Stored series of the same scopes that overlap the new ones, read with one query (two when
    both homes' and areas' series are written)."""
    if not by_scope:
        return []
    rows = [s for members in by_scope.values() for s in members]
    lo, hi = min(s.start for s in rows), max(s.end for s in rows)
    recent = dict(kind__in={kind for kind, _, _, _ in by_scope}, start__lt=hi, start__gt=lo - timedelta(days=7))
    homes = {home_id for _, _, home_id, _ in by_scope if home_id is not None}
    areas = {area for _, area, home_id, _ in by_scope if home_id is None}
    fields = ("id", "kind", "area", "home_id", "device_id", "start", "resolution_minutes", "values")
    candidates = []
    if homes:
        candidates += SignalSeries.objects.filter(home_id__any=homes, **recent).only(*fields)
    if areas:
        candidates += SignalSeries.objects.filter(home__isnull=True, area__in=areas, **recent).only(*fields)
    spans = {scope: sorted((s.start, s.end) for s in members) for scope, members in by_scope.items()}
    return [old.pk for old in candidates
            if any(old.start < b and a < old.end for a, b in spans.get(_scope(old), ()))]


def parsed_to_items(parsed: Iterable[ParsedSeries]) -> list[dict[str, Any]]:
    return [{"kind": p.kind, "area": p.area, "start": p.start, "resolution_minutes": p.resolution_minutes,
             "values": list(p.values), "source": p.source[:120]} for p in parsed]


def import_document(text: str, *, name: str = "", fmt: str | None = None, area: str | None = None) -> StoreResult:
    """Parse one document and store what it holds (all or nothing). Raises DocumentError or ValidationError."""
    fmt = fmt or detect_format(name, text)
    parser = PARSERS[fmt]
    parsed = parser(text, area=area) if area and fmt != "omie" else parser(text)
    if not parsed:
        raise DocumentError(name or "document", "holds no values")
    return store_series(parsed_to_items(parsed))


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    result: StoreResult | None
    error: str | None


def import_path(path: Path, *, fmt: str | None = None, area: str | None = None, move: bool = False) -> list[FileOutcome]:
    """Import a file, or every file of a folder (sorted, one transaction per file).

    `move`: files imported go to `imported/`, rejected ones to `rejected/` beside a `.error`
    note, so a periodic reader of a drop folder reads each file once.
    """
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    outcomes: list[FileOutcome] = []
    for file in files:
        try:
            result = import_document(file.read_text(encoding="utf-8-sig"), name=file.name, fmt=fmt, area=area)
            outcomes.append(FileOutcome(file, result, None))
        except (DocumentError, ValidationError, UnicodeDecodeError) as exc:
            outcomes.append(FileOutcome(file, None, f"{file.name}: {_one_line(exc)}"))
        if move and path.is_dir():
            _file_away(file, outcomes[-1])
    return outcomes


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(exc.message_dict.items()))
    return str(exc)


def _file_away(file: Path, outcome: FileOutcome) -> None:
    target = file.parent / ("imported" if outcome.error is None else "rejected")
    target.mkdir(exist_ok=True)
    file.rename(target / file.name)
    if outcome.error:
        (target / f"{file.name}.error").write_text(outcome.error + "\n")
