"""A chunk of the day-ahead fan-out: rows read with a fixed number of queries, homes solved in the
chunk's task, a home with bad data failing alone with its reason, a redelivered chunk doing nothing twice."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories.homes import seed_area_signals, seed_standard_home
from devices.models import Device, DeviceType
from flexibility.planning import problem_builder, services, slots
from flexibility.planning.models import FleetRun, OptimizationRun, RunStatus, Schedule

pytestmark = pytest.mark.django_db

LISBON = ZoneInfo("Europe/Lisbon")


def _tomorrow():
    day = (timezone.now().astimezone(LISBON) + timedelta(days=1)).date()
    return day, datetime(day.year, day.month, day.day, tzinfo=LISBON).astimezone(dt_timezone.utc)


def _homes(owner, n, now, prefix="chunk"):
    return [seed_standard_home(owner, f"{prefix} {i}", now) for i in range(n)]


def test_problems_of_many_homes_take_the_queries_of_one_and_equal_one_by_one(owner):
    day, now = _tomorrow()
    seed_area_signals(now - timedelta(hours=1))
    homes = _homes(owner, 9, now)
    for home in homes[:3]:  # stateful devices: their last reading is read in the same query
        Device.objects.create(home=home, serial_number="BAT-1", name="Battery", device_type=DeviceType.BATTERY,
                              parameters={"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5,
                                          "initial_soc_pct": 50})
    counts = []
    for group in (homes[:2], homes):
        horizons = {h.pk: slots.local_day_horizon(h, day) for h in group}
        start, end = min(s for s, _ in horizons.values()), max(e for _, e in horizons.values())
        with CaptureQueriesContext(connection) as queries:
            inputs = problem_builder.load_inputs(group, start, end)
            problems = {h.pk: problem_builder.build_problem(h, *horizons[h.pk], inputs=inputs[h.pk]) for h in group}
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 8, counts
    for home in homes:
        assert problem_builder.build_problem(home, *slots.local_day_horizon(home, day)) == problems[home.pk]


def test_a_chunk_plans_its_homes_and_a_broken_one_fails_alone_with_its_reason(owner):
    day, now = _tomorrow()
    seed_area_signals(now - timedelta(hours=1))
    good = _homes(owner, 4, now)
    no_forecast = seed_standard_home(owner, "no forecast", now, with_load=False)
    bad_device = seed_standard_home(owner, "bad battery", now)
    Device.objects.create(home=bad_device, serial_number="BAT-X", name="Battery", device_type=DeviceType.BATTERY,
                          parameters={})  # written around validation: no parameters at all
    ids = [h.pk for h in good + [no_forecast, bad_device]]
    fleet = FleetRun.objects.create(delivery_day=day, homes=len(ids), chunks_total=1)

    out = services.plan_fleet_chunk(fleet.pk, ids)

    assert out == {"submitted": 4, "missing_data": 1, "error": 1}
    runs = {r.home_id: r for r in OptimizationRun.objects.filter(fleet_run=fleet)}
    assert all(runs[h.pk].status == RunStatus.SUCCEEDED and runs[h.pk].attempts == 1 for h in good)
    assert Schedule.objects.filter(run__fleet_run=fleet).count() == 4
    assert runs[no_forecast.pk].status == RunStatus.FAILED and "load forecast" in runs[no_forecast.pk].error
    assert runs[bad_device.pk].status == RunStatus.FAILED and "KeyError" in runs[bad_device.pk].error and "soc" in runs[bad_device.pk].error
    assert FleetRun.objects.get(pk=fleet.pk).chunks_done == 1

    # A redelivered chunk finds every home done.
    assert services.plan_fleet_chunk(fleet.pk, ids) == {"submitted": 0, "missing_data": 0, "error": 0}
    assert OptimizationRun.objects.filter(fleet_run=fleet).count() == len(ids)
