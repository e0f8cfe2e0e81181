"""Seed the demo (idempotent: running it again updates, never duplicates).

Users: demo@example.com / demo-password-2026 (household) and
operator@example.com / operator-password-2026 (staff, superuser).
The household: a home, its hub and six devices (the battery under automatic management, so
its plans go to the hub as commands), a washing cycle, an EV session, signals for today and tomorrow and a
month of telemetry. Then the grid side: the household's day-ahead plan for tomorrow and the offer built
around it, a portfolio with the home, an aggregator's service account and one activation at tomorrow's
evening peak, re-planned as in production (tasks run in-process without a broker).
"""
from __future__ import annotations

import json
import math
import random
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from devices import services
from devices.device_parameters import EXAMPLE_PARAMETERS
from energy_manager.errors import DomainError
from flexibility.grid import services as grid
from flexibility.grid.models import Activation, ActivationMode, FlexibilityOffer, Portfolio, ServiceAccount
from flexibility.planning import services as planning
from flexibility.planning.models import OptimizationRun, RunStatus, RunTrigger
from flexibility.planning.problem_builder import MissingData
from flexibility.planning.slots import local_day_horizon
from hub_bridge.models import HubCommand
from devices.models import (
    Cycle, CycleState, Device, EVSession, Home, Hub, Measurement, MeasurementRollup, SignalKind, Tariff, TariffKind,
)
from devices.tariffs import price_series

DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "demo-password-2026"
OPERATOR_EMAIL, OPERATOR_PASSWORD = "operator@example.com", "operator-password-2026"
HUB_ID = "DEMO-HUB-001"
AREA = "PT"
RESOLUTION_MIN = 15
TELEMETRY_DAYS = 31  # past local days of demo telemetry, so statistics have a month to show
TELEMETRY_STEP = timedelta(minutes=5)
REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference" / "flexihome-default-data.json"
WASHING_PROGRAM = "Hotpoint_FabricCare_WPR4LLLG8NWD4/WashCycleAntiStain-13"

# Built-in fallbacks (the FlexiHome default data's shapes) when the reference file is absent.
BUILTIN_WASHING_PHASES = [
    {"duration_min": 4.0, "max_power_w": 400.0}, {"duration_min": 47.0, "max_power_w": 2600.0},
    {"duration_min": 21.0, "max_power_w": 1000.0}, {"duration_min": 3.0, "max_power_w": 400.0},
]
BUILTIN_LOAD_PER_UNIT = [0.21, 0.11, 0.10, 0.09, 0.10, 0.22, 0.37, 0.58, 0.54, 0.45, 0.37, 0.39,
                         0.44, 0.44, 0.30, 0.29, 0.41, 0.49, 0.60, 0.59, 0.51, 0.42, 0.28, 0.25]
BUILTIN_CO2 = [58, 54, 56, 72, 56, 65, 64, 63, 52, 57, 54, 53, 49, 54, 67, 73, 62, 60, 55, 56, 63, 59, 63, 73]

AUTOMATIC = {"battery"}  # the hub follows its plans without asking
PORTFOLIO_CODE = "demo-feeder"
AGGREGATOR = "demo-aggregator"
DEVICES = [
    ("DEMO-DW-1", "Dishwasher", "Bosch", "dishwasher"),
    ("DEMO-WM-1", "Washing machine", "Hotpoint", "washing_machine"),
    ("DEMO-EV-1", "EV charger", "Wallbox", "ev_charger"),
    ("DEMO-BAT-1", "Home battery", "BYD", "battery"),
    ("DEMO-PV-1", "Rooftop PV", "SMA", "pv"),
    ("DEMO-WH-1", "Water heater", "Ariston", "water_heater"),
]


# Hot water drawn from the tank per local hour (W thermal): showers 07-09, dishes and baths 19-22,
# standing use otherwise; about 5.5 kWh a day, a typical household's hot water.
HOT_WATER_DRAW_W = [50.0] * 7 + [1500.0, 1000.0] + [50.0] * 10 + [700.0, 900.0, 500.0] + [50.0] * 2


def _reference() -> dict[str, Any] | None:
    try:
        return json.loads(REFERENCE.read_text())
    except (OSError, ValueError):
        return None


def local_day_slots(day: date, tz) -> tuple[datetime, int]:
    """First instant of the local day and its number of quarter-hours (92/96/100 across DST)."""
    # Subtract in UTC: Python subtracts same-zone aware datetimes by wall clock, hiding the DST hour.
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(dt_timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(dt_timezone.utc)
    return start, int((end - start).total_seconds() // (RESOLUTION_MIN * 60))


def _by_local_hour(start: datetime, slots: int, tz, hourly: list[float]) -> list[float]:
    step = timedelta(minutes=RESOLUTION_MIN)
    return [float(hourly[(start + i * step).astimezone(tz).hour]) for i in range(slots)]


def _pv_shape(start: datetime, slots: int, tz, peak_w: float) -> list[float]:
    """A clear-sky bell between 07:00 and 20:00 local (illustrative, not a weather forecast)."""
    step = timedelta(minutes=RESOLUTION_MIN)
    out = []
    for i in range(slots):
        local = (start + i * step + step / 2).astimezone(tz)
        hour = local.hour + local.minute / 60
        out.append(round(max(0.0, math.sin(math.pi * (hour - 7) / 13)) * peak_w * 0.8, 1))
    return out


class Command(BaseCommand):
    help = "Create or refresh the demo household, its devices, tariffs and a day of signals (idempotent)."

    def handle(self, *args, **options) -> None:
        home, operator = self._household()  # committed: its re-plans ran (in-process) before the grid side
        self._grid(home, operator)

    @transaction.atomic
    def _household(self) -> tuple[Home, Any]:
        ref = _reference()
        User = get_user_model()
        demo = self._user(User, DEMO_EMAIL, DEMO_PASSWORD, staff=False)
        operator = self._user(User, OPERATOR_EMAIL, OPERATOR_PASSWORD, staff=True)

        tariff = Tariff.objects.get(code="pt-tri-hourly-daily")
        home = Home.objects.filter(owner=demo, name="Demo household").first() or Home(owner=demo)
        home = services.home_save(home, {
            "name": "Demo household", "timezone": "Europe/Lisbon", "country": "PT", "contracted_power_kva": "6.90",
            "export_limit_kw": "3.45", "tariff_kind": TariffKind.TRI_HOURLY, "tariff": tariff,
            "global_optimizer_opt_in": True,
        }, do_not_disturb=[{"weekday": d, "start_time": time(23), "end_time": time(7)} for d in range(7)])

        hub = Hub.objects.filter(hub_id=HUB_ID).first()
        if hub is None:
            hub, secret = services.hub_register(hub_id=HUB_ID, home=home, firmware_version="demo-1.0")
            self.stdout.write(f"Hub {HUB_ID}: MQTT user {hub.mqtt_username}, secret {secret} (shown once)")
        elif hub.home_id != home.pk:
            hub = services.hub_claim(hub_id=HUB_ID, home=home)

        devices = {}
        for serial, name, brand, dtype in DEVICES:
            device = Device.objects.filter(home=home, serial_number=serial).first() or Device(home=home)
            devices[dtype] = services.device_save(device, {
                "serial_number": serial, "name": name, "brand": brand, "device_type": dtype, "hub": hub,
                "parameters": dict(EXAMPLE_PARAMETERS[dtype]), "allow_hems": True,
                "automatic_management": dtype in AUTOMATIC,
            })
        services.comfort_save(devices["battery"], {"battery_reserve_pct": 20})
        services.comfort_save(devices["water_heater"], {"temperature_min_c": 45, "temperature_max_c": 60})

        tz = home.tzinfo
        today = timezone.now().astimezone(tz).date()
        self._washing_cycle(devices["washing_machine"], ref, tz, today)
        self._ev_session(devices["ev_charger"], tz, today)
        for day in (today, today + timedelta(days=1)):
            self._signals(home, devices["pv"], devices["water_heater"], ref, tz, day, tariff)
        written = self._telemetry(home, devices, ref, tz, today)

        self.stdout.write(self.style.SUCCESS(
            f"Demo household ready: home {home.pk}, hub {HUB_ID}, {len(devices)} devices, signals for "
            f"{today} and {today + timedelta(days=1)} ({'FlexiHome reference data' if ref else 'built-in data'}), "
            f"{written} telemetry rows written."
        ))
        return home, operator

    def _grid(self, home: Home, operator) -> None:
        """Tomorrow's day-ahead plan (which builds the home's offer), a portfolio, an aggregator and an
        activation asking the portfolio to import less at tomorrow's evening peak."""
        tomorrow = timezone.now().astimezone(home.tzinfo).date() + timedelta(days=1)
        start, end = local_day_horizon(home, tomorrow)
        if not OptimizationRun.objects.filter(home=home, trigger=RunTrigger.DAY_AHEAD, horizon_start=start,
                                              status=RunStatus.SUCCEEDED).exists():
            try:
                planning.submit_run(home, trigger=RunTrigger.DAY_AHEAD, horizon_start=start, horizon_end=end)
            except MissingData as exc:
                self.stderr.write(f"No day-ahead plan for {tomorrow}: {exc}")
        portfolio, _ = Portfolio.objects.get_or_create(
            code=PORTFOLIO_CODE, defaults={"name": "Demo feeder", "description": "The demo household's feeder."})
        portfolio.homes.add(home)
        if not ServiceAccount.objects.filter(name=AGGREGATOR).exists():
            _, key = grid.create_service_account(AGGREGATOR, portfolios=[portfolio])
            self.stdout.write(f"Service account {AGGREGATOR}: API key {key} (shown once)")
        offer = FlexibilityOffer.objects.filter(home=home, delivery_day=tomorrow).first()
        if offer is None:
            self.stderr.write(f"No offer for {tomorrow} (the day-ahead plan did not succeed): no activation.")
            return
        if Activation.objects.filter(portfolio=portfolio, delivery_day=tomorrow).exists():
            return
        peak = datetime.combine(tomorrow, time(19), tzinfo=home.tzinfo).astimezone(dt_timezone.utc)
        first = int((peak - offer.start).total_seconds() // (offer.resolution_minutes * 60))
        setpoints = [round((offer.baseline_kw[t] + offer.min_kw[t]) / 2, 3) for t in range(first, first + 4)]
        try:
            activation = grid.create_activation(operator, start=peak, requested_min_kw=setpoints,
                                                requested_max_kw=setpoints, mode=ActivationMode.SETPOINT,
                                                portfolio=portfolio, external_id="demo-evening-peak")
        except DomainError as exc:
            self.stderr.write(f"No demo activation: {exc}")
            return
        activation.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(
            f"Grid side ready: portfolio {PORTFOLIO_CODE}, offer for {tomorrow}, activation {activation.pk} "
            f"({activation.status}), {HubCommand.objects.filter(device__home=home).count()} hub commands."))

    def _user(self, User, email: str, password: str, staff: bool):
        user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
        user.email, user.is_staff, user.is_superuser = email, staff, staff
        user.set_password(password)
        user.save()
        return user

    def _washing_cycle(self, device: Device, ref, tz, today: date) -> None:
        program = "eco 40 (built-in)"
        phases = BUILTIN_WASHING_PHASES
        if ref and WASHING_PROGRAM in ref.get("appliance_cycles", {}):
            program = WASHING_PROGRAM.split("/")[-1]
            raw = sorted(ref["appliance_cycles"][WASHING_PROGRAM]["phases"], key=lambda p: p["order"])
            phases = [{"duration_min": p["duration_min"], "max_power_w": p["max_power_w"]} for p in raw]
        # The next 06:00-23:00 local window that still has room for the program.
        day = today
        duration = timedelta(minutes=sum(p["duration_min"] for p in phases))
        if timezone.now() + duration > datetime.combine(today, time(23), tzinfo=tz):
            day = today + timedelta(days=1)
        earliest = max(datetime.combine(day, time(6), tzinfo=tz), timezone.now().replace(microsecond=0))
        cycle = Cycle.objects.filter(device=device, sequence_id="demo-washing").first() or Cycle(device=device)
        services.cycle_save(cycle, {
            "sequence_id": "demo-washing", "program": program, "earliest_start": earliest,
            "latest_end": datetime.combine(day, time(23), tzinfo=tz), "scheduled_start": None,
            "state": CycleState.SCHEDULED, "power_profile": phases,
        })

    def _ev_session(self, device: Device, tz, today: date) -> None:
        session = EVSession.objects.filter(device=device, vehicle_name="Demo car").first() or EVSession(device=device)
        # Plugged in at 19:00, leaving at 07:30: until 01:30 that is the car of last evening, already plugged
        # in with six hours or more to charge; later, tonight's (a plan asks a car leaving after its horizon
        # the share of its energy the horizon bears). Last evening's car seeded at 05:00 could not take its
        # energy in what is left of the night.
        evening = today - timedelta(days=1) if timezone.now().astimezone(tz).time() < time(1, 30) else today
        services.ev_session_save(session, {
            "vehicle_name": "Demo car", "arrival": datetime.combine(evening, time(19), tzinfo=tz),
            "departure": datetime.combine(evening + timedelta(days=1), time(7, 30), tzinfo=tz),
            "energy_kwh": None, "initial_soc_pct": 35, "target_soc_pct": 80, "vehicle_capacity_kwh": 60,
        })

    def _signals(self, home: Home, pv: Device, water_heater: Device, ref, tz, day: date, tariff: Tariff) -> None:
        start, slots = local_day_slots(day, tz)
        load_per_unit = ref["load_profile_per_unit_hourly"] if ref else BUILTIN_LOAD_PER_UNIT
        co2 = ref["co2_g_per_kwh_hourly"] if ref else BUILTIN_CO2
        source = "FlexiHome default data" if ref else "built-in demo data"
        kva = float(home.contracted_power_kva)
        services.replace_signal(SignalKind.IMPORT_PRICE, start, RESOLUTION_MIN,
                                price_series(tariff.periods, start, slots, RESOLUTION_MIN, home.timezone),
                                home=home, source=f"tariff {tariff.code}")
        services.replace_signal(SignalKind.CO2_INTENSITY, start, RESOLUTION_MIN, _by_local_hour(start, slots, tz, co2),
                                area=AREA, source=source)
        services.replace_signal(SignalKind.LOAD_FORECAST, start, RESOLUTION_MIN,
                                [round(v * kva * 1000, 1) for v in _by_local_hour(start, slots, tz, load_per_unit)],
                                home=home, source=f"{source}, per-unit profile x {kva} kVA")
        peak_w = float(pv.parameters["peak_power_kw"]) * 1000
        services.replace_signal(SignalKind.PV_FORECAST, start, RESOLUTION_MIN, _pv_shape(start, slots, tz, peak_w),
                                home=home, device=pv, source="clear-sky shape (demo)")
        services.replace_signal(SignalKind.HEAT_DEMAND, start, RESOLUTION_MIN,
                                _by_local_hour(start, slots, tz, HOT_WATER_DRAW_W),
                                home=home, device=water_heater, source="hot-water draws: morning showers, evening (demo)")

    def _telemetry(self, home: Home, devices: dict[str, Device], ref, tz, today: date) -> int:
        """A month of made-up but physically consistent telemetry, every 5 minutes up to now: base load,
        PV (cloudiness varies by day), a water heater on a timer, night EV charging on weekdays and a
        battery storing the PV surplus for the evening. The grid meter is their sum. Days that already
        have meter data are left alone, so seeding again adds only the days since."""
        load_per_unit = ref["load_profile_per_unit_hourly"] if ref else BUILTIN_LOAD_PER_UNIT
        co2 = ref["co2_g_per_kwh_hourly"] if ref else BUILTIN_CO2
        kva_w = float(home.contracted_power_kva) * 1000
        peak_w = float(devices["pv"].parameters["peak_power_kw"]) * 1000
        battery = devices["battery"].parameters
        capacity_wh = float(battery["capacity_kwh"]) * 1000
        reserve_wh = capacity_wh * 0.2
        now = timezone.now()
        rows: list[Measurement] = []
        for back in range(TELEMETRY_DAYS, -1, -1):
            day = today - timedelta(days=back)
            start, slots = local_day_slots(day, tz)
            if back:  # area CO2 for past days (today's comes with the signals above)
                services.replace_signal(SignalKind.CO2_INTENSITY, start, RESOLUTION_MIN,
                                        _by_local_hour(start, slots, tz, co2), area=AREA, source="demo history")
            end = start + timedelta(minutes=RESOLUTION_MIN * slots)
            if MeasurementRollup.objects.filter(home=home, device__isnull=True, slot_start__gte=start,
                                                slot_start__lt=end).exists():
                continue
            # Raw rows without roll-ups come from a demo database seeded before the roll-ups (SQLite's
            # migration leaves them empty): that day is written again, through the writer.
            Measurement.objects.filter(home=home, time__gte=start, time__lt=end).delete()
            rng = random.Random(day.toordinal())
            sun = rng.uniform(0.25, 1.0)
            soc_wh = capacity_wh * 0.5
            t = start
            while t < min(end, now):
                local = t.astimezone(tz)
                hour = local.hour + local.minute / 60
                base = load_per_unit[local.hour] * kva_w * rng.uniform(0.8, 1.2)
                pv = max(0.0, math.sin(math.pi * (hour - 7) / 13)) * peak_w * 0.8 * sun
                heater = 2000.0 if 3 <= hour < 4 or 14 <= hour < 14.5 else 0.0
                ev = 3680.0 if day.weekday() < 5 and 1 <= hour < 5 else 0.0
                surplus = pv - base - heater
                if surplus > 0:
                    bat = min(surplus, 2500.0, (capacity_wh - soc_wh) * 12)
                elif 18 <= hour < 23:
                    bat = -min(-surplus + ev, 2500.0, max(0.0, soc_wh - reserve_wh) * 12)
                else:
                    bat = 0.0
                soc_wh += bat / 12
                meter = base + heater + ev + bat - pv
                rows += [
                    Measurement(home=home, time=t, power_w=round(meter, 1)),
                    Measurement(home=home, device=devices["pv"], time=t, power_w=round(-pv, 1)),
                    Measurement(home=home, device=devices["battery"], time=t, power_w=round(bat, 1),
                                soc_pct=round(100 * soc_wh / capacity_wh, 1)),
                    Measurement(home=home, device=devices["water_heater"], time=t, power_w=heater),
                    Measurement(home=home, device=devices["ev_charger"], time=t, power_w=ev),
                ]
                t += TELEMETRY_STEP
        # Through the one telemetry writer, so that the 15-minute roll-ups the statistics read are filled.
        return services.record_measurements(rows)
