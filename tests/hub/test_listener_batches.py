"""The listener's batches, in process against the real database: every message is judged alone.

Each test builds the batch the listener's main loop would take off its queue (one hostile hub's
message among another hub's telemetry) and hands it to `Listener.process_batch`, so the batch's
composition is exact. The same payloads go through the real process and broker in
test_listener_poison.py.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from devices.models import Cycle, Device, Measurement
from hub_bridge import protocol
from hub_bridge.listener import WRITE_ATTEMPTS, Listener
from hub_bridge.models import CommandState, HubCommand, RejectedMessageCount
from hub_bridge.provision import provision_simulated_hubs
from hub_bridge.services import enqueue_command
from tests.hub import payloads

pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = "batches"


def topic(spec, channel: str) -> str:
    return protocol.topic(PREFIX, spec.hub_id, channel)


def telemetry(spec, i: int, **values) -> tuple[str, bytes]:
    return payloads.telemetry(PREFIX, spec, i, **values)


def cycle_report(spec, **over) -> tuple[str, bytes]:
    return payloads.cycle_report(PREFIX, spec, **over)


def ack(spec, command_id, status: str = "executed", message: str = "done") -> tuple[str, bytes]:
    return payloads.ack(PREFIX, spec, command_id, status, message)


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




@pytest.mark.parametrize("name", payloads.POISON_NAMES)
def test_a_poison_message_is_rejected_alone_and_the_rest_of_its_batch_written_once(name, listener, hubs):
    hostile, honest = hubs
    poison, reason = payloads.poison(PREFIX, hostile)[name]
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
    message = {"version": 1, "hub_id": "H1", "measurements": [{"time": payloads.at(0), "power_w": float("nan")}]}
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.encode("telemetry", message)
    assert err.value.reason == "not_finite" and "measurements/0/power_w" in err.value.detail


def test_a_message_that_breaks_the_database_connection_is_refused_after_retries(listener, hubs):
    """A trigger ends the session when it sees the hostile value: the listener reconnects, writes the
    rest of the batch once, tries the culprit again a bounded number of times and refuses it."""
    hostile, honest = hubs
    table = Measurement._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("""CREATE FUNCTION test_hangup() RETURNS trigger AS $$ BEGIN
                          IF NEW.power_w = 777 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
                          RETURN NEW; END $$ LANGUAGE plpgsql""")
        cursor.execute(f"CREATE TRIGGER test_hangup BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION test_hangup()")
    try:
        batch = [telemetry(honest, i) for i in range(5)] + [telemetry(hostile, 0, power_w=777.0)] + \
            [telemetry(honest, i) for i in range(5, 10)]
        listener.process_batch(batch)
        assert rows_of(honest) == 10
        assert listener.stats["rejected.database"] == 1 and listener.stats["rejected"] == 1
        assert listener.stats["write_retries"] == WRITE_ATTEMPTS - 1
        assert counted(hostile, "database") == 1
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS test_hangup ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS test_hangup()")


def test_non_finite_values_stored_before_are_cleared_and_the_api_reads_them(hubs):
    """Rows written before the listener refused NaN broke `GET /api/v1/measurements/`; the migration
    that added the rejection counters turns them into NULL."""
    import importlib

    from rest_framework.test import APIClient

    migration = importlib.import_module("hub_bridge.migrations.0003_rejected_message_count")
    _, honest = hubs
    device = Device.objects.get(serial_number=honest.devices[2]["device_serial"])
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {Measurement._meta.db_table} (home_id, device_id, time, power_w, soc_pct, "
                       "energy_wh, temperature_c) VALUES (%s, %s, %s, 'NaN', 'Infinity', '-Infinity', 20.5)",
                       [device.home_id, device.pk, payloads.T0])
        cursor.execute(migration.NON_FINITE_MEASUREMENTS_TO_NULL)
    client = APIClient()
    client.force_authenticate(device.home.owner)
    response = client.get("/api/v1/measurements/", {"home": device.home_id})
    assert response.status_code == 200
    [row] = [r for r in response.json()["results"] if r["temperature_c"] == 20.5]
    assert row["power_w"] is None and row["soc_pct"] is None and row["energy_wh"] is None


def test_the_any_lookup_selects_what_in_selects_with_one_parameter():
    from django.test.utils import CaptureQueriesContext

    from devices.models import Hub

    specs = provision_simulated_hubs(3)
    ids = [s.hub_id for s in specs]
    with CaptureQueriesContext(connection) as ctx:
        found = set(Hub.objects.filter(hub_id__any=ids + ["no-such-hub"]).values_list("hub_id", flat=True))
    assert found == set(ids) == set(Hub.objects.filter(hub_id__in=ids).values_list("hub_id", flat=True))
    assert "= ANY(" in ctx.captured_queries[0]["sql"]
    homes = list(Hub.objects.filter(hub_id__in=ids).values_list("home_id", flat=True))
    assert Device.objects.filter(home_id__any=homes).count() == Device.objects.filter(home_id__in=homes).count() > 0
    assert not Hub.objects.filter(hub_id__any=[]).exists()
