"""Statistics read the 15-minute roll-ups: the same answers as from the raw rows, on DST days (92 and 100
quarter-hours), on today's open slot, with late rows, and still there after the raw rows are gone."""
from __future__ import annotations

import functools
import random
from datetime import date, datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from devices import telemetry
from devices.models import Measurement, MeasurementRollup
from devices.models import SignalKind
from devices.services import record_measurements, replace_signal
from flexibility.grid.models import Portfolio
from insights import selectors
from insights.selectors import Period, home_series, home_statistics, portfolio_statistics

from .conftest import co2_day, stored_plan

pytestmark = pytest.mark.django_db

LISBON = ZoneInfo("Europe/Lisbon")
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)  # 92 and 100 quarter-hours in Lisbon


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LISBON).astimezone(dt_timezone.utc)


def irregular_samples(rng: random.Random, home, device, start: datetime, end: datetime, *, sign: float) -> list:
    """Samples 1-9 minutes apart with hour-long gaps, a few without power, some on slot boundaries."""
    rows, t = [], start
    while t < end:
        if rng.random() < 0.03:
            t += timedelta(hours=1)  # the hub was offline: those slots have no data
            continue
        power = None if rng.random() < 0.05 else round(sign * rng.uniform(-800.0, 3500.0), 1)
        rows.append(Measurement(home=home, device=device, time=t, power_w=power,
                                soc_pct=round(rng.uniform(10, 90), 1) if device is not None else None))
        t += timedelta(minutes=rng.choice([1, 2, 5, 9]), seconds=rng.choice([0, 0, 17]))
    return rows


def write_in_batches(rng: random.Random, rows: list) -> None:
    """Shuffled batches of the listener's sizes: rows arrive late and out of order into rolled-up slots."""
    rng.shuffle(rows)
    i = 0
    while i < len(rows):
        n = rng.choice([1, 7, 50, 400])
        record_measurements(rows[i:i + n])
        i += n


@pytest.fixture
def homes(home, make_home, user, make_device):
    second = make_home(user, name="Second", timezone="Europe/Lisbon", tariff=home.tariff, tariff_kind="tri_hourly")
    pv1, pv2 = make_device(home, "pv"), make_device(second, "pv")
    battery = make_device(home, "battery")
    return home, second, pv1, pv2, battery


def fill(homes, first: datetime, end: datetime, seed: int = 1) -> None:
    home, second, pv1, pv2, battery = homes
    rng = random.Random(seed)
    rows = []
    for h, device, sign in ((home, None, 1.0), (second, None, 1.0), (home, pv1, -1.0), (second, pv2, -1.0),
                            (home, battery, 1.0)):
        rows += irregular_samples(rng, h, device, first, end, sign=sign)
    write_in_batches(rng, rows)


@pytest.fixture
def from_raw(monkeypatch):
    """Switches the statistics to the raw rows, as they were read before the roll-ups."""

    def use_raw() -> None:
        monkeypatch.setattr(selectors, "grouped_slot_energy", functools.partial(telemetry.grouped_slot_energy, raw=True))
        monkeypatch.setattr(selectors, "device_slot_energy", functools.partial(telemetry.device_slot_energy, raw=True))

    return use_raw


def close(a, b, path: str = "") -> None:
    """Equal answers, numbers to the rounding of the published figures (sums run in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=2e-4), path
    else:
        assert a == b, path


def test_dst_days_statistics_from_rollups_equal_those_from_raw_rows(homes, from_raw):
    home, second = homes[:2]
    fill(homes, local_midnight(SPRING) - timedelta(hours=2), local_midnight(SPRING + timedelta(days=1)) + timedelta(hours=3))
    fill(homes, local_midnight(AUTUMN), local_midnight(AUTUMN + timedelta(days=1)), seed=2)
    for day, slots in ((SPRING, 92), (AUTUMN, 100)):
        co2_day(day, 180.0)
        stored_plan(home, local_midnight(day), slots, made=local_midnight(day) - timedelta(hours=3),
                    baseline_cost_eur=3.0, savings_eur=0.4)
    # The second home's own CO2 series puts it in a price group of its own: the portfolio reads two groups.
    replace_signal(SignalKind.CO2_INTENSITY, local_midnight(AUTUMN), 15, [90.0] * 100, home=second)
    portfolio = Portfolio.objects.create(code="p-rollups", name="Roll-ups")
    portfolio.homes.set([home, second])
    assert MeasurementRollup.objects.count() > 0

    def answers() -> dict:
        return {
            "spring days": home_statistics(home, "day", SPRING - timedelta(days=1), SPRING + timedelta(days=1),
                                           with_devices=True),
            "autumn month": home_statistics(home, "month", AUTUMN, AUTUMN, with_devices=True),
            "portfolio": portfolio_statistics(portfolio, "day", AUTUMN, AUTUMN),
            "spring series": home_series(home, SPRING), "autumn series": home_series(second, AUTUMN),
        }

    rolled = answers()
    assert [b["slots"] for b in rolled["spring days"]["buckets"]] == [96, 92, 96]
    assert len(rolled["autumn series"]["slots"]) == 100
    assert len(selectors.price_groups([home, second], Period.of_days("Europe/Lisbon", AUTUMN, AUTUMN))) == 2
    assert rolled["spring days"]["totals"]["import_kwh"] > 10 and rolled["portfolio"]["totals"]["pv_kwh"] > 10
    assert 0 < rolled["autumn month"]["totals"]["coverage"] < 1  # the gaps stay gaps
    from_raw()
    close(rolled, answers())


def test_hourly_slots_from_rollups_equal_raw_and_off_grid_slots_read_raw(homes):
    home, second = homes[:2]
    start = local_midnight(AUTUMN)
    fill(homes, start, start + timedelta(days=1), seed=3)
    for resolution, origin in ((60, start), (30, start + timedelta(minutes=15)), (5, start + timedelta(minutes=5))):
        slots = 24 * 60 // resolution
        got = telemetry.slot_energy([home.pk, second.pk], origin, slots, resolution)
        raw = telemetry.slot_energy([home.pk, second.pk], origin, slots, resolution, raw=True)
        assert got.reporting == raw.reporting and sum(raw.reporting) > slots
        assert got.import_kwh == pytest.approx(raw.import_kwh) and got.export_kwh == pytest.approx(raw.export_kwh)


def test_todays_open_slot_is_in_the_rollups_as_soon_as_its_rows_are_written(homes, from_raw):
    home = homes[0]
    now = timezone.now()
    today = now.astimezone(LISBON).date()
    fill(homes, local_midnight(today), now, seed=4)
    open_slot = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    record_measurements([Measurement(home=home, time=open_slot + (now - open_slot) / 2, power_w=2222.0)])
    rolled = home_statistics(home, "day", today, today, with_devices=True), home_series(home, today)
    measured = [r["measured_net_import_kw"] for r in rolled[1]["slots"]]
    assert measured[int(Period.of_days(home.timezone, today, today).offset_min(open_slot) // 15)] is not None
    from_raw()
    close(rolled, (home_statistics(home, "day", today, today, with_devices=True), home_series(home, today)))


def test_statistics_outlive_the_raw_rows(homes, from_raw):
    home = homes[0]
    fill(homes, local_midnight(AUTUMN), local_midnight(AUTUMN + timedelta(days=1)), seed=5)
    before = home_statistics(home, "day", AUTUMN, AUTUMN, with_devices=True)
    Measurement.objects.all().delete()  # what retention does to old days
    assert home_statistics(home, "day", AUTUMN, AUTUMN, with_devices=True) == before
    from_raw()
    assert home_statistics(home, "day", AUTUMN, AUTUMN)["totals"]["import_kwh"] == 0.0


@pytest.mark.parametrize("raw", [False, True])
def test_one_pass_over_groups_gives_what_slot_energy_gives_group_by_group(homes, raw):
    home, second = homes[:2]
    start = local_midnight(AUTUMN)
    fill(homes, start, start + timedelta(days=1), seed=6)
    for groups in ([[home.pk], [second.pk]], [[second.pk, home.pk]]):
        meters, pv = telemetry.grouped_slot_energy(groups, start, 100, device_type="pv", raw=raw)
        for group, got in zip(groups, meters):
            same(got, telemetry.slot_energy(group, start, 100, raw=raw))
        same(pv, telemetry.slot_energy([home.pk, second.pk], start, 100, device_type="pv", raw=raw))


def same(got: telemetry.SlotEnergy, want: telemetry.SlotEnergy) -> None:
    assert got.reporting == want.reporting and sum(got.reporting) > 50
    assert got.import_kwh == pytest.approx(want.import_kwh) and got.export_kwh == pytest.approx(want.export_kwh)


def test_grouped_read_of_homes_without_such_devices_and_of_no_homes(other_home):
    start = local_midnight(AUTUMN)
    record_measurements([Measurement(home=other_home, time=start + timedelta(minutes=m), power_w=1200.0)
                         for m in range(0, 60, 5)])
    (meter,), pv = telemetry.grouped_slot_energy([[other_home.pk]], start, 100, device_type="pv")
    assert meter.import_kwh[:4] == pytest.approx([0.3] * 4) and sum(meter.reporting) == 4
    assert pv == telemetry.SlotEnergy.empty(100)
    assert telemetry.grouped_slot_energy([], start, 100, device_type="pv") == ([], telemetry.SlotEnergy.empty(100))


@pytest.mark.parametrize("lookup_max", [10 ** 9, 0])
def test_groups_found_by_id_or_by_a_join_read_the_same_energy_as_the_raw_rows(homes, monkeypatch, lookup_max):
    """The 15-minute read finds each home's group in an array indexed by id, or (ids far apart) by a join."""
    home, second = homes[:2]
    monkeypatch.setattr(telemetry, "GROUP_LOOKUP_MAX", lookup_max)
    start = local_midnight(AUTUMN)
    fill(homes, start, start + timedelta(days=1), seed=8)
    groups = [[second.pk], [home.pk]]
    meters, pv = telemetry.grouped_slot_energy(groups, start, 100, device_type="pv")
    raw_meters, raw_pv = telemetry.grouped_slot_energy(groups, start, 100, device_type="pv", raw=True)
    for got, want in zip(meters + [pv], raw_meters + [raw_pv]):
        same(got, want)
