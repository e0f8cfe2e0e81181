"""Telemetry and stored plans with numbers chosen so that statistics can be checked by hand.

DAY is a winter day, so Lisbon's local time is UTC: the tri-hourly tariff's off-peak (0.1044 EUR/kWh)
runs 00:00-08:00 and 22:00-24:00, peak (0.2337) 09:00-10:30 and 18:00-20:30, mid (0.1696) the rest.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest

from devices import services as device_services
from devices.models import Home, Measurement, SignalKind
from flexibility.planning.models import OptimizationRun, RunStatus, Schedule

DAY = date(2026, 11, 10)
OFF_PEAK, MID, PEAK = 0.1044, 0.1696, 0.2337


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt_timezone.utc)


def price_at_hour(hour: float) -> float:
    """The tri-hourly tariff, written out again so that tests do not check the code against itself."""
    if hour < 8 or hour >= 22:
        return OFF_PEAK
    if 9 <= hour < 10.5 or 18 <= hour < 20.5:
        return PEAK
    return MID


def meter(home: Home, start: datetime, slots: int, power_w: float, device=None, every_min: int = 5) -> None:
    """Samples every `every_min` minutes over `slots` quarter-hours from `start`."""
    rows = [Measurement(home=home, device=device, time=start + timedelta(minutes=m), power_w=power_w)
            for m in range(0, slots * 15, every_min)]
    device_services.record_measurements(rows)


def co2_day(day: date, value: float) -> None:
    device_services.replace_signal(SignalKind.CO2_INTENSITY, at(day, 0), 15, [value] * 96, area="PT")


def stored_plan(home: Home, start: datetime, slots: int, made: datetime, baseline_cost_eur: float,
                savings_eur: float, status: str = RunStatus.SUCCEEDED, net_import_kw=None) -> Schedule:
    end = start + timedelta(minutes=15 * slots)
    run = OptimizationRun.objects.create(home=home, status=status, input_hash="x", problem={},
                                         horizon_start=start, horizon_end=end)
    schedule = Schedule.objects.create(
        run=run, home=home, start=start, resolution_minutes=15, slots=slots, cost_eur=baseline_cost_eur - savings_eur,
        co2_kg=0.0, baseline_cost_eur=baseline_cost_eur, baseline_co2_kg=0.0, savings_eur=savings_eur,
        net_import_kw=net_import_kw or [0.0] * slots, devices={})
    Schedule.objects.filter(pk=schedule.pk).update(created_at=made)
    return schedule


@pytest.fixture
def winter_home(home) -> Home:
    assert home.timezone == "Europe/Lisbon" and home.tariff.code == "pt-tri-hourly-daily"
    return home
