"""Client ids are tied to accounts: a hub cannot knock anyone off the broker by borrowing a client id.

The private broker is configured as docker/mosquitto/mosquitto.conf: hubs on their own listener with
`use_username_as_clientid true` and only hub accounts, cloud services on another listener with only
cloud accounts.

A takeover is seen deterministically: Mosquitto closes the old connection while it handles the new
CONNECT, before it answers CONNACK, so once the intruder is connected the victim's next QoS 1
round trip shows whether its connection was closed.
"""
from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub_bridge import protocol
from hub_bridge.provision import provision_simulated_hubs
from tests.plugins.mqtt import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


class Client:
    """A paho client that records every connection it made and every disconnect it suffered."""

    def __init__(self, port: int, username: str, secret: str, client_id: str):
        self.client_id = client_id
        self.connects, self.disconnects = [], []
        self.connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.username_pw_set(username, secret)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: (self.connected.clear(), self.disconnects.append(rc))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        wait_for(self.connected.is_set, 10, f"{username} to connect as {client_id}")

    def _on_connect(self, client, userdata, flags, rc, properties):
        self.connects.append(rc)
        if not rc.is_failure:
            self.connected.set()

    def round_trip(self, topic: str) -> None:
        """A QoS 1 publish answered by the broker: afterwards any disconnect before it is recorded."""
        self.client.publish(topic, b"ping", qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients():
    made = []

    def make(*args) -> Client:
        made.append(Client(*args))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def two_hubs(sync_broker_credentials):
    a, b = provision_simulated_hubs(2)
    sync_broker_credentials()
    return a, b


def test_a_hub_cannot_take_over_another_hubs_client_id(mqtt_broker, two_hubs, clients):
    intruder, victim = two_hubs
    own_topic = protocol.topic(mqtt_broker.prefix, victim.hub_id, protocol.STATUS)
    honest = clients(mqtt_broker.hub_port, victim.username, victim.secret, victim.username)
    clients(mqtt_broker.hub_port, intruder.username, intruder.secret, victim.username)
    clients(mqtt_broker.hub_port, intruder.username, intruder.secret, f"sim-{victim.hub_id}")
    honest.round_trip(own_topic)
    assert honest.disconnects == [] and honest.connects == [honest.connects[0]]


def test_a_hub_cannot_take_over_the_relay_or_a_listener(mqtt_broker, two_hubs, clients):
    intruder, _ = two_hubs
    relay = clients(mqtt_broker.port, *mqtt_broker.accounts["relay"], f"relay-test-{uuid.uuid4().hex[:6]}")
    listener = clients(mqtt_broker.port, *mqtt_broker.accounts["listener"], f"listener-test-{uuid.uuid4().hex[:6]}")
    for victim in (relay, listener):
        clients(mqtt_broker.hub_port, intruder.username, intruder.secret, victim.client_id)
    command = protocol.topic(mqtt_broker.prefix, intruder.hub_id, protocol.COMMANDS)
    relay.round_trip(command)
    listener.client.subscribe(protocol.uplink_filter(mqtt_broker.prefix, protocol.STATUS), qos=1)
    listener.round_trip(command)  # denied by the ACL but still answered: the connection is alive
    assert relay.disconnects == [] and listener.disconnects == []
    # Nor can the hub log in where the cloud services connect, whatever its client id.
    assert mqtt_broker.can_connect(intruder.username, intruder.secret, hub=True)
    assert not mqtt_broker.can_connect(intruder.username, intruder.secret)


def test_the_takeover_check_sees_a_takeover(mqtt_broker, clients):
    """Control: two connections of one cloud account with one client id do replace each other, and
    the check above notices it (so its silence means something)."""
    shared_id = f"listener-dup-{uuid.uuid4().hex[:6]}"
    first = clients(mqtt_broker.port, *mqtt_broker.accounts["listener"], shared_id)
    first.client.reconnect_delay_set(min_delay=30, max_delay=30)  # stay off once replaced
    clients(mqtt_broker.port, *mqtt_broker.accounts["listener"], shared_id)
    wait_for(lambda: first.disconnects, 10, "the first connection to be replaced")
