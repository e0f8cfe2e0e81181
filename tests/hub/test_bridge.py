"""The hub bridge end to end on a private Mosquitto: relay worker, listener, simulated hubs."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import paho.mqtt.client as paho
import pytest
from django.db import transaction
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion

from devices.models import Cycle, Device, Hub, Measurement
from flexibility.notifications.models import Notification
from hub_bridge import protocol
from hub_bridge.models import CommandState, HubCommand
from hub_bridge.provision import provision_simulated_hubs
from hub_bridge.services import enqueue_command
from tests.plugins.mqtt import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _state(command: HubCommand) -> str:
    return HubCommand.objects.values_list("state", flat=True).get(pk=command.pk)


def _online(hub_id: str) -> bool:
    return Hub.objects.filter(hub_id=hub_id, online=True).exists()


def _raw_client(broker, username: str, secret: str, service: bool = False):
    """A bare MQTT client with subscribe results recorded (for ACL and bad-payload tests), on the hubs'
    listener or, for a cloud account, the services'."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(username, secret)
    client.received, client.suback = [], {}
    client.on_message = lambda c, u, m: client.received.append((m.topic, m.payload))
    client.on_subscribe = lambda c, u, mid, codes, p: client.suback.__setitem__(mid, [rc.value for rc in codes])
    client.connect("127.0.0.1", broker.port if service else broker.hub_port)
    client.loop_start()
    return client


@pytest.fixture
def one_home(sync_broker_credentials):
    spec = provision_simulated_hubs(1)[0]
    sync_broker_credentials()
    return spec


def test_command_is_relayed_executed_and_the_cycle_moves(one_home, hub_listener, hub_relay, simulated_hub):
    spec = one_home
    hub = simulated_hub(spec)
    wait_for(lambda: _online(spec.hub_id), message="the listener to see the hub online")
    wm = Device.objects.get(serial_number=spec.devices[0]["device_serial"])
    ev = Device.objects.get(serial_number=spec.devices[1]["device_serial"])
    cycle = Cycle.objects.get(device=wm)
    new_start = cycle.earliest_start + timedelta(hours=3)
    now = timezone.now()
    with transaction.atomic():
        start = enqueue_command(wm, "start_cycle", {"sequence_id": cycle.sequence_id, "start": new_start},
                                now, now + timedelta(minutes=10))
        charge = enqueue_command(ev, "set_ev_power", {"power_w": 3680}, now, now + timedelta(minutes=10))
    wait_for(lambda: _state(start) == _state(charge) == CommandState.EXECUTED, message="both commands executed")
    wait_for(lambda: Cycle.objects.get(pk=cycle.pk).scheduled_start == new_start, message="the cycle to move")
    row = HubCommand.objects.get(pk=start.pk)
    assert row.send_count >= 1 and row.sent_at and row.acknowledged_at and row.finished_at
    assert hub.executions[str(start.command_id)] == 1
    # Later telemetry shows the EV following its setpoint.
    hub.publish_telemetry()
    wait_for(lambda: Measurement.objects.filter(device=ev, power_w=3680).exists(), message="EV telemetry at 3680 W")
    assert Measurement.objects.filter(home=wm.home, device__isnull=True).count() == 1


def test_commands_for_an_offline_hub_wait_then_go_when_it_comes_back(one_home, hub_listener, hub_relay,
                                                                     simulated_hub):
    spec = one_home
    ev = Device.objects.get(serial_number=spec.devices[1]["device_serial"])
    now = timezone.now()
    command = enqueue_command(ev, "set_ev_power", {"current_a": 10}, now, now + timedelta(minutes=10))
    assert not _online(spec.hub_id)
    hub = simulated_hub(spec)
    wait_for(lambda: _state(command) == CommandState.EXECUTED, message="the waiting command to be executed")
    assert hub.setpoints[ev.serial_number] == {"current_a": 10}


def test_offline_past_expiry_expires_and_notifies(one_home, hub_listener, hub_relay):
    spec = one_home
    ev = Device.objects.get(serial_number=spec.devices[1]["device_serial"])
    now = timezone.now()
    command = enqueue_command(ev, "set_ev_power", {"power_w": 2000}, now, now + timedelta(seconds=2))
    wait_for(lambda: _state(command) == CommandState.EXPIRED, message="the command to expire")
    row = HubCommand.objects.get(pk=command.pk)
    assert row.send_count == 0 and row.finished_at is not None
    note = Notification.objects.get(home=ev.home, kind="command_expired")
    assert note.user_id == ev.home.owner_id
    assert str(command.command_id) in note.data["command_ids"]


def test_broker_restart_mid_flow_delivers_every_command_once(mqtt_broker, one_home, hub_listener, hub_relay,
                                                             simulated_hub):
    spec = one_home
    hub = simulated_hub(spec)
    wait_for(lambda: _online(spec.hub_id), message="hub online")
    bat = Device.objects.get(serial_number=spec.devices[2]["device_serial"])
    now = timezone.now()
    first = [enqueue_command(bat, "set_battery_setpoint", {"power_w": 100 + i}, now, now + timedelta(minutes=5))
             for i in range(20)]
    mqtt_broker.restart()  # while the first batch is in flight
    second = [enqueue_command(bat, "set_battery_setpoint", {"power_w": -100 - i}, now, now + timedelta(minutes=5))
              for i in range(20)]
    commands = first + second
    ids = [c.pk for c in commands]
    wait_for(lambda: HubCommand.objects.filter(pk__in=ids, state=CommandState.EXECUTED).count() == len(ids),
             timeout=60, message="all 40 commands executed after the restart")
    executions = [hub.executions[str(c.command_id)] for c in commands]
    assert executions == [1] * len(commands), "a command was executed twice (or never)"


def test_bad_payloads_are_rejected_cleanly(mqtt_broker, one_home, hub_listener):
    spec = one_home
    client = _raw_client(mqtt_broker, spec.username, spec.secret)
    telemetry_topic = protocol.topic(mqtt_broker.prefix, spec.hub_id, protocol.TELEMETRY)
    ev_serial = spec.devices[1]["device_serial"]
    good = {"version": 1, "hub_id": spec.hub_id, "measurements": [
        {"time": timezone.now().isoformat(), "device_serial": ev_serial, "power_w": 1234.0}]}
    bad = [
        b"{not json",
        json.dumps(good).encode()[:-7],  # truncated
        json.dumps({**good, "version": 2}).encode(),
        json.dumps({**good, "measurements": [{"time": "yesterday", "power_w": 1}]}).encode(),
        json.dumps({**good, "hub_id": "SOMEONE-ELSE"}).encode(),
        json.dumps({**good, "measurements": [{**good["measurements"][0], "device_serial": "NOT-MINE"},
                                             good["measurements"][0]]}).encode(),  # half valid: nothing written
        b"{" + b" " * (300 * 1024) + b"}",  # oversized
    ]
    for payload in bad:
        client.publish(telemetry_topic, payload, qos=1).wait_for_publish(5)
    client.publish(telemetry_topic, json.dumps(good).encode(), qos=1).wait_for_publish(5)
    wait_for(lambda: Measurement.objects.filter(device__serial_number=ev_serial).exists(), message="the good message")
    assert Measurement.objects.count() == 1
    for reason, count in (("malformed", 2), ("wrong_version", 1), ("bad_time", 1), ("hub_mismatch", 1),
                          ("invalid_telemetry", 1), ("oversized", 1)):
        assert hub_listener.rejections(reason) == count, (reason, hub_listener.log()[-3000:])
    assert hub_listener.proc.poll() is None
    client.loop_stop()
    client.disconnect()


def test_a_hub_cannot_use_another_hubs_topics(mqtt_broker, sync_broker_credentials):
    a, b = provision_simulated_hubs(2)
    sync_broker_credentials()
    prefix = mqtt_broker.prefix
    hub_a = _raw_client(mqtt_broker, a.username, a.secret)
    hub_b = _raw_client(mqtt_broker, b.username, b.secret)
    spy = _raw_client(mqtt_broker, *mqtt_broker.accounts["listener"], service=True)
    _, mid_own = hub_a.subscribe(protocol.topic(prefix, a.hub_id, protocol.COMMANDS), qos=1)
    _, mid_other = hub_a.subscribe(protocol.topic(prefix, b.hub_id, protocol.COMMANDS), qos=1)
    _, mid_all = hub_a.subscribe(f"{prefix}/hubs/#", qos=1)
    hub_b.subscribe(protocol.topic(prefix, b.hub_id, protocol.COMMANDS), qos=1)
    spy.subscribe(protocol.topic(prefix, b.hub_id, protocol.TELEMETRY), qos=1)
    wait_for(lambda: {mid_own, mid_other, mid_all} <= set(hub_a.suback) and len(spy.suback) == 1, message="SUBACKs")
    assert hub_a.suback[mid_own] == [1]
    # Mosquitto 2.0 grants denied MQTT 3.1.1 subscriptions but never delivers on them: checked below.
    # The relay publishes a command to B: B gets it, A does not.
    relay = _raw_client(mqtt_broker, *mqtt_broker.accounts["relay"], service=True)
    relay.publish(protocol.topic(prefix, b.hub_id, protocol.COMMANDS), b"for-b", qos=1).wait_for_publish(5)
    wait_for(lambda: hub_b.received, message="B to receive its command")
    # A speaks on B's telemetry topic (dropped by the broker); then B does.
    hub_a.publish(protocol.topic(prefix, b.hub_id, protocol.TELEMETRY), b"forged", qos=1).wait_for_publish(5)
    hub_b.publish(protocol.topic(prefix, b.hub_id, protocol.TELEMETRY), b"genuine", qos=1).wait_for_publish(5)
    wait_for(lambda: spy.received, message="B's own telemetry")
    assert [p for _, p in spy.received] == [b"genuine"]
    assert hub_a.received == []  # neither B's command nor anything under the wildcard
    # Neither may publish commands, and a hub cannot log in with another's secret.
    assert not mqtt_broker.can_connect(a.username, b.secret, hub=True)
    for c in (hub_a, hub_b, spy, relay):
        c.loop_stop()
        c.disconnect()


def test_last_will_marks_a_crashed_hub_offline(one_home, hub_listener, simulated_hub):
    spec = one_home
    hub = simulated_hub(spec)
    wait_for(lambda: _online(spec.hub_id), message="hub online")
    hub.crash()
    wait_for(lambda: Hub.objects.filter(hub_id=spec.hub_id, online=False).exists(), timeout=60,
             message="the last will to mark the hub offline")


def test_cycle_reports_create_and_update_cycles(one_home, hub_listener, simulated_hub):
    spec = one_home
    hub = simulated_hub(spec)
    serial = spec.devices[0]["device_serial"]
    wm = Device.objects.get(serial_number=serial)
    start = timezone.now().replace(microsecond=0) + timedelta(hours=2)
    hub.cycles[(serial, "dry-1")] = {"program": "Eco", "state": "scheduled", "earliest_start": start.isoformat(),
                                     "latest_end": (start + timedelta(hours=5)).isoformat(), "scheduled_start": None,
                                     "power_profile": [{"duration_min": 90, "max_power_w": 1800}]}
    hub.publish_cycle(serial, "dry-1")
    cycle = wait_for(lambda: Cycle.objects.filter(device=wm, sequence_id="dry-1").first(), message="new cycle")
    assert cycle.power_profile == [{"duration_min": 90, "expected_power_w": 1800, "max_power_w": 1800}]
    # A window that cannot hold the profile is refused by full_clean and changes nothing.
    hub.cycles[(serial, "dry-1")]["latest_end"] = (start + timedelta(minutes=30)).isoformat()
    hub.publish_cycle(serial, "dry-1")
    wait_for(lambda: hub_listener.rejections("invalid_cycle") == 1, message="the invalid cycle report")
    assert Cycle.objects.get(pk=cycle.pk).latest_end == start + timedelta(hours=5)


def test_optimization_run_commands_are_executed_by_the_hub(mqtt_broker, hub_env, sync_broker_credentials,
                                                           hub_listener, celery_worker, simulated_hub):
    """Optimization -> command -> simulator executes -> acknowledgement -> executed, cycle moved."""
    from tests.factories.homes import seed_area_signals, seed_standard_home
    from django.contrib.auth import get_user_model
    from flexibility.planning import services as runs
    from flexibility.planning.models import Recommendation, RunStatus
    from hub_bridge.provision import spec_for_hub
    from hub_bridge.services import issue_hub_credentials

    now = timezone.now()
    owner = get_user_model().objects.create_user("hub-e2e", "hub-e2e@example.com", "pw-hub-e2e-2026")
    seed_area_signals(now - timedelta(hours=1))
    home = seed_standard_home(owner, "Automatic home", now, hub=True, automatic=True)
    hub_row = home.hubs.get()
    spec = spec_for_hub(hub_row, issue_hub_credentials(hub_row))
    sync_broker_credentials()
    from kombu import pools

    pools.reset()
    celery_worker(queues=["optimization", "default", "hub"], concurrency=1, env=hub_env, name="hub-e2e")
    hub = simulated_hub(spec)
    wait_for(lambda: _online(spec.hub_id), message="hub online")
    run, _ = runs.submit_run(home, force=True)
    wait_for(lambda: type(run).objects.get(pk=run.pk).status not in (RunStatus.QUEUED, RunStatus.RUNNING),
             timeout=90, message="the run to finish")
    assert type(run).objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    recs = list(Recommendation.objects.filter(schedule__run=run).select_related("cycle", "device"))
    assert recs, "the plan moves at least one cycle (starts are set in peak hours)"
    starts = HubCommand.objects.filter(run=run, kind="start_cycle")
    assert starts.count() == len(recs)
    wait_for(lambda: all(s == CommandState.EXECUTED for s in starts.values_list("state", flat=True)),
             timeout=60, message="the run's start commands executed")
    for rec in recs:
        key = (rec.device.serial_number, rec.cycle.sequence_id)
        assert protocol.parse_time(hub.cycles[key]["scheduled_start"]) == rec.recommended_start
        wait_for(lambda: Cycle.objects.get(pk=rec.cycle_id).scheduled_start == rec.recommended_start,
                 message="the cycle in the database at the new start")
    assert all(n == 1 for n in hub.executions.values())
