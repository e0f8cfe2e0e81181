"""Hub relay tasks (queue `hub`): publish the command outbox to hubs over MQTT."""
from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="tasks.hub.relay_commands", ignore_result=True, acks_late=True)
def relay_commands() -> dict:
    """One relay pass: expire overdue commands, publish due ones, schedule the next check."""
    from hub_bridge import relay, services

    services.clear_relay_kick()  # before reading the outbox: a command committed later kicks again
    result = relay.relay_pass()
    if result.next_check_s is not None:
        services.schedule_relay_check(result.next_check_s)
    if result.published or result.expired or result.unconfirmed:
        log.info("relay pass: published=%s unconfirmed=%s expired=%s", result.published, result.unconfirmed,
                 result.expired)
    return {"published": result.published, "unconfirmed": result.unconfirmed, "expired": result.expired}
