"""Hub relay tasks (queue `hub`): publish the command outbox to hubs over MQTT."""
from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings

from hub_bridge import relay, services

log = logging.getLogger(__name__)


@shared_task(name="tasks.hub.relay_commands", ignore_result=True, acks_late=True)
def relay_commands() -> dict:
    """Relay passes: expire overdue commands, publish due ones, schedule the next check.

    After a pass that did something the task lingers (MQTT_RELAY_LINGER_S), polling the outbox
    every few milliseconds with the kick flag held, so a steady stream of commands costs no
    Celery round trip per commit; it clears the flag and makes one last pass before leaving.
    """
    totals = {"published": 0, "unconfirmed": 0, "expired": 0}
    linger = settings.MQTT_RELAY_LINGER_S if services.hold_relay_kick() else 0.0
    last_work = time.monotonic()
    while linger > 0:
        result = relay.relay_pass()
        _add(totals, result)
        if result.published or result.expired:
            last_work = time.monotonic()
        if time.monotonic() - last_work >= linger or result.unconfirmed:
            break
        if not result.published:
            time.sleep(0.01)
        services.hold_relay_kick()
    services.clear_relay_kick()  # before reading the outbox: a command committed later kicks again
    result = relay.relay_pass()
    _add(totals, result)
    if result.next_check_s is not None:
        services.schedule_relay_check(result.next_check_s)
    if any(totals.values()):
        log.info("relay: published=%(published)s unconfirmed=%(unconfirmed)s expired=%(expired)s", totals)
    return totals


@shared_task(name="tasks.hub.relay_sweep", ignore_result=True, acks_late=True)
def relay_sweep() -> dict:
    """Beat, every 30 s (settings.PERIODIC_TASKS): the safety net under the relay's own follow-up tasks.

    Those live only in Redis; if it was flushed, resends and expiry would wait for the next new
    command. Each sweep expires overdue commands (one notification per home), fails commands accepted
    but never reported, and publishes queued and unacknowledged commands of online hubs.
    """
    totals = {"published": 0, "unconfirmed": 0, "expired": 0, "failed": services.fail_unreported_commands()}
    if not settings.MQTT_URL:  # bridge off: nothing can be sent, expiry still applies
        totals["expired"] = services.expire_overdue_commands()
        return totals
    result = relay.relay_pass()
    _add(totals, result)
    if result.next_check_s is not None:
        services.schedule_relay_check(result.next_check_s)
    if any(totals.values()):
        log.info("relay sweep: published=%(published)s unconfirmed=%(unconfirmed)s expired=%(expired)s "
                 "failed=%(failed)s", totals)
    return totals


def _add(totals: dict, result) -> None:
    totals["published"] += result.published
    totals["unconfirmed"] += result.unconfirmed
    totals["expired"] += result.expired
