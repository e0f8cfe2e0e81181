"""Workers on other hosts: two Celery workers in their own network namespaces reach PostgreSQL,
Redis and Mosquitto over veth links only, and share a day-ahead fleet run and a relay burst."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tests.factories.homes import seed_area_signals, seed_standard_home
from devices.models import DeviceType, Hub
from flexibility.planning import services
from flexibility.planning.models import FINAL_RUN_STATUSES, OptimizationRun, RunStatus, Schedule
from hub_bridge.models import CommandState, HubCommand
from hub_bridge.provision import spec_for_hub
from hub_bridge.services import enqueue_command, issue_hub_credentials
from tests.plugins.celery_worker import broker_url, database_url
from tests.plugins.mqtt import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

HOMES = 12
LISBON = ZoneInfo("Europe/Lisbon")


def test_fleet_run_and_relay_burst_complete_across_two_hosts(network_host, mqtt_broker, hub_env,
                                                             sync_broker_credentials, hub_listener, celery_worker,
                                                             simulated_hub):
    hosts = [network_host(), network_host()]
    for host in hosts:  # the services are not on the host's own loopback: only the link reaches them
        assert not host.reaches("127.0.0.1", 5432)

    delivery_day = (timezone.now().astimezone(LISBON) + timedelta(days=1)).date()
    day_start = datetime(delivery_day.year, delivery_day.month, delivery_day.day, tzinfo=LISBON)
    now = day_start.astimezone(dt_timezone.utc)
    owner = get_user_model().objects.create_user("hosts-owner", "hosts@example.com", "pw-hosts-owner-2026")
    seed_area_signals(now - timedelta(hours=1))
    homes = [seed_standard_home(owner, f"host home {i}", now, hub=True, automatic=True) for i in range(HOMES)]
    specs = []
    for home in homes:
        hub = Hub.objects.get(home=home)
        specs.append(spec_for_hub(hub, issue_hub_credentials(hub)))
    sync_broker_credentials()

    from kombu import pools

    pools.reset()
    workers = [
        celery_worker(queues=["optimization", "default", "hub"], concurrency=1, name=f"host{i}",
                      command_prefix=host.prefix,
                      env={**hub_env, "LOG_LEVEL": "INFO", "DATABASE_URL": host.url(database_url()),
                           "CELERY_BROKER_URL": host.url(broker_url()), "MQTT_URL": host.url(hub_env["MQTT_URL"])})
        for i, host in enumerate(hosts)
    ]
    hubs = [simulated_hub(spec) for spec in specs]
    wait_for(lambda: Hub.objects.filter(home__in=homes, online=True).count() == HOMES, 30, "the hubs online")

    # The day-ahead fan-out: twelve one-home chunk tasks, taken by whichever host is free.
    fleet = services.start_day_ahead(delivery_day, chunk_size=1, home_ids=[h.pk for h in homes])
    runs = OptimizationRun.objects.filter(fleet_run=fleet)
    wait_for(lambda: runs.filter(status__in=FINAL_RUN_STATUSES).count() == HOMES, 240, "every day-ahead run final")
    rows = list(runs.values_list("home_id", "status", "attempts", "error"))
    assert sorted(h for h, *_ in rows) == sorted(h.pk for h in homes), "one run per home, none twice"
    assert all(status == RunStatus.SUCCEEDED for _, status, _, _ in rows), rows
    assert all(attempts == 1 for _, _, attempts, _ in rows), "a run was solved twice"
    assert Schedule.objects.filter(run__in=runs).count() == HOMES
    for worker in workers:  # each host planned at least one chunk (chunks are solved inside their task)
        assert any("tasks.periodic.day_ahead_chunk[" in line and " succeeded in " in line
                   for line in worker.log().splitlines()), f"{worker.hostname} planned nothing:\n{worker.log()[-3000:]}"

    # Their commands reach the hubs (accepted now, executed at their start tomorrow), each once.
    fleet_commands = HubCommand.objects.filter(run__in=runs)
    assert fleet_commands.count() >= HOMES
    wait_for(lambda: not fleet_commands.exclude(state__in=[CommandState.ACKNOWLEDGED, CommandState.EXECUTED]).exists(),
             90, "the fleet's commands acknowledged")
    accepted = Counter(cid for hub in hubs for cid in hub.outcomes)
    assert all(accepted[str(c)] == 1 for c in fleet_commands.values_list("command_id", flat=True))

    # A relay burst: every command in one transaction, relayed from the hosts, executed exactly once.
    at = timezone.now()
    with transaction.atomic():
        burst = [enqueue_command(ev, "set_ev_power", {"power_w": 1000 + 10 * i, "until": (at + timedelta(hours=1)).isoformat()},
                                 at, at + timedelta(minutes=10))
                 for ev in [h.devices.get(device_type=DeviceType.EV_CHARGER) for h in homes] for i in range(10)]
    ids = [c.pk for c in burst]
    wait_for(lambda: HubCommand.objects.filter(pk__in=ids, state=CommandState.EXECUTED).count() == len(ids), 90,
             "the burst executed")
    executions = Counter()
    for hub in hubs:
        executions.update(hub.executions)
    assert [executions[str(c.command_id)] for c in burst] == [1] * len(burst), "a command was executed twice"
    # The relay task that published them ran on a host (it lingers a moment after its last command).
    wait_for(lambda: any("tasks.hub.relay_commands[" in line and " succeeded in " in line
                         for w in workers for line in w.log().splitlines()), 30, "a host's relay task to finish")
