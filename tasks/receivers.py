"""Signal -> Celery message: the one place where the parts' announcements become tasks."""
from __future__ import annotations

import logging

from django.dispatch import receiver
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from energy_manager.errors import BrokerUnavailable
from flexibility.grid import signals as grid_signals
from flexibility.planning import signals as planning_signals
from hub_bridge import signals as hub_signals

from . import grid, hub, planning

log = logging.getLogger(__name__)


@receiver(planning_signals.run_enqueued, dispatch_uid="tasks.run_enqueued")
def send_solve(sender, run_pk: int, time_limit_s: float, **kwargs) -> None:
    """Time limits per message sit above the run's own solver budget.

    With the broker down the run stays committed as queued (the reaper re-sends it); the caller
    learns it through BrokerUnavailable (503 in the API).
    """
    try:
        planning.solve_run.apply_async(args=[run_pk], soft_time_limit=time_limit_s + 30, time_limit=time_limit_s + 60)
    except (KombuOperationalError, RedisConnectionError) as exc:
        log.warning("run %s queued, broker unreachable: %s", run_pk, exc)
        raise BrokerUnavailable(f"Run {run_pk} is recorded as queued but the task broker is unreachable; "
                                "it will be sent again automatically.") from exc


@receiver(planning_signals.replan_due, dispatch_uid="tasks.replan_due")
def send_replan(sender, home_id: int, reason: str, countdown_s: float, **kwargs) -> None:
    """Best effort: the change that asked is committed, and the rolling tick catches a lost re-plan up."""
    try:
        planning.reoptimize_home.apply_async(args=[home_id, reason], countdown=countdown_s or None)
    except (KombuOperationalError, RedisConnectionError) as exc:
        log.warning("re-plan of home %s not sent, broker unreachable: %s", home_id, exc)


@receiver(planning_signals.fleet_chunk_due, dispatch_uid="tasks.fleet_chunk_due")
def send_fleet_chunk(sender, fleet_pk: int, home_ids: list[int], **kwargs) -> None:
    planning.day_ahead_chunk.delay(fleet_pk, home_ids)


@receiver(planning_signals.rolling_chunk_due, dispatch_uid="tasks.rolling_chunk_due")
def send_rolling_chunk(sender, home_ids: list[int], now: str, **kwargs) -> None:
    planning.rolling_chunk.delay(home_ids, now)


@receiver(grid_signals.offer_build_due, dispatch_uid="tasks.offer_build_due")
def send_offer_build(sender, home_ids: list[int], delivery_day, **kwargs) -> None:
    grid.build_offers.delay(home_ids, delivery_day.isoformat())


@receiver(grid_signals.share_replan_due, dispatch_uid="tasks.share_replan_due")
def send_share_replan(sender, share_pks: list[int], **kwargs) -> None:
    grid.replan_shares.delay(share_pks)


@receiver(hub_signals.relay_requested, dispatch_uid="tasks.relay_requested")
def send_relay(sender, countdown_s: float | None, **kwargs) -> None:
    if countdown_s is None:
        hub.relay_commands.delay()
    else:
        hub.relay_commands.apply_async(countdown=countdown_s)
