"""The listener's batches, in process against the real database: every message is judged alone.

Each test builds the batch the listener's main loop would take off its queue (one hostile hub's
message among another hub's telemetry) and hands it to `Listener.process_batch`, so the batch's
composition is exact. The same payloads go through the real process and broker in
test_listener_poison.py.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from devices.models import Cycle, Device, Measurement
from hub_bridge import protocol
from hub_bridge.listener import Listener
from hub_bridge.models import CommandState, HubCommand, RejectedMessageCount
from hub_bridge.provision import provision_simulated_hubs
from hub_bridge.services import enqueue_command

pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = "batches"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def at(i: int) -> str:
    return (T0 + timedelta(seconds=10 * i)).isoformat()


def topic(spec, channel: str) -> str:
    return protocol.topic(PREFIX, spec.hub_id, channel)


def telemetry(spec, i: int, **values) -> tuple[str, bytes]:
    measurement = {"time": at(i), "device_serial": spec.devices[1]["device_serial"], "power_w": 1000.0 + i, **values}
    return topic(spec, protocol.TELEMETRY), json.dumps(
        {"version": 1, "hub_id": spec.hub_id, "measurements": [measurement]}).encode()


def cycle_report(spec, sequence_id: str = "dry-1", **over) -> tuple[str, bytes]:
    body = {"version": 1, "hub_id": spec.hub_id, "device_serial": spec.devices[0]["device_serial"],
            "sequence_id": sequence_id, "program": "Eco", "state": "scheduled", "earliest_start": at(360),
            "latest_end": at(360 + 6 * 360), "power_profile": [{"duration_min": 60, "max_power_w": 1800}], **over}
    return topic(spec, protocol.CYCLES), json.dumps(body).encode()


def ack(spec, command_id, status: str = "executed", message: str = "done") -> tuple[str, bytes]:
    body = {"version": 1, "hub_id": spec.hub_id, "command_id": str(command_id), "status": status,
            "message": message, "time": at(1)}
    return topic(spec, protocol.ACK), json.dumps(body).encode()


def rows_of(spec) -> int:
    return Measurement.objects.filter(device__serial_number=spec.devices[1]["device_serial"]).count()


def counted(spec, reason: str) -> int:
    row = RejectedMessageCount.objects.filter(hub_id=spec.hub_id, reason=reason).first()
    return row.count if row else 0


@pytest.fixture
def listener() -> Listener:
    return Listener(url="mqtt://127.0.0.1:1", prefix=PREFIX, group="batches")


@pytest.fixture
def hubs():
    """(hostile, honest): two homes with a hub each, provisioned as for the simulator."""
    return provision_simulated_hubs(1, tag=f"a{uuid.uuid4().hex[:4]}")[0], \
        provision_simulated_hubs(1, tag=f"b{uuid.uuid4().hex[:4]}")[0]


def _poison(hostile) -> dict[str, tuple[tuple[str, bytes], str]]:
    """Every payload the hardening review used against the listener, with the reason it is refused."""
    tele = topic(hostile, protocol.TELEMETRY)

    def raw_measurement(field: str, literal: str) -> bytes:
        return (f'{{"version": 1, "hub_id": "{hostile.hub_id}", "measurements": [{{"time": "{at(0)}", '
                f'"device_serial": "{hostile.devices[1]["device_serial"]}", "{field}": {literal}}}]}}').encode()

    cases = {
        "deep_list_telemetry": ((tele, b"[" * 100_000), "too_deep"),
        "deep_list_status": ((topic(hostile, protocol.STATUS), b"[" * 100_000), "too_deep"),
        "deep_object_in_a_field": ((tele, raw_measurement("power_w", '{"a":' * 50 + "1" + "}" * 50)), "too_deep"),
        "nul_in_device_serial": (telemetry(hostile, 0, device_serial="EV\u0000x"), "nul_byte"),
        "nul_in_sequence_id": (cycle_report(hostile, sequence_id="wash\u00001"), "nul_byte"),
        "lone_surrogate_in_program": ((topic(hostile, protocol.CYCLES), cycle_report(hostile)[1].replace(
            b'"Eco"', b'"\\ud800"')), "bad_text"),
        "offset_plus_23": (telemetry(hostile, 0, time="2026-11-29T12:00:00+23:00"), "bad_time"),
        "offset_minus_14_30": (telemetry(hostile, 0, time="2026-11-29T12:00:00-14:30"), "bad_time"),
        "year_1": (telemetry(hostile, 0, time="0001-01-01T00:00:00+01:00"), "bad_time"),
        "nul_in_ack_message": (ack(hostile, uuid.uuid4(), "failed", "bad\u0000news"), "nul_byte"),
        "big_exponent": ((tele, raw_measurement("energy_wh", "1e999")), "not_finite"),
    }
    for field in ("power_w", "soc_pct", "energy_wh", "temperature_c"):
        for literal in ("NaN", "Infinity", "-Infinity"):
            cases[f"{literal}_{field}"] = ((tele, raw_measurement(field, literal)), "not_finite")
    return cases


POISON_NAMES = sorted(_poison(type("S", (), {"hub_id": "H", "devices": [{"device_serial": "s"}] * 2})()))


@pytest.mark.parametrize("name", POISON_NAMES)
def test_a_poison_message_is_rejected_alone_and_the_rest_of_its_batch_written_once(name, listener, hubs):
    hostile, honest = hubs
    poison, reason = _poison(hostile)[name]
    batch = [telemetry(honest, i) for i in range(5)] + [poison] + [telemetry(honest, i) for i in range(5, 10)]
    listener.process_batch(batch)
    assert rows_of(honest) == 10
    assert Measurement.objects.filter(home__hubs__hub_id=hostile.hub_id).count() == 0
    assert not Cycle.objects.filter(device__serial_number=hostile.devices[0]["device_serial"]).exclude(
        sequence_id="wash-0").exists()
    assert listener.stats[f"rejected.{reason}"] == 1 and listener.stats["rejected"] == 1, dict(listener.stats)
    assert counted(hostile, reason) == 1
    assert listener.stats["batches_split"] == 0  # refused before any write


def test_finite_values_and_offsets_at_the_limits_are_accepted(listener, hubs):
    _, honest = hubs
    batch = [telemetry(honest, 0, time="2026-11-29T12:00:00+14:00", soc_pct=100.0, temperature_c=-50.0),
             telemetry(honest, 1, time="2026-11-29T12:00:00-14:00", energy_wh=1e12, power_w=-1e6)]
    listener.process_batch(batch)
    assert rows_of(honest) == 2 and listener.stats["rejected"] == 0


@pytest.fixture
def database_check():
    """A CHECK constraint added for the test: PostgreSQL refuses a value the protocol allows, as it
    would for any rule the validation does not foresee. Dropped afterwards."""
    added = []

    def add(table: str, condition: str) -> None:
        name = f"test_refuse_{uuid.uuid4().hex[:8]}"
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
        added.append((table, name))

    yield add
    with connection.cursor() as cursor:
        for table, name in added:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


def test_a_message_the_database_refuses_is_rejected_alone(listener, hubs, database_check):
    hostile, honest = hubs
    database_check(Measurement._meta.db_table, "power_w IS NULL OR power_w <> 666")
    batch = [telemetry(honest, i) for i in range(5)] + [telemetry(hostile, 0, power_w=666.0)] + \
        [telemetry(honest, i) for i in range(5, 10)] + [cycle_report(honest)]
    listener.process_batch(batch)
    assert rows_of(honest) == 10
    assert Cycle.objects.filter(device__serial_number=honest.devices[0]["device_serial"], sequence_id="dry-1").count() == 1
    assert listener.stats["batches_split"] == 1
    assert listener.stats["rejected.database"] == 1 and listener.stats["rejected"] == 1
    assert listener.stats["measurements"] == 10 and listener.stats["cycles"] == 1
    assert counted(hostile, "database") == 1


def test_an_ack_the_database_refuses_after_telemetry_does_not_write_telemetry_twice(listener, hubs, database_check):
    """Acknowledgements are written after telemetry: a refused ack used to make the whole batch
    retry, writing the telemetry a second time."""
    hostile, honest = hubs
    now = datetime.now(timezone.utc)
    commands = {}
    for spec in (hostile, honest):
        device = Device.objects.get(serial_number=spec.devices[2]["device_serial"])
        commands[spec.hub_id] = enqueue_command(device, "set_battery_setpoint", {"power_w": 500}, now,
                                                now + timedelta(minutes=10))
    database_check(HubCommand._meta.db_table, "message NOT LIKE '%refused-by-db%'")
    batch = [telemetry(honest, i) for i in range(10)] + [
        ack(hostile, commands[hostile.hub_id].command_id, "failed", "refused-by-db"),
        ack(honest, commands[honest.hub_id].command_id, "executed")]
    listener.process_batch(batch)
    assert rows_of(honest) == 10
    assert HubCommand.objects.get(pk=commands[honest.hub_id].pk).state == CommandState.EXECUTED
    assert HubCommand.objects.get(pk=commands[hostile.hub_id].pk).state == CommandState.QUEUED
    assert listener.stats["rejected.database"] == 1 and listener.stats["acks"] == 1
    assert counted(hostile, "database") == 1


def test_rejections_add_up_per_hub_and_reason_across_batches(listener, hubs):
    hostile, honest = hubs
    listener.process_batch([telemetry(hostile, 0, power_w=None), (topic(hostile, protocol.STATUS), b"[" * 5000)])
    listener.process_batch([(topic(hostile, protocol.STATUS), b"[" * 5000), (f"{PREFIX}/elsewhere", b"{}")])
    assert counted(hostile, "too_deep") == 2 and counted(hostile, "schema") == 1
    row = RejectedMessageCount.objects.get(hub_id="", reason="bad_topic")
    assert row.count == 1 and row.last_topic == f"{PREFIX}/elsewhere"
    assert rows_of(honest) == 0


def test_protocol_refuses_to_send_what_it_would_refuse_to_receive():
    message = {"version": 1, "hub_id": "H1", "measurements": [{"time": at(0), "power_w": float("nan")}]}
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.encode("telemetry", message)
    assert err.value.reason == "not_finite" and "measurements/0/power_w" in err.value.detail
