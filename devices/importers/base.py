"""What every importer returns, and the one error type they raise."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

# A stored series holds at most a week (devices.models.SignalSeries): longer runs are split.
MAX_SERIES_SPAN = timedelta(days=7)
RESOLUTIONS_MIN = (5, 15, 30, 60)


class DocumentError(ValueError):
    """A document that cannot be imported; `where` names the line or element at fault."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ParsedSeries:
    """A regular series: values[i] holds for [start + i*resolution, start + (i+1)*resolution)."""

    kind: str
    area: str
    start: datetime
    resolution_minutes: int
    values: list[float] = field(repr=False)
    source: str = ""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.resolution_minutes * len(self.values))


def regular_runs(points: list[tuple[datetime, float]], resolution_minutes: int, *, kind: str, area: str,
                 source: str) -> list[ParsedSeries]:
    """Sorted (time, value) points -> series of consecutive slots, split at gaps and at one week."""
    step = timedelta(minutes=resolution_minutes)
    max_len = int(MAX_SERIES_SPAN / step)
    out: list[ParsedSeries] = []
    run_start: datetime | None = None
    run: list[float] = []
    previous: datetime | None = None
    for when, value in points:
        if run and (when != previous + step or len(run) == max_len):
            out.append(ParsedSeries(kind, area, run_start, resolution_minutes, run, source))
            run = []
        if not run:
            run_start = when
        run.append(value)
        previous = when
    if run:
        out.append(ParsedSeries(kind, area, run_start, resolution_minutes, run, source))
    return out


def as_utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc)


def check_resolution(minutes: float, where: str) -> int:
    if minutes not in RESOLUTIONS_MIN:
        raise DocumentError(where, f"resolution of {minutes:g} min is not one of {list(RESOLUTIONS_MIN)} min")
    return int(minutes)


def check_aligned(when: datetime, resolution_minutes: int, where: str) -> None:
    ts = int(when.timestamp())
    if ts % 60 or (ts // 60) % resolution_minutes:
        raise DocumentError(where, f"{when.isoformat()} is not aligned to {resolution_minutes}-minute slots")
