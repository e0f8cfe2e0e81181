"""Statistics read each home's complete days from their day sheets (one row per home, device and day) and
the rest from the 15-minute roll-ups: the same energy as from the roll-ups alone, on DST days, across a
period that ends in days without sheets, after late rows, and after the home moved to another zone."""
from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from devices import telemetry
from devices.models import DayCoverage, Measurement, MeasurementDay, MeasurementRollup
from devices.services import record_measurements, roll_up_telemetry_days

from .test_statistics_rollups import AUTUMN, SPRING, fill, homes, local_midnight  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

# The beat job runs at 01:00 Lisbon, two days after the autumn day: both days before it are complete.
JOB_AT = local_midnight(AUTUMN + timedelta(days=2)) + timedelta(hours=1)


def read(homes, start, slots, raw=False):
    """Both homes' meters as two groups, and their PV, as the portfolio statistics read them."""
    home, second = homes[:2]
    meters, pv = telemetry.grouped_slot_energy([[second.pk], [home.pk]], start, slots, device_type="pv", raw=raw)
    return [*meters, pv]


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.reporting == w.reporting
        assert g.import_kwh == pytest.approx(w.import_kwh) and g.export_kwh == pytest.approx(w.export_kwh)


@pytest.fixture
def autumn_days(homes):
    """Telemetry from the autumn day (100 quarter-hours) to the middle of the day after the job's."""
    fill(homes, local_midnight(AUTUMN), JOB_AT + timedelta(hours=11), seed=21)
    return homes


def test_sheets_cover_complete_days_and_give_the_rollups_energy(autumn_days):
    homes = autumn_days
    start, slots = local_midnight(AUTUMN), 100 + 96 + 48  # into the day the job runs on, which has no sheet
    from_rollups = read(homes, start, slots)
    assert all(sum(e.reporting) > 100 for e in from_rollups)
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=10)

    covered = dict(DayCoverage.objects.values_list("home_id", "complete_until"))
    assert covered == {homes[0].pk: local_midnight(AUTUMN + timedelta(days=2)),
                       homes[1].pk: local_midnight(AUTUMN + timedelta(days=2))}
    autumn = MeasurementDay.objects.get(home=homes[0], device=None, day=AUTUMN)
    assert len(autumn.slot_power_w) == 100 * 8
    assert MeasurementDay.objects.get(home=homes[0], device=None, day=AUTUMN + timedelta(days=2)).slot_power_w is None
    assert_same(read(homes, start, slots), from_rollups)

    # Without the roll-ups of the covered days, the same energy comes from the sheets alone.
    MeasurementRollup.objects.filter(slot_start__lt=local_midnight(AUTUMN + timedelta(days=2))).delete()
    assert_same(read(homes, start, slots), from_rollups)
    # A period that starts mid-day reads the rest of that day's sheet.
    assert_same(read(homes, start + timedelta(hours=7), 60), [
        telemetry.SlotEnergy(e.import_kwh[28:88], e.export_kwh[28:88], e.reporting[28:88]) for e in from_rollups])


@pytest.mark.parametrize("lookup_max", [10 ** 9, 0])
def test_a_late_row_uncovers_its_day_until_the_job_has_sheeted_it_again(autumn_days, monkeypatch, lookup_max):
    """Each home then reads the roll-ups from its own first uncovered day on (found by id, or by a join)."""
    monkeypatch.setattr(telemetry, "GROUP_LOOKUP_MAX", lookup_max)
    homes = autumn_days
    home = homes[0]
    start, slots = local_midnight(AUTUMN), 196 + 40  # into the day the job runs on
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=10)
    before = read(homes, start, slots)
    late_at = local_midnight(AUTUMN) + timedelta(hours=5, minutes=1)
    record_measurements([Measurement(home=home, time=late_at, power_w=90_000.0)])  # weeks late
    assert DayCoverage.objects.get(home=home).complete_until == late_at
    assert DayCoverage.objects.get(home=homes[1]).complete_until == local_midnight(AUTUMN + timedelta(days=2))
    with_late_row = read(homes, start, slots)
    assert_same(with_late_row, read(homes, start, slots, raw=True))
    assert with_late_row[1].import_kwh[20] > before[1].import_kwh[20] + 1  # its slot's mean moved

    roll_up_telemetry_days(now=JOB_AT + timedelta(minutes=15))
    assert DayCoverage.objects.get(home=home).complete_until == local_midnight(AUTUMN + timedelta(days=2))
    MeasurementRollup.objects.filter(slot_start__lt=local_midnight(AUTUMN + timedelta(days=2))).delete()
    assert_same(read(homes, start, slots), with_late_row)


def test_rows_of_the_last_minutes_keep_the_coverage(autumn_days, monkeypatch):
    """The writer's own timestamps are minutes old: they cannot belong to a sheeted day."""
    homes = autumn_days
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=10)
    monkeypatch.setattr(telemetry.clock, "now", lambda: JOB_AT + timedelta(minutes=5))
    record_measurements([Measurement(home=homes[0], time=JOB_AT, power_w=500.0)])
    assert DayCoverage.objects.get(home=homes[0]).complete_until == local_midnight(AUTUMN + timedelta(days=2))


def test_a_home_in_another_zone_reads_the_rollups_until_its_days_are_cut_again(autumn_days):
    homes = autumn_days
    home = homes[0]
    start, slots = local_midnight(AUTUMN), 196
    from_rollups = read(homes, start, slots)
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=10)
    home.timezone = "Atlantic/Azores"  # one hour behind Lisbon
    home.save(update_fields=["timezone"])
    assert_same(read(homes, start, slots), from_rollups)
    roll_up_telemetry_days(now=JOB_AT + timedelta(hours=1), backfill_homes=10)
    coverage = DayCoverage.objects.get(home=home)
    assert coverage.timezone == "Atlantic/Azores"
    assert coverage.complete_until == local_midnight(AUTUMN + timedelta(days=2)) + timedelta(hours=1)
    assert_same(read(homes, start, slots), from_rollups)


def test_backfill_goes_a_number_of_homes_at_a_time(autumn_days):
    homes = autumn_days
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=1)
    assert DayCoverage.objects.filter(complete_until__isnull=False).count() == 1
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=1)
    assert DayCoverage.objects.filter(complete_until__isnull=False).count() == 2
    assert MeasurementDay.objects.filter(home=homes[1], day=AUTUMN, slot_power_w__isnull=False).count() == 2


def test_a_spring_day_has_a_sheet_of_92_slots(homes):
    fill(homes, local_midnight(SPRING), local_midnight(SPRING + timedelta(days=1)), seed=22)
    start = local_midnight(SPRING)
    from_rollups = read(homes, start, 92)
    roll_up_telemetry_days(now=start + timedelta(days=1, hours=2), backfill_homes=10)
    assert len(MeasurementDay.objects.get(home=homes[0], device=None, day=SPRING).slot_power_w) == 92 * 8
    MeasurementRollup.objects.all().delete()
    assert_same(read(homes, start, 92), from_rollups)


def test_random_periods_read_the_same_with_and_without_sheets(autumn_days):
    homes = autumn_days
    rng = random.Random(3)
    periods = [(local_midnight(AUTUMN) + timedelta(minutes=15 * rng.randrange(0, 150)), rng.randrange(1, 200))
               for _ in range(12)]
    before = [read(homes, s, n) for s, n in periods]
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=10)
    for (s, n), want in zip(periods, before):
        assert_same(read(homes, s, n), want)


def test_days_long_before_the_job_are_backfilled_home_by_home(autumn_days):
    """A job days later (a backfill or a very late row reaching back past yesterday) reads those homes
    through the (home, slot) index in a statement of their own: the same sheets."""
    homes = autumn_days
    start, slots = local_midnight(AUTUMN), 196
    from_rollups = read(homes, start, slots)
    later = JOB_AT + timedelta(days=5)
    roll_up_telemetry_days(now=later, backfill_homes=10)
    assert set(DayCoverage.objects.values_list("complete_until", flat=True)) == {
        local_midnight(AUTUMN + timedelta(days=7))}
    MeasurementRollup.objects.filter(slot_start__lt=local_midnight(AUTUMN + timedelta(days=2))).delete()
    assert_same(read(homes, start, slots), from_rollups)


def test_a_backfilled_home_s_days_are_written_once(autumn_days):
    """A home backfilled from days before the job's usual range is left out of the statement over that range,
    which its own statement covers too: every day row is written once, and the job counts what it wrote."""
    assert not MeasurementDay.objects.exists()
    written = roll_up_telemetry_days(now=JOB_AT, days_back=0, backfill_homes=10)
    assert written == MeasurementDay.objects.count() > 0
    assert MeasurementDay.objects.filter(day=AUTUMN + timedelta(days=2)).exists()  # today's too, in progress


@pytest.fixture
def default_tariffs():
    """The built-in tariffs, which an earlier transactional test's flush may have removed."""
    from tests.factories.homes import restore_default_tariffs

    restore_default_tariffs()


@pytest.mark.django_db(transaction=True)
def test_a_day_job_that_meets_a_late_writer_waits_for_it_and_sheets_its_row(default_tariffs, autumn_days):
    """The writer of a late row holds its home's coverage until it commits; the next day's job, locking
    the homes whose coverage moves before it reads, waits for it, then sheets the day with the row."""
    homes = autumn_days
    home = homes[0]
    start, slots = local_midnight(AUTUMN), 196
    roll_up_telemetry_days(now=JOB_AT, backfill_homes=10)
    written, release = threading.Event(), threading.Event()

    def late_writer() -> None:
        try:
            with transaction.atomic():
                record_measurements([Measurement(home=home, time=start + timedelta(hours=3), power_w=70_000.0)])
                written.set()
                assert release.wait(60)
        finally:
            connection.close()

    def day_job() -> None:
        try:
            roll_up_telemetry_days(now=JOB_AT + timedelta(days=1))
        finally:
            connection.close()

    writer = threading.Thread(target=late_writer)
    writer.start()
    assert written.wait(60)
    job = threading.Thread(target=day_job)
    job.start()
    with connection.cursor() as cur:  # the job waits on the writer's lock of the home's coverage
        for _ in range(6000):
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database() AND query LIKE '%%devices_daycoverage%%'")
            if cur.fetchone()[0]:
                break
            job.join(0.01)
        else:
            pytest.fail("the day job never waited for the late writer")
    release.set()
    writer.join(60)
    job.join(60)
    assert DayCoverage.objects.get(home=home).complete_until == local_midnight(AUTUMN + timedelta(days=3))
    with_late_row = read(homes, start, slots, raw=True)
    assert with_late_row[1].import_kwh[12] > 2  # the late row's slot
    MeasurementRollup.objects.filter(slot_start__lt=local_midnight(AUTUMN + timedelta(days=2))).delete()
    assert_same(read(homes, start, slots), with_late_row)
