"""Hub messages for the listener tests: honest ones and every poison payload of the hardening review."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from hub_bridge import protocol

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def at(i: int) -> str:
    return (T0 + timedelta(seconds=10 * i)).isoformat()


def telemetry(prefix: str, spec, i: int, **values) -> tuple[str, bytes]:
    """One measurement of the spec's EV charger, power 1000 + i W unless given."""
    measurement = {"time": at(i), "device_serial": spec.devices[1]["device_serial"], "power_w": 1000.0 + i, **values}
    return protocol.topic(prefix, spec.hub_id, protocol.TELEMETRY), json.dumps(
        {"version": 1, "hub_id": spec.hub_id, "measurements": [measurement]}).encode()


def cycle_report(prefix: str, spec, sequence_id: str = "dry-1", **over) -> tuple[str, bytes]:
    body = {"version": 1, "hub_id": spec.hub_id, "device_serial": spec.devices[0]["device_serial"],
            "sequence_id": sequence_id, "program": "Eco", "state": "scheduled", "earliest_start": at(360),
            "latest_end": at(360 + 6 * 360), "power_profile": [{"duration_min": 60, "max_power_w": 1800}], **over}
    return protocol.topic(prefix, spec.hub_id, protocol.CYCLES), json.dumps(body).encode()


def ack(prefix: str, spec, command_id, status: str = "executed", message: str = "done") -> tuple[str, bytes]:
    body = {"version": 1, "hub_id": spec.hub_id, "command_id": str(command_id), "status": status,
            "message": message, "time": at(1)}
    return protocol.topic(prefix, spec.hub_id, protocol.ACK), json.dumps(body).encode()


def poison(prefix: str, hostile) -> dict[str, tuple[tuple[str, bytes], str]]:
    """name -> ((topic, payload), reason the listener refuses it with)."""
    tele = protocol.topic(prefix, hostile.hub_id, protocol.TELEMETRY)

    def raw_measurement(field: str, literal: str) -> bytes:
        return (f'{{"version": 1, "hub_id": "{hostile.hub_id}", "measurements": [{{"time": "{at(0)}", '
                f'"device_serial": "{hostile.devices[1]["device_serial"]}", "{field}": {literal}}}]}}').encode()

    cycles = cycle_report(prefix, hostile)
    cases = {
        "deep_list_telemetry": ((tele, b"[" * 100_000), "too_deep"),
        "deep_list_status": ((protocol.topic(prefix, hostile.hub_id, protocol.STATUS), b"[" * 100_000), "too_deep"),
        "deep_object_in_a_field": ((tele, raw_measurement("power_w", '{"a":' * 50 + "1" + "}" * 50)), "too_deep"),
        "nul_in_device_serial": (telemetry(prefix, hostile, 0, device_serial="EV\u0000x"), "nul_byte"),
        "nul_in_sequence_id": (cycle_report(prefix, hostile, sequence_id="wash\u00001"), "nul_byte"),
        "lone_surrogate_in_program": ((cycles[0], cycles[1].replace(b'"Eco"', b'"\\ud800"')), "bad_text"),
        "offset_plus_23": (telemetry(prefix, hostile, 0, time="2026-11-29T12:00:00+23:00"), "bad_time"),
        "offset_minus_14_30": (telemetry(prefix, hostile, 0, time="2026-11-29T12:00:00-14:30"), "bad_time"),
        "year_1": (telemetry(prefix, hostile, 0, time="0001-01-01T00:00:00+01:00"), "bad_time"),
        "nul_in_ack_message": (ack(prefix, hostile, uuid.uuid4(), "failed", "bad\u0000news"), "nul_byte"),
        "big_exponent": ((tele, raw_measurement("energy_wh", "1e999")), "not_finite"),
    }
    for field in ("power_w", "soc_pct", "energy_wh", "temperature_c"):
        for literal in ("NaN", "Infinity", "-Infinity"):
            cases[f"{literal}_{field}"] = ((tele, raw_measurement(field, literal)), "not_finite")
    return cases


class _Names:
    hub_id = "H"
    devices = [{"device_serial": "s"}] * 3


POISON_NAMES = sorted(poison("p", _Names()))
