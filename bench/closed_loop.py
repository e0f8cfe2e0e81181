"""Closed loop: simulated homes with physics against the real stack, on a simulated clock.

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/hems_loop_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/4 \\
        .venv/bin/python -m bench.closed_loop --homes 50 --days 7 --json

Starts a private Mosquitto, a Celery worker on `optimization,default` (`--workers` processes), a relay
worker on `hub` and `manage.py hub_listener`, every one reading the simulated clock
(energy_manager.clock, HEMS_SIMULATED_CLOCK = the broker's Redis). Creates `--homes` households in
Europe/Lisbon (registered, a home with the country's dynamic tariff, a hub, PV, a water heater, a
washing machine, a dishwasher, an EV charger, a battery in every other home), seeds `--history-days`
of their telemetry, and drives the clock slot by slot from 12:00 local of the day before the
first planned day:

* the hubs (hub_bridge.physics, in this process) execute the commands whose time has come, simulate
  the slot minute by minute from a known truth (tests.inputs.simulation: base load, PV with clouds,
  showers) and publish its telemetry and cycle changes over MQTT; the listener stores them;
* the household loads the washing machine and the dishwasher (the hub reports the cycle) and plugs
  the EV in (an EV session, as the API would record it);
* what beat would send, on the simulated clock: the price/CO2 drop folder import (a CSV of the next
  day's spot prices and CO2 written at 12:00 local), the day-ahead fan-out (DAY_AHEAD_LOCAL_TIME),
  the rolling re-planning tick (every slot) and the forecast scoring (03:15 local);
* before the clock moves on, it waits until the stack is quiet (queues empty, no run open, no
  command unacknowledged, every telemetry row stored).

Then it reports (one JSON line): comfort misses caused by the system (an EV short at departure, a
cycle finished after its latest end, hot water below its band while the unoptimized home's was
not), commands sent / executed / lost, realized cost against the unoptimized baseline (the same
homes, the same truth, no HEMS: hub_bridge.physics with managed=False) and the day-ahead plans'
savings, forecast MAE against seasonal naive per home, the wall time and the load.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from datetime import date, datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from typing import Callable, Optional
from zoneinfo import ZoneInfo

import numpy as np

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")
ROOT = Path(__file__).resolve().parent.parent
TZ = "Europe/Lisbon"
ZONE = ZoneInfo(TZ)
SLOT = timedelta(minutes=15)
LISBON = (38.72, -9.14)
WASH = [{"duration_min": 15, "expected_power_w": 2000, "max_power_w": 2200},
        {"duration_min": 60, "expected_power_w": 150, "max_power_w": 300}]
DISH = [{"duration_min": 30, "expected_power_w": 1800, "max_power_w": 2000},
        {"duration_min": 45, "expected_power_w": 100, "max_power_w": 200},
        {"duration_min": 30, "expected_power_w": 1800, "max_power_w": 2000}]


def local(day: date, hour: float) -> datetime:
    h, m = int(hour), int(round((hour % 1) * 60 / 15)) * 15
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(dt_timezone.utc) + timedelta(hours=h, minutes=m)


def floor_slot(t: datetime) -> datetime:
    ts = t.timestamp()
    return datetime.fromtimestamp(ts - ts % 900, dt_timezone.utc)


def spot_eur_per_mwh(day: date, rng: np.random.Generator) -> list[tuple[datetime, float]]:
    """A day of quarter-hour spot prices: cheap at night and at solar noon, dear in the evening."""
    start, end = local(day, 0), local(day + timedelta(days=1), 0)
    level = rng.uniform(50, 110)
    out = []
    t = start
    while t < end:
        h = t.astimezone(ZONE).hour + t.astimezone(ZONE).minute / 60
        shape = 1.0 + 0.55 * np.exp(-((h - 20.5) ** 2) / 4) + 0.25 * np.exp(-((h - 8.5) ** 2) / 3) \
            - 0.55 * np.exp(-((h - 13.5) ** 2) / 6) - 0.2 * np.exp(-((h - 3.5) ** 2) / 5)
        out.append((t, round(float(level * shape * rng.uniform(0.93, 1.07)), 2)))
        t += SLOT
    return out


def co2_g_per_kwh(prices: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    return [(t, round(120 + 2.2 * p, 1)) for t, p in prices]


@dataclass
class SimHome:
    home_id: int
    hub: object  # hub_bridge.physics.PhysicalHub
    managed: object  # HomePhysics (the hub's)
    baseline: object  # HomePhysics, no HEMS
    serials: dict = field(default_factory=dict)


@dataclass
class Config:
    homes: int = 3
    days: float = 1.0  # planned days after the start's day (0.5: until noon of the first)
    history_days: int = 3
    seed: int = 11
    first_day: Optional[date] = None  # first planned day (default: the Monday after next)
    workers: int = 1
    start_hour: float = 12.0  # local hour of the day before the first planned day where the loop starts


class ClosedLoop:
    """Build the homes (`create_homes`), then `run()`; the caller starts broker, workers and listener."""

    def __init__(self, config: Config, hub_url: str, prefix: str, import_dir: Path, redis_url: str,
                 say: Callable[[str], None] = lambda m: None):
        self.config, self.hub_url, self.prefix, self.import_dir = config, hub_url, prefix, import_dir
        self.redis_url, self.say = redis_url, say
        today = datetime.now(ZONE).date()
        self.first_day = config.first_day or today + timedelta(days=14 - today.weekday())
        # prices arrive at 12:00, the day-ahead runs at 18:00 (DAY_AHEAD_LOCAL_TIME)
        self.start = local(self.first_day - timedelta(days=1), config.start_hour)
        self.end = local(self.first_day, 0) + timedelta(days=config.days)
        self.history_start = self.start - timedelta(days=config.history_days)
        self.homes: list[SimHome] = []
        self.rng = np.random.default_rng(config.seed)
        self.tag = uuid.uuid4().hex[:6]
        self.timings: dict[str, float] = {}
        self.busy: dict[str, float] = {}  # seconds the loop waited, by what it waited for
        self.wall_start = datetime.now(dt_timezone.utc)  # fleet runs of this loop started after it
        self._redis = None
        self.prices: dict[date, list] = {}

    # --- set-up -----------------------------------------------------------------------------------
    def _truth(self, i: int):
        from flexibility.forecasting.pv import PVSystem
        from hub_bridge.physics import Truth
        from tests.inputs.simulation import SimulatedHome

        sim = SimulatedHome(seed=self.config.seed * 1000 + i, tz=TZ)
        slots = int((self.end - self.history_start) / SLOT)
        kwp = round(float(sim.rng.uniform(2.5, 5.0)), 1)
        base = sim.base_load_w(self.history_start, slots)
        pv = sim.pv_w(PVSystem(kwp, *LISBON, 30.0, 180.0), self.history_start, slots)
        draws = sim.hot_water_w(self.history_start, slots)
        return kwp, Truth(self.history_start, [float(x) for x in base], [float(x) for x in pv],
                          [float(x) for x in draws])

    def _events(self, rng: np.random.Generator, serials: dict):
        from hub_bridge.physics import CycleRun, EVVisit

        cycles, visits = [], []
        day = self.first_day - timedelta(days=1)
        while local(day, 0) < self.end:
            if (day - self.first_day).days % 2 == 0:
                at = local(day, float(rng.uniform(7.5, 10.0)))
                if at >= self.start:
                    cycles.append(CycleRun(serials["wm"], f"wash-{day:%m%d}", "Cotton 40", at, at,
                                           at + timedelta(hours=float(rng.choice([8, 10, 12]))), WASH))
            at = local(day, float(rng.uniform(20.5, 22.5)))
            if at >= self.start:
                cycles.append(CycleRun(serials["dw"], f"dish-{day:%m%d}", "Eco 50", at, at,
                                       local(day + timedelta(days=1), 7.5), DISH))
            arrival = local(day, float(rng.uniform(17.5, 20.0)))
            if arrival >= self.start:
                visits.append(EVVisit(arrival, local(day + timedelta(days=1), float(rng.uniform(7.0, 8.0))),
                                      round(float(rng.uniform(5, 14)), 1)))
            day += timedelta(days=1)
        return [c for c in cycles if c.latest_end <= self.end], [v for v in visits if v.departure <= self.end]

    def create_homes(self) -> None:
        """Households registered as through the API, their devices and hubs, their telemetry history."""
        from django.db import transaction

        from devices import services as device_services
        from devices.models import Device, DeviceType, Home
        from hub_bridge.mqtt import parse_url
        from hub_bridge.physics import Battery, EVCharger, HomePhysics, PhysicalHub, Tank
        from hub_bridge.simulator import HubSpec

        from energy_manager import clock

        t0 = time.perf_counter()
        clock.set_now(self.start)
        # A scratch database may hold an earlier loop's homes: they would join the day-ahead fan-out.
        Home.objects.filter(owner__email__startswith="loop-", owner__email__endswith="@example.com").delete()
        broker = parse_url(self.hub_url)
        for i in range(self.config.homes):
            rng = np.random.default_rng(self.config.seed * 7919 + i)
            kwp, truth = self._truth(i)
            with transaction.atomic():
                user = device_services.user_register(email=f"loop-{self.tag}-{i}@example.com",
                                                     password=f"Loop-{uuid.uuid4().hex}")
                home = device_services.home_save(Home(owner=user), {
                    "name": f"Loop home {i}", "country": "PT", "timezone": TZ, "tariff_kind": "dynamic",
                    "contracted_power_kva": Decimal("6.90"), "export_limit_kw": Decimal("6.90"),
                    "global_optimizer_opt_in": True})
                hub, secret = device_services.hub_register(hub_id=f"LOOP-{self.tag}-{i:03d}", home=home)
                serials = {k: f"{k.upper()}-{self.tag}-{i}" for k in ("pv", "wh", "wm", "dw", "ev", "bat")}
                specs = [
                    ("pv", DeviceType.PV, "PV", {"peak_power_kw": kwp, "latitude": LISBON[0], "longitude": LISBON[1]}),
                    ("wh", DeviceType.WATER_HEATER, "Water heater", {
                        "electric_power_kw": 2.0, "tank_volume_l": 200, "temperature_min_c": 45,
                        "temperature_max_c": 65, "initial_temperature_c": 55, "standing_loss_kw": 0.05}),
                    ("wm", DeviceType.WASHING_MACHINE, "Washing machine", {}),
                    ("dw", DeviceType.DISHWASHER, "Dishwasher", {}),
                    ("ev", DeviceType.EV_CHARGER, "EV charger", {"max_power_kw": 7.4, "min_power_kw": 1.4}),
                ]
                if i % 2 == 0:
                    specs.append(("bat", DeviceType.BATTERY, "Battery", {
                        "capacity_kwh": 10.0, "max_charge_kw": 3.0, "max_discharge_kw": 3.0, "min_soc_pct": 10,
                        "initial_soc_pct": 50}))
                for key, kind, name, params in specs:
                    device_services.device_save(Device(home=home), {
                        "serial_number": serials[key], "name": name, "device_type": kind, "parameters": params,
                        "automatic_management": True, "hub": hub})
            cycles, visits = self._events(rng, serials)

            def physics(managed: bool, cycles=cycles, visits=visits, has_battery=i % 2 == 0):
                import copy

                return HomePhysics(
                    truth, managed=managed, pv_serial=serials["pv"], cycles=copy.deepcopy(cycles),
                    battery=Battery(serials["bat"], 10.0, 3.0, 3.0, 10.0, 50.0) if has_battery else None,
                    tank=Tank(serials["wh"], 200, 2.0, 45.0, 65.0, 55.0, standing_loss_w=50.0),
                    ev=EVCharger(serials["ev"], 7.4, visits=copy.deepcopy(visits)))

            history = physics(False, cycles=[], visits=[])
            self._seed_history(home, history)
            managed, baseline = physics(True), physics(False)
            for p in (managed, baseline):  # both start where the history ended
                p.tank.temperature_c = history.tank.temperature_c
                p.meter_wh = history.meter_wh
            spec = HubSpec(hub.hub_id, hub.mqtt_username, secret, [
                {"device_serial": s, "device_type": d.device_type}
                for s, d in ((d.serial_number, d) for d in home.devices.order_by("id"))])
            self.homes.append(SimHome(home.pk, PhysicalHub(spec, broker, self.prefix, managed), managed, baseline,
                                      serials))
        self.home_ids = [h.home_id for h in self.homes]
        self.timings["create_s"] = time.perf_counter() - t0

    def _seed_history(self, home, history) -> None:
        """The home's past, as its hub would have reported it (the unoptimized home)."""
        from devices import telemetry
        from devices.models import Device

        ids = dict(Device.objects.filter(home=home).values_list("serial_number", "id"))
        rows = []
        t = self.history_start
        while t < self.start:
            outcome = history.advance(t)
            for m in history.measurements(outcome):
                rows.append((home.pk, ids.get(m.get("device_serial")), datetime.fromisoformat(m["time"]),
                             m.get("power_w"), m.get("energy_wh"), m.get("soc_pct"), m.get("temperature_c")))
            t += SLOT
        from django.db import transaction

        with transaction.atomic():
            telemetry.write_batch(rows)

    # --- inputs that arrive by themselves --------------------------------------------------------
    def _write_prices(self, day: date) -> None:
        if day in self.prices:
            return
        prices = spot_eur_per_mwh(day, self.rng)
        self.prices[day] = prices
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["start", "value", "area", "kind", "unit"])
        for t, v in prices:
            w.writerow([t.isoformat(), v, "PT", "import_price", "EUR/MWh"])
        for t, v in co2_g_per_kwh(prices):
            w.writerow([t.isoformat(), v, "PT", "co2_intensity", "g/kWh"])
        path = self.import_dir / f"spot-PT-{day.isoformat()}.csv"
        tmp = path.with_name("." + path.name)
        tmp.write_text(out.getvalue())
        tmp.rename(path)  # the importer never sees half a file

    # --- waiting for the stack --------------------------------------------------------------------
    def _busy(self, now: datetime) -> Optional[str]:
        import redis
        from django.db import connection
        from django.db.models import F

        from flexibility.planning.models import FleetRun, OptimizationRun, RunStatus
        from hub_bridge.models import CommandState, HubCommand

        r = self._redis = self._redis or redis.Redis.from_url(self.redis_url)
        # one round trip for what Redis knows (the cheap checks, most often the answer), then PostgreSQL
        pipe = r.pipeline(transaction=False)
        for q in ("default", "optimization", "hub"):
            pipe.llen(q)
        pipe.hvals("unacked")
        pipe.scan(0, match="hems:reoptimize:*", count=10000)
        *lengths, unacked, (cursor, pending) = pipe.execute()
        for q, n in zip(("default", "optimization", "hub"), lengths):
            if n:
                return f"queue {q}"
        for raw in unacked:
            try:
                _, _, routing = json.loads(raw)
            except ValueError:
                continue
            if routing in ("default", "optimization"):
                return "task running"
        if pending or cursor and next(r.scan_iter("hems:reoptimize:*", count=10000), None) is not None:
            return "re-plan pending"
        homes = self.home_ids
        commands = HubCommand.objects.filter(device__home_id__in=homes)
        checks = {  # asked of PostgreSQL in one statement: it answers slowly when the machine is loaded
            "run open": OptimizationRun.objects.filter(
                home_id__in=homes, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]),
            "fleet chunk open": FleetRun.objects.filter(started_at__gte=self.wall_start,
                                                        chunks_done__lt=F("chunks_total")),
            "command unacknowledged": commands.filter(state__in=[CommandState.QUEUED, CommandState.SENT]),
            "command not executed": commands.filter(state=CommandState.ACKNOWLEDGED, not_before__lte=now,
                                                    expires_at__gt=now),
        }
        parts, params = [], []
        for qs in checks.values():
            sql, p = qs.values("pk")[:1].query.sql_with_params()
            parts.append(f"EXISTS({sql})")
            params += p
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(parts), params)
            answers = cursor.fetchone()
        return next((why for why, yes in zip(checks, answers) if yes), None)

    def wait_quiet(self, now: datetime, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        quiet_twice = 0
        while True:
            t_check = time.perf_counter()
            ran = sum(h.hub.run_due(now) for h in self.homes)
            why = self._busy(now)
            self.busy[why or "quiet"] = self.busy.get(why or "quiet", 0.0) + time.perf_counter() - t_check
            if why is None and not ran:
                quiet_twice += 1
                if quiet_twice >= 2:  # a task may publish its follow-up just after we looked
                    return
            else:
                quiet_twice = 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stack did not settle at {now.isoformat()}: {why}")
            time.sleep(0.02)
            self.busy[why or "quiet"] += 0.02

    def wait_stored(self, at: datetime, rows: int, cycles: dict, timeout_s: float = 120.0) -> None:
        from devices.models import Cycle, Measurement

        deadline = time.monotonic() + timeout_s
        while True:
            stored = Measurement.objects.filter(time=at, home_id__in=[h.home_id for h in self.homes]).count()
            pending = [k for k, state in cycles.items()
                       if not Cycle.objects.filter(device__serial_number=k[0], sequence_id=k[1], state=state).exists()]
            if stored >= rows and not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"telemetry of {at.isoformat()}: {stored} of {rows} rows, cycles {pending}")
            time.sleep(0.02)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict:
        from devices import services as device_services
        from devices.models import Device, EVSession
        from energy_manager import clock
        from tasks.inputs import import_signal_folder, score_forecasts
        from tasks.planning import day_ahead, rolling_tick

        t0 = time.perf_counter()
        clock.set_now(self.start)
        for h in self.homes:
            h.hub.start(wait_s=None)
        for h in self.homes:
            if not h.hub.connection.connected.wait(30):
                raise ConnectionError(f"hub {h.hub.spec.hub_id} could not connect")
        ev_devices = {d.serial_number: d for d in Device.objects.filter(
            home_id__in=[h.home_id for h in self.homes], device_type="ev_charger")}
        self._write_prices(self.start.astimezone(ZONE).date())
        self._write_prices(self.first_day)
        import_signal_folder.delay()
        now, steps = self.start, 0
        while now < self.end:
            clock.set_now(now)
            lt = now.astimezone(ZONE)
            if lt.hour == 12 and lt.minute == 0:
                self._write_prices(lt.date() + timedelta(days=1))
                import_signal_folder.delay()
            if lt.hour == 3 and lt.minute == 15:
                score_forecasts.delay()
            for h in self.homes:
                for c in h.managed.appearing(now, now + SLOT):  # the household loads the machine
                    h.hub.report_cycle(c)
                for v in h.managed.ev.visits:
                    if now <= v.arrival < now + SLOT:  # ... and plugs the car in
                        device_services.ev_session_save(EVSession(device=ev_devices[h.serials["ev"]]), {
                            "arrival": v.arrival, "departure": v.departure, "energy_kwh": v.energy_kwh,
                            "vehicle_name": "Car"})
            if now.astimezone(ZONE).strftime("%H:%M") == "18:00":
                day_ahead.delay()
            rolling_tick.delay()
            t1 = time.perf_counter()
            self.wait_quiet(now)
            self.timings["quiet_s"] = self.timings.get("quiet_s", 0.0) + time.perf_counter() - t1
            # the slot happens: hubs simulate it and report it
            rows, cycles = 0, {}
            for h in self.homes:
                h.baseline.advance(now)
                outcome = h.hub.finish_slot(now)
                rows += 1 + len(outcome.device_w)  # the meter and each device, as measurements() reports
                for c in outcome.changed_cycles:
                    cycles[(c.serial, c.sequence_id)] = c.state
            now += SLOT
            clock.set_now(now)
            t1 = time.perf_counter()
            self.wait_stored(now - SLOT + timedelta(minutes=14), rows, cycles)
            self.timings["stored_s"] = self.timings.get("stored_s", 0.0) + time.perf_counter() - t1
            steps += 1
            if steps % 96 == 0:
                self.say(f"{now.isoformat()}: {steps} slots, {time.perf_counter() - t0:.0f} s")
        score_forecasts.delay((self.end - timedelta(days=1)).astimezone(ZONE).date().isoformat())
        self.wait_quiet(now)
        self.timings["loop_s"] = time.perf_counter() - t0
        self.timings["slots"] = steps
        return self.report()

    def stop(self) -> None:
        for h in self.homes:
            try:
                h.hub.stop()
            except Exception:
                h.hub.connection.client.loop_stop()

    # --- the report -------------------------------------------------------------------------------
    def report(self) -> dict:
        from devices.models import Home
        from flexibility.forecasting.models import ForecastAccuracy
        from flexibility.planning.models import RunTrigger, Schedule
        from flexibility.planning.problem_builder import site_prices
        from hub_bridge.models import CommandState, HubCommand

        # From the start: the homes start alike, and every event (EV visit, cycle) lies inside the span.
        period_start = self.start
        first_slot = 0
        slots = int((self.end - period_start) / SLOT)
        realized, baseline, planned = [], [], []
        misses = {"ev_short_at_departure": 0, "cycle_late": 0, "hot_water_below_band": 0}
        raw = {"ev_short_at_departure": 0, "cycle_late": 0, "hot_water_below_band_slots": 0}
        details: list[dict] = []  # each miss caused by the system, to trace it (at most 20)
        for n, h in enumerate(self.homes):
            home = Home.objects.get(pk=h.home_id)
            imports, exports = site_prices(home, period_start, slots)
            if imports is None or exports is None:
                raise RuntimeError(f"home {h.home_id}: prices missing over the evaluated days")

            def cost(p) -> float:
                imp = p.import_wh[first_slot:first_slot + slots]
                exp = p.export_wh[first_slot:first_slot + slots]
                return sum(i / 1000 * a - e / 1000 * b for i, e, a, b in zip(imp, exp, imports, exports))

            realized.append(cost(h.managed))
            baseline.append(cost(h.baseline))
            base_short = {(v.arrival, v.departure) for v in h.baseline.ev_misses(self.end)}
            base_late = {(c.serial, c.sequence_id) for c in h.baseline.cycle_misses(self.end)}
            for v in h.managed.ev_misses(self.end):
                raw["ev_short_at_departure"] += 1
                if (v.arrival, v.departure) not in base_short:
                    misses["ev_short_at_departure"] += 1
                    details.append({"home": n, "ev": v.arrival.isoformat(), "departure": v.departure.isoformat(),
                                    "asked_kwh": v.energy_kwh, "delivered_kwh": round(v.delivered_kwh, 2)})
            for c in h.managed.cycle_misses(self.end):
                raw["cycle_late"] += 1
                misses["cycle_late"] += (c.serial, c.sequence_id) not in base_late
            for k in range(first_slot, first_slot + slots):
                if h.managed.tank_below[k]:
                    raw["hot_water_below_band_slots"] += 1
                    if not h.baseline.tank_below[k]:
                        misses["hot_water_below_band"] += 1
                        details.append({"home": n, "tank_below": (period_start + k * SLOT).isoformat()})
            # What the day-ahead runs promised for the days they planned (their horizon: the local day).
            planned.append(sum(Schedule.objects.filter(
                home_id=h.home_id, run__trigger=RunTrigger.DAY_AHEAD, start__gte=self.start, start__lt=self.end,
            ).values_list("savings_eur", flat=True)))
        homes = [h.home_id for h in self.homes]
        commands = HubCommand.objects.filter(device__home_id__in=homes)
        counts = {s: commands.filter(state=s).count() for s in CommandState.values}
        due = commands.filter(not_before__lt=self.end)
        lost = due.filter(state__in=[CommandState.EXPIRED, CommandState.FAILED, CommandState.REJECTED,
                                     CommandState.QUEUED, CommandState.SENT]).count() + \
            due.filter(state=CommandState.ACKNOWLEDGED, expires_at__lte=self.end).count()
        forecasts = {}
        for kind in ("load_forecast", "pv_forecast", "heat_demand"):
            per_home = {}
            for home_id, mae, naive in ForecastAccuracy.objects.filter(home_id__in=homes, kind=kind).values_list(
                    "home_id", "mae_w", "naive_mae_w"):
                per_home.setdefault(home_id, []).append((mae, naive))
            maes = [statistics.mean(m for m, _ in v) for v in per_home.values()]
            naives = {k: [n for _, n in v if n is not None] for k, v in per_home.items()}
            compared = {k: (statistics.mean(m for m, n in per_home[k] if n is not None), statistics.mean(n))
                        for k, n in naives.items() if n}
            forecasts[kind] = {
                "homes": len(per_home), "mae_w": round(statistics.mean(maes), 1) if maes else None,
                "naive_mae_w": round(statistics.mean(n for _, n in compared.values()), 1) if compared else None,
                "homes_better_than_naive": sum(m < n for m, n in compared.values()),
                "homes_compared": len(compared)}
        realized_savings = sum(baseline) - sum(realized)
        planned_savings = sum(planned)
        return {
            "bench": "closed_loop", "homes": len(self.homes), "days": self.config.days,
            "first_day": self.first_day.isoformat(), "slots_simulated": self.timings.get("slots"),
            "wall_s": round(self.timings.get("loop_s", 0.0), 1), "create_s": round(self.timings.get("create_s", 0), 1),
            "waiting_s": {"stack_quiet": round(self.timings.get("quiet_s", 0.0), 1),
                          "telemetry_stored": round(self.timings.get("stored_s", 0.0), 1),
                          **{k: round(v, 1) for k, v in sorted(self.busy.items())}},
            "comfort_misses_by_system": misses, "comfort_misses_raw": raw, "miss_details": details[:20],
            "commands": {"total": commands.count(), **{k: v for k, v in counts.items() if v}, "lost": lost},
            "cost_eur": {"baseline": round(sum(baseline), 2), "realized": round(sum(realized), 2)},
            "savings_eur": {"realized": round(realized_savings, 2), "planned_day_ahead": round(planned_savings, 2),
                            "realized_share_of_planned": round(realized_savings / planned_savings, 3)
                            if planned_savings > 0 else None},
            "forecasts": forecasts, "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        }


def stack_env(redis_url: str, import_dir: Path, mqtt_env: dict) -> dict:
    """What every process of the loop needs: the simulated clock, the drop folder, no debounce wait, and a
    relay that does not linger: its default second of polling the outbox every 10 ms after each burst (for a
    steady stream of commands) spanned most of a simulated slot and took CPU from the workers."""
    return {**mqtt_env, "HEMS_SIMULATED_CLOCK": redis_url, "SIGNAL_IMPORT_DIR": str(import_dir),
            "OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S": "0", "CELERY_BROKER_URL": redis_url, "MQTT_RELAY_LINGER_S": "0.05"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=50)
    parser.add_argument("--days", type=float, default=7, help="planned days after the start's day")
    parser.add_argument("--start-hour", type=float, default=12.0, help="local hour of the start, the day before")
    parser.add_argument("--history-days", type=int, default=15, help="telemetry before the loop (LightGBM: >= 14)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the optimization/default worker")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--log-level", default="WARNING",
                        help="of the workers (INFO: every task with its time, every rolling re-plan with its reasons)")
    parser.add_argument("--trace", type=Path, default=None,
                        help="pickle each home's simulated physics (managed, baseline) here, to trace a miss")
    args = parser.parse_args(argv)
    redis_url = os.environ.get("CELERY_BROKER_URL")
    if not redis_url:
        parser.error("set CELERY_BROKER_URL (a Redis database of its own: queues and the simulated clock)")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # stopped: still stop the processes it started
    import_dir = Path(tempfile.mkdtemp(prefix="loop-signals-"))
    os.environ.update({"HEMS_SIMULATED_CLOCK": redis_url, "SIGNAL_IMPORT_DIR": str(import_dir),
                       "OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S": "0"})
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.plugins.celery_worker import CeleryWorker, purge_queues, use_broker
    from tests.plugins.mqtt import Broker, ListenerProcess

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    call_command("migrate", verbosity=0)
    prefix = f"loop_{uuid.uuid4().hex[:8]}"
    broker = Broker(Path(tempfile.mkdtemp(prefix="loop-mosquitto-")), prefix).start()
    mqtt_env = {"MQTT_URL": broker.url("relay"), "MQTT_LISTENER_URL": broker.url("listener"),
                "MQTT_TOPIC_PREFIX": prefix, "MQTT_LISTENER_GROUP": f"{prefix}-l", "LOG_LEVEL": args.log_level}
    env = stack_env(redis_url, import_dir, mqtt_env)
    settings.MQTT_URL, settings.MQTT_TOPIC_PREFIX = env["MQTT_URL"], prefix
    purge_queues(["hub", "default", "optimization"], redis_url)
    undo = use_broker(redis_url)
    loop = ClosedLoop(Config(args.homes, args.days, args.history_days, args.seed, workers=args.workers,
                             start_hour=args.start_hour),
                      broker.url(), prefix, import_dir, redis_url, say)
    workers, listener = [], None
    try:
        say(f"creating {args.homes} homes with {args.history_days} days of history")
        loop.create_homes()
        broker.sync_credentials()
        workers.append(CeleryWorker(["optimization", "default"], args.workers, env=env, name="loop",
                                    broker=redis_url).start())
        workers.append(CeleryWorker(["hub"], 1, env=env, name="loop-hub", broker=redis_url).start())
        listener = ListenerProcess({**env, "LOG_LEVEL": "INFO"}).start()
        say(f"running {loop.start.isoformat()} .. {loop.end.isoformat()}")
        report = loop.run()
        print(json.dumps(report), flush=True)
        if args.trace:
            import pickle

            args.trace.write_bytes(pickle.dumps([(h.home_id, h.managed, h.baseline) for h in loop.homes]))
    finally:
        loop.stop()
        if listener:
            listener.stop()
        for w in workers:
            w.stop()
        broker.stop()
        undo()
        purge_queues(["hub", "default", "optimization"], redis_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
