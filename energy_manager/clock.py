"""The one clock the whole stack reads for "now" in the energy domain (slots, horizons, plans, command
windows, forecasts, the rolling tick, the hub simulator, the listener's timestamps).

Production reads the wall clock. A simulation (`python -m bench.closed_loop` and its test) sets
HEMS_SIMULATED_CLOCK to a Redis URL in every process it starts (workers, listener, itself); `now()`
then returns the simulated time its driver stored there with `set_now`. That time moves only when
the driver advances it, so a week of slots runs as fast as the stack can follow, and every process
agrees on the slot it is in. Settings refuse HEMS_SIMULATED_CLOCK when DJANGO_ENV=production.

Record-keeping timestamps (created_at, queued_at, started_at: when a row was written, how long a
solve took) stay on the wall clock: they order rows and measure work, not energy.

Pure Python (redis-py, no Django), so the hub simulator reads the same clock.
"""
from __future__ import annotations

import functools
import os
from datetime import datetime, timezone
from typing import Optional

ENV = "HEMS_SIMULATED_CLOCK"
KEY = "hems:simulated-clock:epoch"

_override: Optional[str] = None  # set by `use` (a test process); else the environment decides


def source() -> str:
    """The Redis URL of the simulated clock, or "" for the wall clock."""
    return _override if _override is not None else os.environ.get(ENV, "")


def simulated() -> bool:
    return bool(source())


@functools.lru_cache(maxsize=4)
def _redis_for(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5)  # its pool is reused across calls (and reset after fork)


def _redis():
    return _redis_for(source())


def now() -> datetime:
    """Aware UTC now: the wall clock, or the simulation's time when one is configured."""
    if not simulated():
        return datetime.now(timezone.utc)
    value = _redis().get(KEY)
    if value is None:
        raise RuntimeError(f"{ENV} is set but the simulated clock has not been started (set_now)")
    return datetime.fromtimestamp(float(value), timezone.utc)


def set_now(when: datetime) -> None:
    """The simulation's driver moves the clock (every process sees it at its next `now()`)."""
    if not simulated():
        raise RuntimeError(f"set_now needs a simulated clock ({ENV} or use())")
    if when.tzinfo is None:
        raise ValueError("the simulated time must be timezone-aware")
    _redis().set(KEY, repr(when.timestamp()))


def use(url: Optional[str]) -> None:
    """Point this process at a simulated clock (`url`), or back at what the environment says (None)."""
    global _override
    _override = url
