"""Simulated homes with physics behind a simulated hub (bench.closed_loop and its test).

A home's devices obey what they are told, minute by minute, within their limits: the battery follows
its power setpoint between its state-of-charge bounds, the EV charges while plugged in until its car
has what it asked for, the water heater's thermostat heats to its setpoint while hot water is drawn,
appliances run their cycle's power profile from the start they were given, a space-heating heat pump
follows its indoor setpoint within the power it was allowed (a first-order building). Base load, PV and
hot-water draws come from a known truth (per 15-minute slot) that the stack never sees; it only sees
the telemetry.

The same `HomePhysics` without a hub, `managed=False`, is the unoptimized baseline: cycles start as
soon as they may, the EV charges at full power from arrival, the battery stays idle, the water heater
keeps its tank full (the optimizer's own baseline, flexibility/optimizer/baseline.py).

With `managed=True` a device without a command covering the moment runs on its own settings (the
baseline's behaviour); an appliance starts at its scheduled start once a start_cycle command set one,
else as soon as it may (the protocol's reading of a cycle without scheduled_start).

Pure Python (no Django): `PhysicalHub` is a `SimulatedHub` whose delayed commands wait for the
simulated clock instead of wall-clock timers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

import numpy as np

from . import protocol
from .simulator import SimulatedHub

SLOT = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)
WATER_WH_PER_LITRE_KELVIN = 4.186 / 3.6  # 1 l of water, 1 K: 1.163 Wh
HOT_WATER_TOLERANCE_K = 1.0  # a tank this far below its band's floor is a comfort miss
EV_TOLERANCE_KWH = 0.1


@dataclass
class Truth:
    """What happens in the home whatever the HEMS does, per 15-minute slot from `start` (W)."""

    start: datetime
    base_w: list[float]
    pv_w: list[float]  # production, >= 0
    draw_w: list[float]  # heat drawn from the hot-water tank (thermal W)
    outdoor_c: Optional[list[float]] = None  # outdoor temperature (space heating; 10 C when not given)

    def slot(self, when: datetime) -> int:
        return int((when - self.start) / SLOT)


@dataclass
class Battery:
    serial: str
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    min_soc_pct: float
    soc_pct: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95


@dataclass
class Tank:
    serial: str
    volume_l: float
    power_kw: float
    t_min_c: float
    t_max_c: float
    temperature_c: float
    standing_loss_w: float = 50.0
    cop: float = 1.0


@dataclass
class SpaceHeater:
    """A heat pump heating the house (first-order building: FORMAT.md "Space heating"). It follows an indoor
    setpoint with its own thermostat, modulating up to its power (or the `power_w` it was allowed) without
    overshooting; on its own it holds `own_setpoint_c`."""

    serial: str
    max_power_kw: float
    heat_capacity_kwh_per_k: float
    heat_loss_kw_per_k: float
    indoor_c: float
    own_setpoint_c: float = 20.0
    cop_curve: list = field(default_factory=lambda: [[-10.0, 2.0], [-2.0, 2.6], [7.0, 3.4], [15.0, 4.2]])

    def cop(self, outdoor_c: float) -> float:
        """Linear between the curve's points, flat outside (as the optimizer reads it)."""
        xs, ys = zip(*sorted(self.cop_curve))
        return float(np.interp(outdoor_c, xs, ys))


@dataclass
class EVVisit:
    arrival: datetime
    departure: datetime
    energy_kwh: float
    delivered_kwh: float = 0.0


@dataclass
class EVCharger:
    serial: str
    max_power_kw: float
    efficiency: float = 0.92
    visits: list[EVVisit] = field(default_factory=list)


@dataclass
class CycleRun:
    serial: str
    sequence_id: str
    program: str
    appears_at: datetime  # when the household loads the machine and the hub reports the cycle
    earliest_start: datetime
    latest_end: datetime
    phases: list[dict]  # [{"duration_min", "expected_power_w", "max_power_w"}]
    scheduled_start: Optional[datetime] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=sum(p["duration_min"] for p in self.phases))

    @property
    def state(self) -> str:
        return "completed" if self.ended_at else "running" if self.started_at else "scheduled"

    def power_w(self, when: datetime) -> float:
        if self.started_at is None or self.ended_at is not None:
            return 0.0
        minute = (when - self.started_at) / MINUTE
        for p in self.phases:
            if minute < p["duration_min"]:
                return float(p["expected_power_w"])
            minute -= p["duration_min"]
        return 0.0

    def report(self) -> dict:
        body = {"program": self.program, "state": self.state, "earliest_start": protocol.iso(self.earliest_start),
                "latest_end": protocol.iso(self.latest_end), "power_profile": self.phases}
        start = self.started_at or self.scheduled_start
        body["scheduled_start"] = protocol.iso(start) if start else None
        return body


@dataclass
class Setpoint:
    order: tuple  # (issued_at, arrival): where setpoints overlap the one issued last wins (PROTOCOL.md)
    not_before: datetime
    expires_at: datetime
    parameters: dict


@dataclass
class SlotOutcome:
    """One slot of a home: mean power per device (W), the grid meter's import / export (Wh)."""

    start: datetime
    device_w: dict[str, float]
    import_wh: float
    export_wh: float
    changed_cycles: list[CycleRun]


class HomePhysics:
    def __init__(self, truth: Truth, *, managed: bool, battery: Optional[Battery] = None,
                 tank: Optional[Tank] = None, ev: Optional[EVCharger] = None, pv_serial: Optional[str] = None,
                 cycles: Optional[list[CycleRun]] = None, heating: Optional[SpaceHeater] = None):
        self.truth, self.managed, self.heating = truth, managed, heating
        self.battery, self.tank, self.ev, self.pv_serial = battery, tank, ev, pv_serial
        self.cycles = list(cycles or [])
        self.setpoints: dict[str, list[Setpoint]] = {}
        self._received = 0
        self.meter_wh = 0.0
        self.import_wh: list[float] = []
        self.export_wh: list[float] = []
        self.tank_below: list[bool] = []  # per slot: the tank went below its band's floor (with tolerance)

    # --- commands ------------------------------------------------------------------------------
    def command(self, serial: str, not_before: datetime, expires_at: datetime, parameters: dict,
                issued_at: Optional[datetime] = None) -> None:
        """Hold a setpoint over [not_before, expires_at). Ordered by when it was issued, not when it took
        effect: a command issued long ago for later must not override a newer plan's (it did when the
        order was that of execution, the hub's `not_before`)."""
        self._received += 1
        order = (issued_at.timestamp() if issued_at else float("inf"), self._received)
        self.setpoints.setdefault(serial, []).append(Setpoint(order, not_before, expires_at, parameters))

    def release(self, serial: str) -> None:
        self.setpoints.pop(serial, None)

    def start_cycle(self, serial: str, sequence_id: str, start: datetime) -> None:
        for c in self.cycles:
            if c.serial == serial and c.sequence_id == sequence_id and c.started_at is None:
                c.scheduled_start = start

    def setpoint(self, serial: str, when: datetime) -> Optional[dict]:
        best = None
        for s in self.setpoints.get(serial, ()):
            if s.not_before <= when < s.expires_at and (best is None or s.order > best.order):
                best = s
        return best.parameters if best else None

    def prune(self, now: datetime) -> None:
        for serial, items in self.setpoints.items():
            self.setpoints[serial] = [s for s in items if s.expires_at > now]

    # --- physics -------------------------------------------------------------------------------
    def appearing(self, since: datetime, until: datetime) -> list[CycleRun]:
        return [c for c in self.cycles if since <= c.appears_at < until]

    def _battery_w(self, when: datetime, dt_h: float) -> float:
        b = self.battery
        sp = self.setpoint(b.serial, when) if self.managed else None
        want = float(sp.get("power_w", 0.0)) if sp else 0.0
        soc_kwh = b.soc_pct / 100.0 * b.capacity_kwh
        if want >= 0:
            room_kw = max(b.capacity_kwh - soc_kwh, 0.0) / (b.charge_efficiency * dt_h)
            p_kw = min(want / 1000.0, b.max_charge_kw, room_kw)
            soc_kwh += p_kw * b.charge_efficiency * dt_h
        else:
            left_kw = max(soc_kwh - b.min_soc_pct / 100.0 * b.capacity_kwh, 0.0) * b.discharge_efficiency / dt_h
            p_kw = -min(-want / 1000.0, b.max_discharge_kw, left_kw)
            soc_kwh += p_kw / b.discharge_efficiency * dt_h
        b.soc_pct = 100.0 * soc_kwh / b.capacity_kwh
        return p_kw * 1000.0

    def _ev_w(self, when: datetime, dt_h: float) -> float:
        ev = self.ev
        visit = next((v for v in ev.visits if v.arrival <= when < v.departure), None)
        if visit is None:
            return 0.0
        sp = self.setpoint(ev.serial, when) if self.managed else None
        want_kw = float(sp["power_w"]) / 1000.0 if sp and "power_w" in sp else \
            float(sp["current_a"]) * 0.23 if sp and "current_a" in sp else ev.max_power_kw
        need_kw = max(visit.energy_kwh - visit.delivered_kwh, 0.0) / (ev.efficiency * dt_h)
        p_kw = max(min(want_kw, ev.max_power_kw, need_kw), 0.0)  # the car stops at what it asked for
        visit.delivered_kwh += p_kw * ev.efficiency * dt_h
        return p_kw * 1000.0

    def _tank_w(self, when: datetime, dt_h: float, draw_w: float) -> float:
        t = self.tank
        sp = self.setpoint(t.serial, when) if self.managed else None
        if sp is not None:
            target = t.t_min_c if sp.get("mode") == "off" else float(sp["temperature_c"])
        else:
            target = t.t_max_c  # on its own the thermostat keeps the tank full
        heating = t.temperature_c < target
        p_w = t.power_kw * 1000.0 if heating else 0.0
        heat_wh = (p_w * t.cop - draw_w - t.standing_loss_w) * dt_h
        t.temperature_c += heat_wh / (t.volume_l * WATER_WH_PER_LITRE_KELVIN)
        return p_w

    def _heating_w(self, when: datetime, dt_h: float, outdoor_c: float) -> float:
        h = self.heating
        sp = self.setpoint(h.serial, when) if self.managed else None
        target = float(sp["indoor_temperature_c"]) if sp else h.own_setpoint_c
        limit_kw = min(float(sp.get("power_w") or 0.0) / 1000.0 or h.max_power_kw, h.max_power_kw) if sp \
            else h.max_power_kw
        cop = h.cop(outdoor_c)
        loss_kw = h.heat_loss_kw_per_k * (h.indoor_c - outdoor_c)
        needed_kw = ((target - h.indoor_c) * h.heat_capacity_kwh_per_k / dt_h + loss_kw) / cop  # to reach it now
        p_kw = max(0.0, min(limit_kw, needed_kw))
        h.indoor_c += (p_kw * cop - loss_kw) * dt_h / h.heat_capacity_kwh_per_k
        return p_kw * 1000.0

    def _cycles_w(self, when: datetime) -> tuple[float, list[CycleRun]]:
        total, changed = 0.0, []
        for c in self.cycles:
            if c.appears_at > when or c.ended_at is not None:
                continue
            if c.started_at is None:
                # As soon as it may, unless it was told when (the protocol: the plan moves the start).
                due = c.scheduled_start if self.managed and c.scheduled_start else max(c.earliest_start, c.appears_at)
                if when >= due:
                    c.started_at = when
                    changed.append(c)
            if c.started_at is not None and when - c.started_at >= c.duration:
                c.ended_at = when
                changed.append(c)
                continue
            total += c.power_w(when)
        return total, changed

    def advance(self, start: datetime) -> SlotOutcome:
        """Simulate the slot [start, start + 15 min) minute by minute."""
        k = self.truth.slot(start)
        base, pv, draw = self.truth.base_w[k], self.truth.pv_w[k], self.truth.draw_w[k]
        outdoor_c = self.truth.outdoor_c[k] if self.truth.outdoor_c else 10.0
        dt_h = 1 / 60
        sums: dict[str, float] = {}
        imported = exported = 0.0
        changed: list[CycleRun] = []
        below = False
        for m in range(15):
            when = start + m * MINUTE
            device = {}
            if self.battery:
                device[self.battery.serial] = self._battery_w(when, dt_h)
            if self.ev:
                device[self.ev.serial] = self._ev_w(when, dt_h)
            if self.tank:
                device[self.tank.serial] = self._tank_w(when, dt_h, draw)
                below = below or self.tank.temperature_c < self.tank.t_min_c - HOT_WATER_TOLERANCE_K
            if self.heating:
                device[self.heating.serial] = self._heating_w(when, dt_h, outdoor_c)
            cycles_w, moved = self._cycles_w(when)
            changed += [c for c in moved if c not in changed]
            for c in self.cycles:
                if c.started_at is not None and (c.ended_at is None or c.ended_at > when):
                    device[c.serial] = device.get(c.serial, 0.0) + c.power_w(when)
            if self.pv_serial:
                device[self.pv_serial] = -pv
            for serial, w in device.items():
                sums[serial] = sums.get(serial, 0.0) + w
            net = base + sum(device.values())
            imported += max(net, 0.0) * dt_h
            exported += max(-net, 0.0) * dt_h
        for c in self.cycles:  # devices that ran nothing this slot still report 0 W
            sums.setdefault(c.serial, 0.0)
        self.meter_wh += imported
        self.import_wh.append(imported)
        self.export_wh.append(exported)
        self.tank_below.append(below)
        self.prune(start + SLOT)
        return SlotOutcome(start, {s: v / 15.0 for s, v in sums.items()}, imported, exported, changed)

    def measurements(self, outcome: SlotOutcome) -> list[dict]:
        """The slot's telemetry as the hub reports it (one reading per device, near the slot's end)."""
        t = protocol.iso(outcome.start + timedelta(minutes=14))
        rows = [{"time": t, "power_w": round((outcome.import_wh - outcome.export_wh) * 4.0, 1),
                 "energy_wh": round(self.meter_wh, 1)}]
        for serial, w in sorted(outcome.device_w.items()):
            row = {"time": t, "device_serial": serial, "power_w": round(w, 1)}
            if self.battery and serial == self.battery.serial:
                row["soc_pct"] = round(self.battery.soc_pct, 2)
            if self.tank and serial == self.tank.serial:
                row["temperature_c"] = round(self.tank.temperature_c, 2)
            if self.heating and serial == self.heating.serial:
                row["temperature_c"] = round(self.heating.indoor_c, 2)  # indoor
            rows.append(row)
        return rows

    # --- comfort -------------------------------------------------------------------------------
    def ev_misses(self, until: datetime) -> list[EVVisit]:
        return [v for v in (self.ev.visits if self.ev else []) if v.departure <= until
                and v.delivered_kwh < v.energy_kwh - EV_TOLERANCE_KWH]

    def cycle_misses(self, until: datetime) -> list[CycleRun]:
        return [c for c in self.cycles if c.latest_end <= until and (c.ended_at is None or c.ended_at > c.latest_end)]


class PhysicalHub(SimulatedHub):
    """A simulated hub in front of a `HomePhysics`: commands wait for the simulated clock (`run_due`),
    each slot's telemetry and cycle changes are published by `finish_slot`."""

    def __init__(self, spec, broker, prefix, physics: HomePhysics, **kwargs):
        super().__init__(spec, broker, prefix, **kwargs)
        self.physics = physics
        self.pending: list[tuple[datetime, dict]] = []  # (not_before, command), in the order they arrived

    def _later(self, command: dict, delay_s: float) -> None:
        with self._lock:
            self.pending.append((protocol.parse_time(command["not_before"]), command))

    def run_due(self, now: datetime) -> int:
        """Execute the commands whose not_before has come (in the order they arrived). Called many times a
        slot while the driver waits: not_before is parsed once, on arrival."""
        if not self.pending:
            return 0
        with self._lock:
            due = [c for at, c in self.pending if at <= now]
            if due:
                self.pending = [(at, c) for at, c in self.pending if at > now]
        for command in due:
            self._execute(command)
        return len(due)

    def _execute(self, command: dict) -> None:
        kind, serial, p = command["kind"], command["device_serial"], command["parameters"]
        with self._lock:
            if kind in ("set_ev_power", "set_battery_setpoint", "set_thermal_setpoint", "set_heat_pump_setpoint"):
                self.physics.command(serial, protocol.parse_time(command["not_before"]),
                                     protocol.parse_time(command["expires_at"]), p,
                                     issued_at=protocol.parse_time(command["issued_at"]))
            elif kind == "release_control":
                self.physics.release(serial)
            elif kind == "start_cycle":
                self.physics.start_cycle(serial, p["sequence_id"], protocol.parse_time(p["start"]))
        super()._execute(command)

    def report_cycle(self, cycle: CycleRun) -> None:
        with self._lock:
            self.cycles[(cycle.serial, cycle.sequence_id)] = {"sequence_id": cycle.sequence_id, **cycle.report()}
        self.publish_cycle(cycle.serial, cycle.sequence_id)

    def finish_slot(self, start: datetime) -> SlotOutcome:
        with self._lock:
            outcome = self.physics.advance(start)
            rows = self.physics.measurements(outcome)
        self._publish(protocol.TELEMETRY, "telemetry", {
            "version": protocol.VERSION, "hub_id": self.spec.hub_id, "measurements": rows})
        for c in outcome.changed_cycles:
            self.report_cycle(c)
        return outcome
