"""Supervisor test: the real listener process (as `manage.py hub_listener` runs it) on the private
Mosquitto with the project's password and ACL files, while one hub publishes every poison payload
(one of them retained on its status topic) and another hub's telemetry flows. Rows are counted:
exactly what the honest hub sent, once; every poison message refused and counted by reason; the
listener, and listeners started afterwards (which receive the retained poison), keep running.
"""
from __future__ import annotations

from collections import Counter

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.models import Measurement
from hub_bridge import protocol
from hub_bridge.models import RejectedMessageCount
from hub_bridge.provision import provision_simulated_hubs
from tests.hub import payloads
from tests.plugins.mqtt import ListenerProcess, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

POISON = ["deep_list_telemetry", "NaN_power_w", "NaN_soc_pct", "NaN_energy_wh", "NaN_temperature_c",
          "nul_in_device_serial", "nul_in_sequence_id", "offset_plus_23", "nul_in_ack_message", "Infinity_power_w"]
REFUSED_BY_DATABASE_W = 666.0


def _hub_client(broker, spec) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=spec.username)
    client.username_pw_set(spec.username, spec.secret)
    client.connect("127.0.0.1", broker.hub_port)
    client.loop_start()
    return client


def _send(client: paho.Client, message: tuple[str, bytes], retain: bool = False) -> None:
    client.publish(message[0], message[1], qos=1, retain=retain).wait_for_publish(10)


def _honest_powers(spec) -> list[float]:
    return sorted(Measurement.objects.filter(device__serial_number=spec.devices[1]["device_serial"])
                  .values_list("power_w", flat=True))


def _counts(spec) -> Counter:
    return Counter(dict(RejectedMessageCount.objects.filter(hub_id=spec.hub_id).values_list("reason", "count")))


def test_poison_payloads_while_another_hub_streams(mqtt_broker, hub_env, sync_broker_credentials, hub_listener,
                                                   database_check):
    hostile, honest = provision_simulated_hubs(1, tag="hostile")[0], provision_simulated_hubs(1, tag="honest")[0]
    sync_broker_credentials()
    prefix = mqtt_broker.prefix
    database_check(Measurement._meta.db_table, f"power_w IS NULL OR power_w <> {REFUSED_BY_DATABASE_W}")
    poison = payloads.poison(prefix, hostile)
    expected = Counter(poison[name][1] for name in POISON) + Counter(too_deep=1, database=1)
    bad, good = _hub_client(mqtt_broker, hostile), _hub_client(mqtt_broker, honest)
    listeners = [hub_listener]
    try:
        _send(bad, poison["deep_list_status"][0], retain=True)
        sent = []
        for i in range(40):
            _send(good, payloads.telemetry(prefix, honest, i))
            sent.append(1000.0 + i)
            if i % 4 == 0 and i // 4 < len(POISON):
                _send(bad, poison[POISON[i // 4]][0])
        _send(bad, payloads.telemetry(prefix, hostile, 0, power_w=REFUSED_BY_DATABASE_W))
        for i in range(40, 50):
            _send(good, payloads.telemetry(prefix, honest, i))
            sent.append(1000.0 + i)
        wait_for(lambda: _counts(hostile) == expected, 30,
                 f"the rejections to be counted: {expected} (listener log {hub_listener.log()[-2000:]})")
        wait_for(lambda: len(_honest_powers(honest)) >= len(sent), 30, "the honest hub's telemetry")
        assert _honest_powers(honest) == sent, "every honest message written exactly once"
        assert not Measurement.objects.filter(home__hubs__hub_id=hostile.hub_id).exists()
        assert hub_listener.proc.poll() is None
        assert sum(hub_listener.rejections(reason) for reason in expected) == sum(expected.values())

        # Restarted listeners (two of them, sharing the load) each receive the retained poison status.
        hub_listener.stop()
        listeners = [ListenerProcess(hub_env).start() for _ in range(2)]
        wait_for(lambda: _counts(hostile)["too_deep"] == expected["too_deep"] + 2, 30,
                 "both restarted listeners to refuse the retained poison")
        for i in range(50, 70):
            _send(good, payloads.telemetry(prefix, honest, i))
            sent.append(1000.0 + i)
        wait_for(lambda: len(_honest_powers(honest)) >= len(sent), 30, "telemetry after the restart")
        assert _honest_powers(honest) == sent
        assert all(listener.proc.poll() is None for listener in listeners)
    finally:
        for listener in listeners:
            listener.stop()
        _send(bad, (protocol.topic(prefix, hostile.hub_id, protocol.STATUS), b""), retain=True)  # clear it
        for client in (bad, good):
            client.loop_stop()
            client.disconnect()
