"""Command API scoping and the protocol's schema rules (no broker needed)."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import Device
from hub_bridge import protocol
from hub_bridge.provision import provision_simulated_hubs
from hub_bridge.services import enqueue_command


def _command(**over) -> dict:
    now = timezone.now()
    base = {"version": 1, "command_id": str(uuid.uuid4()), "kind": "start_cycle", "device_serial": "WM-1",
            "parameters": {"sequence_id": "w1", "start": (now + timedelta(hours=1)).isoformat()},
            "not_before": now.isoformat(), "expires_at": (now + timedelta(hours=1)).isoformat(),
            "issued_at": now.isoformat()}
    return {**base, **over}


@pytest.mark.parametrize("payload,reason", [
    (b'{"version": 1, "command_id"', "malformed"),
    (b"\xff\xfe", "malformed"),
    (json.dumps(_command(version=2)).encode(), "wrong_version"),
    (json.dumps(_command(kind="self_destruct")).encode(), "schema"),
    (json.dumps(_command(parameters={"sequence_id": "w1"})).encode(), "schema"),
    (json.dumps(_command(kind="set_ev_power", parameters={"power_w": 1, "current_a": 2})).encode(), "schema"),
    (json.dumps(_command(kind="set_heat_pump_setpoint", parameters={"power_w": 900})).encode(), "schema"),
    (json.dumps(_command(kind="set_heat_pump_setpoint", parameters={"indoor_temperature_c": 60})).encode(), "schema"),
    (json.dumps(_command(not_before="2026-03-29T01:00:00")).encode(), "bad_time"),  # no offset
    (json.dumps(_command(expires_at="2026-03-29T01:00:00+15:00")).encode(), "bad_time"),  # beyond +14:00
    (b"[" + b"0," * 200_000 + b"0]", "oversized"),
])
def test_bad_commands_are_refused_with_a_reason(payload, reason):
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode("command", payload)
    assert err.value.reason == reason


def test_every_documented_command_kind_validates():
    examples = {
        "delay_cycle": {"sequence_id": "w1", "delay_min": 30},
        "cancel_cycle": {"sequence_id": "w1"},
        "set_ev_power": {"current_a": 16},
        "set_battery_setpoint": {"power_w": -2500, "target_soc_pct": 40},
        "set_thermal_setpoint": {"temperature_c": 55, "mode": "boost"},
        "set_heat_pump_setpoint": {"indoor_temperature_c": 21.5, "power_w": 1800},
        "release_control": {},
    }
    for kind, parameters in examples.items():
        assert protocol.decode("command", protocol.encode("command", _command(kind=kind, parameters=parameters)))


def test_topics_outside_the_protocol_are_refused():
    assert protocol.parse_topic("p", "p/hubs/H1/ack") == ("H1", "ack")
    for bad in ("p/hubs/H1/ack/extra", "q/hubs/H1/ack", "p/hubs//ack", "p/hubs/H1/shell"):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_topic("p", bad)


@pytest.mark.django_db
def test_enqueue_validates_parameters_and_household_sees_only_its_commands():
    spec_a, spec_b = provision_simulated_hubs(1, tag="a")[0], provision_simulated_hubs(1, tag="b")[0]
    ev_a = Device.objects.get(serial_number=spec_a.devices[1]["device_serial"])
    ev_b = Device.objects.get(serial_number=spec_b.devices[1]["device_serial"])
    now = timezone.now()
    with pytest.raises(ValueError, match="Invalid set_ev_power"):
        enqueue_command(ev_a, "set_ev_power", {"power_w": -5}, now, now + timedelta(minutes=5))
    with pytest.raises(ValueError, match="expires_at"):
        enqueue_command(ev_a, "set_ev_power", {"power_w": 5}, now, now)
    mine = enqueue_command(ev_a, "set_ev_power", {"power_w": 3000, "until": now + timedelta(hours=1)}, now,
                           now + timedelta(minutes=5))
    theirs = enqueue_command(ev_b, "set_ev_power", {"power_w": 1000}, now, now + timedelta(minutes=5))
    assert mine.parameters["until"] == (now + timedelta(hours=1)).isoformat()
    client = APIClient()
    client.force_authenticate(ev_a.home.owner)
    body = client.get("/api/v1/commands", {"state": "queued"}).json()
    assert [c["command_id"] for c in body["results"]] == [str(mine.command_id)]
    assert client.get(f"/api/v1/commands/{theirs.command_id}").status_code == 404
    assert client.get(f"/api/v1/commands/{mine.command_id}").json()["state"] == "queued"
    staff = get_user_model().objects.create_user("hub-staff", "s@example.com", "pw-staff-2026", is_staff=True)
    client.force_authenticate(staff)
    assert client.get(f"/api/v1/commands/{theirs.command_id}").status_code == 200
