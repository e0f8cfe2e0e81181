"""The relay sweep (beat, every 30 s): the outbox keeps moving when the relay's Redis follow-ups are lost.

Commands are written straight to the outbox here, so no relay task is pending for them: exactly the
state a Redis flush leaves behind. Each sweep is sent as beat sends it, to the real `hub` worker.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import Device, Hub
from flexibility.notifications.models import Notification
from hub_bridge.models import CommandState, HubCommand
from hub_bridge.provision import provision_simulated_hubs
from tests.plugins.mqtt import wait_for


def _outbox_row(device: Device, state: str, expires_in: timedelta, **fields) -> HubCommand:
    now = timezone.now()
    return HubCommand.objects.create(hub=device.hub, device=device, kind="set_battery_setpoint",
                                     parameters={"power_w": 500}, not_before=now - timedelta(hours=1),
                                     expires_at=now + expires_in, state=state, **fields)


def _state(command: HubCommand) -> str:
    return HubCommand.objects.values_list("state", flat=True).get(pk=command.pk)


def _sweeps_done(worker) -> int:
    return sum("tasks.hub.relay_sweep[" in line and "succeeded" in line for line in worker.log().splitlines())


@pytest.mark.django_db
def test_beat_row_runs_the_sweep_every_30_s_on_the_hub_queue():
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(task="tasks.hub.relay_sweep")
    assert (row.interval.every, row.interval.period, row.queue, row.enabled) == (30, "seconds", "hub", True)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_sweep_sends_resends_expires_once_and_fails_unreported(sync_broker_credentials, hub_listener, hub_relay,
                                                                simulated_hub):
    from tasks.hub import relay_sweep

    spec = provision_simulated_hubs(1)[0]
    sync_broker_credentials()
    hub = simulated_hub(spec)
    wait_for(lambda: Hub.objects.filter(hub_id=spec.hub_id, online=True).exists(), message="hub online")
    battery = Device.objects.get(serial_number=spec.devices[2]["device_serial"])
    queued = _outbox_row(battery, CommandState.QUEUED, timedelta(minutes=10))
    lost = _outbox_row(battery, CommandState.SENT, timedelta(minutes=10), send_count=1,
                       sent_at=timezone.now() - timedelta(minutes=5))  # published, but the hub never got it
    overdue = _outbox_row(battery, CommandState.QUEUED, -timedelta(seconds=1))
    unreported = _outbox_row(battery, CommandState.ACKNOWLEDGED, -timedelta(minutes=6),
                             acknowledged_at=timezone.now() - timedelta(minutes=20))  # past expiry + 300 s grace
    recent = _outbox_row(battery, CommandState.ACKNOWLEDGED, -timedelta(minutes=1),
                         acknowledged_at=timezone.now() - timedelta(minutes=2))  # still within the grace

    relay_sweep.delay()
    wait_for(lambda: _state(queued) == _state(lost) == CommandState.EXECUTED, timeout=30,
             message=f"queued and unacknowledged commands executed\n{hub_relay.log()}")
    assert HubCommand.objects.get(pk=lost.pk).send_count == 2, "the lost command was sent again"
    assert hub.executions[str(queued.command_id)] == hub.executions[str(lost.command_id)] == 1
    assert _state(overdue) == CommandState.EXPIRED
    assert str(overdue.command_id) not in hub.received, "an expired command is never sent"
    failed = HubCommand.objects.get(pk=unreported.pk)
    assert failed.state == CommandState.FAILED and failed.finished_at is not None
    assert failed.message == "The hub accepted the command but never reported its execution."
    assert _state(recent) == CommandState.ACKNOWLEDGED

    relay_sweep.delay()  # a later sweep notifies nobody again
    wait_for(lambda: _sweeps_done(hub_relay) >= 2, timeout=30, message="the second sweep")
    notes = Notification.objects.filter(home=battery.home, kind="command_expired")
    assert notes.count() == 1 and notes.get().data["command_ids"] == [str(overdue.command_id)]
