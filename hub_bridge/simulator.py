"""Hub simulator: behaves like a real home hub on the wire (PROTOCOL.md).

Connects with the hub's own MQTT account, sets its last will, publishes status,
registry, cycle reports and telemetry, and executes commands (moves cycle starts,
follows EV / battery / thermal / heat pump setpoints, so later telemetry shows them) with
command_id idempotency. Used by the tests, the demo and the benchmark.

    python -m hub_bridge.simulator --hubs 10 --credentials hubs.json --url mqtt://127.0.0.1:1883
    python manage.py provision_simulated_hubs --hubs 10 --credentials hubs.json   # creates them in the DB first

Pure paho + the shared schemas, no Django: provisioning (hub_bridge.provision) builds on this module, not the
other way round.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from energy_manager import clock

from . import protocol
from .mqtt import BrokerAddress, Connection, parse_url

log = logging.getLogger("hub_bridge.simulator")


def utcnow() -> datetime:
    """The hub's clock: the stack's one clock (the wall clock, or a simulation's: energy_manager.clock)."""
    return clock.now()


@dataclass
class HubSpec:
    """What a hub knows about itself: its id, its MQTT account and its devices.

    devices: [{"device_serial", "device_type", "protocol"?, "cycles"?: [cycle report bodies]}]
    """

    hub_id: str
    username: str
    secret: str
    devices: list[dict] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> "HubSpec":
        return cls(d["hub_id"], d["username"], d["secret"], d.get("devices", []))

    def to_dict(self) -> dict:
        return {"hub_id": self.hub_id, "username": self.username, "secret": self.secret, "devices": self.devices}


class SimulatedHub:
    def __init__(self, spec: HubSpec, broker: BrokerAddress, prefix: str, firmware_version: str = "sim-1.0"):
        self.spec = spec
        self.prefix = prefix
        self.firmware_version = firmware_version
        self.devices = {d["device_serial"]: d for d in spec.devices}
        self.cycles: dict[tuple[str, str], dict] = {}
        for d in spec.devices:
            for c in d.get("cycles", []):
                self.cycles[(d["device_serial"], c["sequence_id"])] = dict(c)
        self.setpoints: dict[str, dict] = {}
        self.outcomes: dict[str, tuple[str, str]] = {}  # command_id -> (status, message)
        self.executions: Counter = Counter()  # command_id -> times executed (must stay <= 1)
        self.received: Counter = Counter()  # command_id -> times received
        self.invalid_commands = 0
        self.energy_wh = 0.0
        self._lock = threading.RLock()
        address = BrokerAddress(broker.host, broker.port, spec.username, spec.secret, broker.tls, broker.ca_file)
        will = (self.topic(protocol.STATUS), self._status_payload(False, "last_will"), 1, True)
        self.connection = Connection(address, client_id=spec.username, clean_session=False, will=will,
                                     on_message=self._on_message, on_connect=self._on_connect, max_inflight=100)

    # --- wiring -----------------------------------------------------------------------
    def topic(self, channel: str) -> str:
        return protocol.topic(self.prefix, self.spec.hub_id, channel)

    def _status_payload(self, online: bool, reason: str) -> bytes:
        msg = {"version": protocol.VERSION, "hub_id": self.spec.hub_id, "online": online, "reason": reason}
        if reason != "last_will":
            msg["time"] = protocol.iso(utcnow())
        return protocol.encode("status", msg)

    def _publish(self, channel: str, schema: str, message: dict):
        return self.connection.client.publish(self.topic(channel), protocol.encode(schema, message),
                                              qos=protocol.QOS[channel], retain=channel in protocol.RETAINED)

    def start(self, wait_s: float | None = 10.0) -> "SimulatedHub":
        self.connection.start(wait_s=wait_s)
        return self

    def stop(self) -> None:
        """Clean shutdown: say offline (retained), then disconnect."""
        try:
            info = self.connection.client.publish(self.topic(protocol.STATUS), self._status_payload(False, "shutdown"),
                                                  qos=1, retain=True)
            info.wait_for_publish(2)
        except (ValueError, RuntimeError):
            pass
        self.connection.stop()

    def crash(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker publishes the last will."""
        self.connection.client.loop_stop()
        sock = self.connection.client.socket()
        if sock is not None:
            sock.close()

    def _on_connect(self, conn: Connection, flags) -> None:
        conn.client.subscribe(self.topic(protocol.COMMANDS), qos=1)
        conn.client.publish(self.topic(protocol.STATUS), self._status_payload(True, "connected"), qos=1, retain=True)
        self.publish_registry()
        for serial, seq in list(self.cycles):
            self.publish_cycle(serial, seq)

    # --- uplinks ----------------------------------------------------------------------
    def publish_registry(self):
        devices = [{"device_serial": s, "device_type": d["device_type"], "protocol": d.get("protocol", "vendor_api")}
                   for s, d in self.devices.items()]
        return self._publish(protocol.REGISTRY, "registry", {
            "version": protocol.VERSION, "hub_id": self.spec.hub_id, "firmware_version": self.firmware_version,
            "devices": devices})

    def publish_cycle(self, serial: str, sequence_id: str):
        with self._lock:
            body = dict(self.cycles[(serial, sequence_id)])
        body.update({"version": protocol.VERSION, "hub_id": self.spec.hub_id, "device_serial": serial,
                     "sequence_id": sequence_id})
        return self._publish(protocol.CYCLES, "cycle_report", body)

    def measurements(self, now: datetime | None = None) -> list[dict]:
        """What the meters read now: devices follow the setpoints they were given."""
        now = now or utcnow()
        t = protocol.iso(now)
        rows, total = [], 300.0  # base load (W)
        with self._lock:
            for serial, d in self.devices.items():
                sp = self.setpoints.get(serial, {})
                row = {"time": t, "device_serial": serial}
                kind = d["device_type"]
                if kind == "ev_charger":
                    power = sp.get("power_w", sp.get("current_a", 0) * 230.0)
                    row["power_w"] = float(power)
                elif kind == "battery":
                    row["power_w"] = float(sp.get("power_w", 0.0))
                    row["soc_pct"] = float(sp.get("soc_pct", 50.0))
                elif kind in ("water_heater", "heat_pump"):
                    row["power_w"] = 0.0 if sp.get("mode") == "off" else 1000.0
                    row["temperature_c"] = float(sp.get("temperature_c", 50.0))
                elif kind == "space_heating":  # the room reaches its setpoint; the pump draws what it was allowed
                    row["power_w"] = float(sp.get("power_w", 0.0))
                    row["temperature_c"] = float(sp.get("indoor_temperature_c", 20.0))
                else:
                    row["power_w"] = 0.0
                total += row["power_w"]
                rows.append(row)
            self.energy_wh += max(total, 0) * 10 / 3600.0
            rows.append({"time": t, "power_w": total, "energy_wh": round(self.energy_wh, 3)})
        return rows

    def publish_telemetry(self, now: datetime | None = None):
        return self._publish(protocol.TELEMETRY, "telemetry", {
            "version": protocol.VERSION, "hub_id": self.spec.hub_id, "measurements": self.measurements(now)})

    def ack(self, command_id: str, status: str, message: str = ""):
        body = {"version": protocol.VERSION, "hub_id": self.spec.hub_id, "command_id": command_id, "status": status,
                "time": protocol.iso(utcnow())}
        if message:
            body["message"] = message[:1000]
        return self._publish(protocol.ACK, "ack", body)

    # --- commands ---------------------------------------------------------------------
    def _on_message(self, client, userdata, msg) -> None:
        try:
            command = protocol.decode("command", msg.payload)
        except protocol.ProtocolError as exc:
            self.invalid_commands += 1
            log.warning("hub %s: invalid command ignored: %s", self.spec.hub_id, exc)
            return
        self.handle_command(command)

    def handle_command(self, command: dict) -> None:
        cid = command["command_id"]
        with self._lock:
            self.received[cid] += 1
            if cid in self.outcomes:  # a resend: answer again, never execute twice
                status, message = self.outcomes[cid]
                self.ack(cid, status, message)
                return
            now = utcnow()
            if protocol.parse_time(command["expires_at"]) <= now:
                self._finish(cid, "rejected", "expired before it arrived")
                return
            if command["device_serial"] not in self.devices:
                self._finish(cid, "rejected", f"unknown device {command['device_serial']}")
                return
            self.outcomes[cid] = ("accepted", "")
            self.ack(cid, "accepted")
        delay = (protocol.parse_time(command["not_before"]) - utcnow()).total_seconds()
        if delay > 0:
            self._later(command, delay)
        else:
            self._execute(command)

    def _later(self, command: dict, delay_s: float) -> None:
        """Execute at `not_before` (a wall-clock timer; hub_bridge.physics runs them on its simulated clock)."""
        timer = threading.Timer(delay_s, self._execute, args=(command,))
        timer.daemon = True
        timer.start()

    def _finish(self, cid: str, status: str, message: str) -> None:
        self.outcomes[cid] = (status, message)
        self.ack(cid, status, message)

    def _execute(self, command: dict) -> None:
        cid, serial, p = command["command_id"], command["device_serial"], command["parameters"]
        kind = command["kind"]
        changed_cycle = None
        with self._lock:
            try:
                if kind in ("start_cycle", "delay_cycle", "cancel_cycle"):
                    key = (serial, p["sequence_id"])
                    cycle = self.cycles.get(key)
                    if cycle is None:
                        raise ValueError(f"unknown cycle {p['sequence_id']}")
                    if kind == "start_cycle":
                        cycle["scheduled_start"] = p["start"]
                    elif kind == "delay_cycle":
                        base = protocol.parse_time(cycle.get("scheduled_start") or cycle["earliest_start"])
                        cycle["scheduled_start"] = protocol.iso(base + timedelta(minutes=p["delay_min"]))
                    else:
                        cycle["state"] = "cancelled"
                    changed_cycle = key
                elif kind == "set_ev_power":
                    self.setpoints[serial] = {k: p[k] for k in ("power_w", "current_a") if k in p}
                elif kind == "set_battery_setpoint":
                    self.setpoints[serial] = {"power_w": p["power_w"], "soc_pct": p.get("target_soc_pct", 50.0)}
                elif kind == "set_thermal_setpoint":
                    self.setpoints[serial] = {"temperature_c": p["temperature_c"], "mode": p.get("mode", "comfort")}
                elif kind == "set_heat_pump_setpoint":
                    self.setpoints[serial] = {k: p[k] for k in ("indoor_temperature_c", "power_w") if k in p}
                elif kind == "release_control":
                    self.setpoints.pop(serial, None)
                self.executions[cid] += 1
                self._finish(cid, "executed", f"{kind} done")
            except (ValueError, KeyError) as exc:
                self._finish(cid, "failed", str(exc))
        if changed_cycle:
            self.publish_cycle(*changed_cycle)


class Simulation:
    """Many simulated hubs and a telemetry clock."""

    def __init__(self, specs: list[HubSpec], url: str, prefix: str):
        broker = parse_url(url)
        self.hubs = [SimulatedHub(s, broker, prefix) for s in specs]
        self.stop_event = threading.Event()

    def start(self, wait_s: float = 30.0) -> "Simulation":
        for hub in self.hubs:
            hub.start(wait_s=None)
        deadline = time.monotonic() + wait_s
        for hub in self.hubs:
            if not hub.connection.connected.wait(max(0.0, deadline - time.monotonic())):
                raise ConnectionError(f"hub {hub.spec.hub_id} could not connect ({hub.connection.last_connect_rc})")
        return self

    def run_telemetry(self, interval_s: float = 10.0, duration_s: float | None = None) -> int:
        """Publish telemetry from every hub every `interval_s` (spread over the interval)."""
        sent, end = 0, (time.monotonic() + duration_s) if duration_s else None
        n = max(1, len(self.hubs))
        while not self.stop_event.is_set() and (end is None or time.monotonic() < end):
            tick = time.monotonic()
            for i, hub in enumerate(self.hubs):
                target = tick + interval_s * i / n
                pause = target - time.monotonic()
                if pause > 0 and self.stop_event.wait(pause):
                    return sent
                hub.publish_telemetry()
                sent += 1
            pause = tick + interval_s - time.monotonic()
            if pause > 0 and self.stop_event.wait(pause):
                break
        return sent

    def stop(self) -> None:
        self.stop_event.set()
        for hub in self.hubs:
            hub.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub_bridge.simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hubs", type=int, required=True, help="How many hubs to simulate.")
    parser.add_argument("--credentials", required=True, help="JSON file of hub specs (written by `manage.py provision_simulated_hubs`).")
    parser.add_argument("--url", default=None, help="The broker's hubs' listener, e.g. mqtts://broker:8883?ca=ca.crt "
                        "(default: MQTT_HUB_URL, else MQTT_URL's host and port).")
    parser.add_argument("--prefix", default=None, help="Topic prefix (default MQTT_TOPIC_PREFIX or 'hems').")
    parser.add_argument("--telemetry-interval", type=float, default=10.0, help="Seconds between telemetry messages.")
    parser.add_argument("--duration", type=float, default=None, help="Stop after this many seconds.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    prefix = args.prefix or os.environ.get("MQTT_TOPIC_PREFIX", "hems")
    url = args.url or os.environ.get("MQTT_HUB_URL") or os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")
    address = parse_url(url)
    url = f"{'mqtts' if address.tls else 'mqtt'}://{address.host}:{address.port}"  # hubs use their own accounts
    with open(args.credentials) as f:
        specs = [HubSpec.from_dict(d) for d in json.load(f)][: args.hubs]
    sim = Simulation(specs, url, prefix).start(wait_s=max(30.0, 0.1 * len(specs)))
    signal.signal(signal.SIGTERM, lambda *a: sim.stop_event.set())
    signal.signal(signal.SIGINT, lambda *a: sim.stop_event.set())
    try:
        sent = sim.run_telemetry(args.telemetry_interval, args.duration)
    finally:
        sim.stop()
    executed = sum(sum(h.executions.values()) for h in sim.hubs)
    print(json.dumps({"hubs": len(sim.hubs), "telemetry_messages": sent, "commands_executed": executed}))


if __name__ == "__main__":
    main()
