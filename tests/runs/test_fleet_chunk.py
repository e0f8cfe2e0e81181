"""A chunk of the day-ahead fan-out: homes solved in the chunk's task, their outcomes stored together, a
home with bad data failing alone with its reason, a redelivered chunk doing nothing twice."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.factories.homes import seed_area_signals, seed_standard_home
from devices.models import Device, DeviceType
from flexibility.planning import services
from flexibility.planning.models import FleetRun, OptimizationRun, RunStatus, Schedule

pytestmark = pytest.mark.django_db

LISBON = ZoneInfo("Europe/Lisbon")


def _tomorrow():
    day = (timezone.now().astimezone(LISBON) + timedelta(days=1)).date()
    return day, datetime(day.year, day.month, day.day, tzinfo=LISBON).astimezone(dt_timezone.utc)


def _homes(owner, n, now, prefix="chunk"):
    return [seed_standard_home(owner, f"{prefix} {i}", now) for i in range(n)]


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

    assert out == {"submitted": 5, "missing_data": 0, "error": 1}  # the chunk forecasts the home without one
    runs = {r.home_id: r for r in OptimizationRun.objects.filter(fleet_run=fleet)}
    assert all(runs[h.pk].status == RunStatus.SUCCEEDED and runs[h.pk].attempts == 1 for h in good)
    assert Schedule.objects.filter(run__fleet_run=fleet).count() == 5
    assert runs[no_forecast.pk].status == RunStatus.SUCCEEDED, runs[no_forecast.pk].error
    assert runs[bad_device.pk].status == RunStatus.FAILED and "KeyError" in runs[bad_device.pk].error and "soc" in runs[bad_device.pk].error
    assert FleetRun.objects.get(pk=fleet.pk).chunks_done == 1

    # A redelivered chunk finds every home done.
    assert services.plan_fleet_chunk(fleet.pk, ids) == {"submitted": 0, "missing_data": 0, "error": 0}
    assert OptimizationRun.objects.filter(fleet_run=fleet).count() == len(ids)


def _build_all(homes, start, end):
    from flexibility.planning import problem_builder

    homes = list(type(homes[0]).objects.filter(pk__in=[h.pk for h in homes]).select_related("tariff"))
    inputs = problem_builder.load_inputs(homes, start, end)
    out = {}
    for home in homes:
        try:
            out[home.pk] = problem_builder.build_problem(home, start, end, inputs=inputs[home.pk])
        except problem_builder.MissingData as exc:
            out[home.pk] = exc
    return out


def test_the_problems_of_a_chunk_take_the_same_queries_for_any_number_of_homes(owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from devices.models import Home, Measurement
    from devices.services import record_measurements
    from flexibility.planning import problem_builder

    day, start = _tomorrow()
    end = start + timedelta(hours=24)
    seed_area_signals(start - timedelta(hours=1))
    homes = _homes(owner, 6, start)
    for i, home in enumerate(homes):  # a measured battery in every home: its state of charge is read too
        battery = Device.objects.create(home=home, serial_number=f"BAT-{i}", name="Battery",
                                        device_type=DeviceType.BATTERY,
                                        parameters={"capacity_kwh": 10, "max_charge_kw": 3, "max_discharge_kw": 3,
                                                    "initial_soc_pct": 50})
        record_measurements([{"home": home, "device": battery, "time": timezone.now() - timedelta(minutes=5),
                              "soc_pct": 40.0 + i}])
    no_tariff = homes[-1]
    Home.objects.filter(pk=no_tariff.pk).update(tariff=None)

    counts = []
    for group in (homes[:2], homes):
        with CaptureQueriesContext(connection) as ctx:
            problems = _build_all(group, start, end)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] <= 10, counts  # homes, devices, windows, cycles, EV sessions, signals x2,
    # minimum states, circuits, readings (a circuits' devices prefetch only where a home has a circuit)

    # Each problem is the one the home gets alone, and the home without a tariff fails alone with its reason.
    for i, home in enumerate(homes[:-1]):
        alone = problem_builder.build_problem(home, start, end)
        assert problems[home.pk] == alone
        assert alone["batteries"][0]["initial_soc_pct"] == 40.0 + i  # the measured state, not the parameter
    assert isinstance(problems[no_tariff.pk], problem_builder.MissingData)
    assert "tariff" in problems[no_tariff.pk].fields
    assert Measurement.objects.count() == 6


def test_the_rows_read_before_forecasting_with_the_forecasts_stored_build_what_a_new_read_builds(owner):
    """A chunk reads its homes' rows once: the forecasts it stores take the place of the series they replace
    in those rows, so each problem is the one built from a fresh read."""
    from flexibility.planning import problem_builder
    from flexibility.planning.services.runs import ensure_forecasts_many
    from devices.models import Home, SignalKind, SignalSeries

    day, start = _tomorrow()
    end = start + timedelta(hours=24)
    seed_area_signals(start - timedelta(hours=1))
    homes = _homes(owner, 3, start)
    Device.objects.create(home=homes[0], serial_number="PV-1", name="PV", device_type=DeviceType.PV,
                          parameters={"peak_power_kw": 4.0, "latitude": 38.72, "longitude": -9.14})
    homes = list(Home.objects.filter(pk__in=[h.pk for h in homes]).select_related("tariff"))
    factory = set(SignalSeries.objects.filter(home__in=homes, kind=SignalKind.LOAD_FORECAST).values_list("pk", flat=True))

    inputs = ensure_forecasts_many({h.pk: (h, start, end) for h in homes}, refresh=True)

    assert not SignalSeries.objects.filter(pk__in=factory).exists()  # replaced by the chunk's forecasts
    assert all(s.pk not in factory for h in homes for s in inputs[h.pk].signals)
    assert any(s.kind == SignalKind.PV_FORECAST for s in inputs[homes[0].pk].signals)
    for home in homes:
        assert problem_builder.build_problem(home, start, end, inputs=inputs[home.pk]) == \
            problem_builder.build_problem(home, start, end)
