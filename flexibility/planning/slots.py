"""The planning grid: 15-minute slots aligned to the epoch, horizons of at most 72 h.

The one place for the slot length and the horizon rules; the optimizer validates the same
72 h limit on every problem (flexibility.optimizer.problem.MAX_HORIZON_H is its source).
Grid offers and activations and the FlexiHome-compatible API use these slots too.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Optional


from devices.models import Home
from flexibility.optimizer.problem import MAX_HORIZON_H
from energy_manager import clock

RESOLUTION_MIN = 15
SLOT = timedelta(minutes=RESOLUTION_MIN)
DEFAULT_HORIZON_H = 24
MAX_HORIZON = timedelta(hours=MAX_HORIZON_H)


def floor_to_slot(when: datetime, resolution_min: int = RESOLUTION_MIN) -> datetime:
    """The start of the absolute slot containing `when` (slots are aligned to the epoch)."""
    seconds = resolution_min * 60
    ts = int(when.timestamp())
    return datetime.fromtimestamp(ts - ts % seconds, tz=dt_timezone.utc)


def slot_count(start: datetime, end: datetime) -> int:
    """Whole slots in [start, end)."""
    return int((end - start) // SLOT)


def default_horizon(now: Optional[datetime] = None, hours: float = DEFAULT_HORIZON_H) -> tuple[datetime, datetime]:
    """From the current slot for `hours` (a whole number of slots)."""
    start = floor_to_slot(now or clock.now())
    slots = int(round(hours * 60 / RESOLUTION_MIN))
    return start, start + SLOT * slots


def ceil_to_slot(when: datetime) -> datetime:
    start = floor_to_slot(when)
    return start if start == when else start + SLOT


def covering_horizon(now: datetime, requests_end: Optional[datetime],
                     base_end: Optional[datetime] = None) -> tuple[datetime, datetime]:
    """From the current slot to the later of `base_end` (default: the default horizon) and the end of the last
    open request, at most 72 h."""
    start, end = default_horizon(now)
    end = base_end or end
    if requests_end is not None:
        end = max(end, ceil_to_slot(requests_end))
    return start, min(end, start + MAX_HORIZON)


def local_day_horizon(home: Home, day: date) -> tuple[datetime, datetime]:
    """Local midnight to next local midnight of `day` in the home's zone (92/96/100 quarter-hours)."""
    return home.local_day_bounds(day)
