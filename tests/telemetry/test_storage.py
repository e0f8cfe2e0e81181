"""Telemetry storage: partitions, retention, roll-ups fed by the batch writer, the roll-up selector."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from devices import selectors, services, telemetry
from devices.models import Device, DeviceType, Home, Measurement, MeasurementDay, MeasurementRollup

UTC = dt_timezone.utc
pytestmark = pytest.mark.django_db


@pytest.fixture
def homes(db):
    owner = get_user_model().objects.create_user("tele-owner", "tele@example.com", "pw-tele-owner-2026")
    out = []
    for i in range(3):
        home = Home.objects.create(owner=owner, name=f"home {i}")
        battery = Device.objects.create(home=home, serial_number=f"BAT-{i}", name="Battery",
                                        device_type=DeviceType.BATTERY, parameters={})
        out.append((home, battery))
    return out


def _random_rows(rng: random.Random, homes, start: datetime, n: int) -> list[dict]:
    rows = []
    for second in rng.sample(range(6 * 3600), n):  # distinct times: "last" is well defined
        home, battery = rng.choice(homes)
        t = start + timedelta(seconds=second)
        if rng.random() < 0.5:
            rows.append({"home_id": home.pk, "time": t, "power_w": rng.uniform(-4000, 6000),
                         "energy_wh": rng.choice([None, rng.uniform(0, 1e6)])})
        else:
            rows.append({"home_id": home.pk, "device_id": battery.pk, "time": t,
                         "power_w": rng.choice([None, rng.uniform(-3000, 3000)]),
                         "soc_pct": rng.uniform(0, 100), "temperature_c": rng.choice([None, rng.uniform(10, 40)])})
    return rows


def _expected(rows: list[dict]) -> dict:
    """Slot aggregates computed in Python from the raw rows."""
    out: dict = defaultdict(lambda: {"samples": 0, "power": [], "soc": None, "temp": []})
    for r in sorted(rows, key=lambda r: r["time"]):
        t = r["time"]
        slot = t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
        agg = out[(r["home_id"], r.get("device_id"), slot)]
        agg["samples"] += 1
        if r.get("power_w") is not None:
            agg["power"].append(r["power_w"])
        if r.get("soc_pct") is not None:
            agg["soc"] = r["soc_pct"]
        if r.get("temperature_c") is not None:
            agg["temp"].append(r["temperature_c"])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_in_any_order_add_up_to_the_raw_rows(homes, seed):
    """Rows written in shuffled batches of random sizes: every slot equals the aggregate of its raw rows."""
    rng = random.Random(seed)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=7)
    rows = _random_rows(rng, homes, start, 3000)
    rng.shuffle(rows)
    i = 0
    while i < len(rows):
        size = rng.choice([1, 7, 150, 900])
        assert services.record_measurements(rows[i:i + size]) == len(rows[i:i + size])
        i += size
    assert Measurement.objects.count() == len(rows)
    expected = _expected(rows)
    stored = {(r.home_id, r.device_id, r.slot_start): r for r in MeasurementRollup.objects.all()}
    assert set(stored) == set(expected)
    for key, agg in expected.items():
        r = stored[key]
        assert r.samples == agg["samples"]
        assert r.power_samples == len(agg["power"])
        if agg["power"]:
            assert r.mean_power_w == pytest.approx(sum(agg["power"]) / len(agg["power"]))
            assert r.power_w_min == pytest.approx(min(agg["power"]))
            assert r.power_w_max == pytest.approx(max(agg["power"]))
        assert r.soc_pct_last == (pytest.approx(agg["soc"]) if agg["soc"] is not None else None)
        assert r.temperature_samples == len(agg["temp"])


def test_a_rejected_batch_writes_neither_rows_nor_rollups(homes):
    home, _ = homes[0]
    now = timezone.now()
    with pytest.raises(Exception) as exc:
        services.record_measurements([{"home_id": home.pk, "time": now, "power_w": 1.0},
                                      {"home_id": home.pk, "time": now.replace(tzinfo=None), "power_w": 2.0}])
    assert "rows[1].time" in str(exc.value)
    assert Measurement.objects.count() == 0 and MeasurementRollup.objects.count() == 0


def _partition_of(table: str, pk: int) -> str:
    with connection.cursor() as cur:
        cur.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        return cur.fetchone()[0]


def test_partitions_ahead_retention_drops_raw_days_and_keeps_rollups(homes, settings):
    settings.TELEMETRY_RAW_RETENTION_DAYS = 30
    settings.TELEMETRY_PARTITIONS_AHEAD_DAYS = 5
    home, _ = homes[0]
    now = timezone.now()
    old = now - timedelta(days=40)
    telemetry.ensure_partitions(telemetry.MEASUREMENTS, old, old + timedelta(days=1))
    services.record_measurements([{"home_id": home.pk, "time": old, "power_w": 500.0},
                                  {"home_id": home.pk, "time": now, "power_w": 800.0}])
    old_row = Measurement.objects.get(time=old)
    assert _partition_of("devices_measurement", old_row.pk) == telemetry.MEASUREMENTS.name(
        telemetry.MEASUREMENTS.floor(old))

    result = services.maintain_telemetry_storage(now)

    names = set(telemetry.partitions(telemetry.MEASUREMENTS))
    for d in range(6):
        assert telemetry.MEASUREMENTS.name(telemetry.MEASUREMENTS.floor(now + timedelta(days=d))) in names
    assert telemetry.MEASUREMENTS.name(telemetry.MEASUREMENTS.floor(old)) in result["dropped"]
    assert list(Measurement.objects.values_list("power_w", flat=True)) == [800.0]
    # The roll-up of the dropped day stays.
    assert MeasurementRollup.objects.filter(home=home, slot_start__lt=now - timedelta(days=39)).get().power_w_sum == 500.0
    assert services.maintain_telemetry_storage(now) == {"created": [], "dropped": []}  # idempotent


def test_a_row_without_its_partition_waits_in_the_default_one_and_moves_in(homes):
    home, _ = homes[0]
    far = timezone.now() + timedelta(days=200)
    services.record_measurements([{"home_id": home.pk, "time": far, "power_w": 42.0}])
    row = Measurement.objects.get()
    assert _partition_of("devices_measurement", row.pk) == telemetry.MEASUREMENTS.default
    created = telemetry.ensure_partitions(telemetry.MEASUREMENTS, far, far + timedelta(seconds=1))
    assert created == [telemetry.MEASUREMENTS.name(telemetry.MEASUREMENTS.floor(far))]
    assert _partition_of("devices_measurement", row.pk) == created[0]
    assert Measurement.objects.get().power_w == 42.0


def test_rollup_selectors_per_home_device_and_portfolio(homes):
    """Local days of the homes: energy is slot mean power x 15 min, import/export split by sign."""
    (h0, b0), (h1, _), _ = homes
    day = datetime(2026, 6, 10, tzinfo=UTC)  # Lisbon is UTC+1 in June
    telemetry.ensure_partitions(telemetry.MEASUREMENTS, day - timedelta(days=1), day + timedelta(days=2))
    telemetry.ensure_partitions(telemetry.ROLLUPS, day, day + timedelta(days=1))
    rows = [
        {"home_id": h0.pk, "time": day + timedelta(hours=10), "power_w": 1000.0},
        {"home_id": h0.pk, "time": day + timedelta(hours=10, minutes=5), "power_w": 3000.0},  # slot mean 2000 W
        {"home_id": h0.pk, "time": day + timedelta(hours=12), "power_w": -400.0},  # export
        {"home_id": h1.pk, "time": day + timedelta(hours=10), "power_w": 600.0},
        {"home_id": h0.pk, "time": day - timedelta(minutes=30), "power_w": 9999.0},  # 23:30 UTC = 00:30 Lisbon
        {"home_id": h0.pk, "device_id": b0.pk, "time": day + timedelta(hours=10), "soc_pct": 40.0, "power_w": 100.0},
        {"home_id": h0.pk, "device_id": b0.pk, "time": day + timedelta(hours=11), "soc_pct": 55.0, "power_w": 300.0},
    ]
    services.record_measurements(rows)
    start, end = day - timedelta(hours=1), day + timedelta(hours=23)  # the Lisbon day
    local_day = day.date()
    assert services.roll_up_telemetry_days(now=end - timedelta(minutes=1)) > 0
    per_home = selectors.telemetry_days([h0.pk, h1.pk], local_day, local_day)
    by_home = {r["home_id"]: r for r in per_home}
    assert len(per_home) == 2 and {r["bucket"] for r in per_home} == {local_day}
    assert by_home[h0.pk]["energy_wh"] == pytest.approx((9999.0 + 2000.0 - 400.0) / 4)
    assert by_home[h0.pk]["import_wh"] == pytest.approx((9999.0 + 2000.0) / 4)
    assert by_home[h0.pk]["export_wh"] == pytest.approx(100.0)
    assert by_home[h0.pk]["slots"] == 3 and by_home[h0.pk]["samples"] == 4
    total = selectors.telemetry_rollups([h0.pk, h1.pk], start, end, bucket="slot", per="total")
    at_ten = next(r for r in total if r["bucket"] == day + timedelta(hours=10))
    assert at_ten["mean_power_w"] == pytest.approx(2600.0)
    hourly = selectors.telemetry_rollups([h0.pk], start, end, bucket="hour", zone="Europe/Lisbon")
    assert hourly[0]["bucket"].isoformat() == "2026-06-10T00:00:00+01:00" and hourly[0]["energy_wh"] == 9999.0 / 4
    devices = selectors.telemetry_days([h0.pk], local_day, local_day, bucket="month", per="device")
    assert [(r["device_id"], r["bucket"], r["soc_pct"], r["energy_wh"]) for r in devices] == [
        (b0.pk, local_day.replace(day=1), 55.0, pytest.approx(100.0))]
    portfolio = selectors.telemetry_days([h0.pk, h1.pk], local_day, local_day, per="total")
    assert portfolio[0]["energy_wh"] == pytest.approx((9999.0 + 2000.0 - 400.0 + 600.0) / 4)

    # Late rows: rolling the days up again replaces them (no double counting).
    services.record_measurements([{"home_id": h1.pk, "time": day + timedelta(hours=20), "power_w": 400.0}])
    services.roll_up_telemetry_days(now=end - timedelta(minutes=1))
    services.roll_up_telemetry_days(now=end - timedelta(minutes=1))
    late = selectors.telemetry_days([h1.pk], local_day, local_day)
    assert late[0]["energy_wh"] == pytest.approx((600.0 + 400.0) / 4) and late[0]["samples"] == 2
    with pytest.raises(ValueError):
        selectors.telemetry_rollups([h0.pk], start, end, bucket="day")


def test_beat_rows_for_storage_upkeep_exist():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="tasks.telemetry.maintain_storage")
    assert (task.interval.every, task.interval.period) == (1, "hours")
    task = PeriodicTask.objects.get(task="tasks.telemetry.roll_up_days")
    assert (task.interval.every, task.interval.period) == (15, "minutes")


def test_the_orm_path_of_other_databases_builds_the_same_rollups(homes):
    """The SQLite demo writes through the ORM: same rows for two homes, one per path, same slots."""
    (h0, b0), (h1, b1), _ = homes
    rng = random.Random(7)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=7)
    rows = [r for r in _random_rows(rng, homes[:1], start, 400)]
    as_tuples = lambda rows, h, b: [(h.pk, b.pk if r.get("device_id") else None, r["time"], r.get("power_w"),
                                     r.get("energy_wh"), r.get("soc_pct"), r.get("temperature_c")) for r in rows]
    for part in (rows[:150], rows[150:]):
        telemetry.write_batch(as_tuples(part, h0, b0))
        telemetry._write_batch_portable(as_tuples(part, h1, b1))
    fields = [f for f in telemetry.ROLLUP_COLUMNS if f not in ("home_id", "device_id")]

    def slots(home):
        return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row)
                for row in MeasurementRollup.objects.filter(home=home).order_by("slot_start", "device_id")
                .values_list(*fields)]

    assert len(slots(h0)) > 10 and slots(h1) == slots(h0)


def test_the_orm_path_of_other_databases_builds_the_same_days(homes):
    from devices.models import MeasurementDay

    rng = random.Random(11)
    now = timezone.now()
    rows = _random_rows(rng, homes, now - timedelta(hours=30), 1500)
    for r in rows:  # spread over a day and a half before now
        r["time"] = now - timedelta(seconds=rng.randrange(1, 36 * 3600))
    services.record_measurements(rows)
    fields = ["home_id", "device_id", "day", "samples", "slots", "energy_wh", "import_wh", "export_wh",
              "power_w_max", "soc_pct_last", "temperature_samples", "temperature_c_sum"]

    def days():
        return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row)
                for row in MeasurementDay.objects.order_by("home_id", "device_id", "day").values_list(*fields)]

    assert telemetry.roll_up_days(now, 1, backfill_homes=0) > 0  # no sheets: the ORM path builds none
    in_sql = days()
    MeasurementDay.objects.all().delete()
    telemetry._roll_up_days_portable(now, 1)
    assert len(in_sql) >= 6 and days() == in_sql


def test_rollup_months_past_their_retention_are_dropped_and_daily_rollups_stay(homes, settings):
    settings.TELEMETRY_ROLLUP_RETENTION_MONTHS = 13
    home, _ = homes[0]
    now = datetime(2026, 12, 6, 12, tzinfo=dt_timezone.utc)
    expired, kept = datetime(2025, 10, 31, 23, 50, tzinfo=dt_timezone.utc), datetime(2025, 11, 1, tzinfo=dt_timezone.utc)
    for when in (expired, kept):
        telemetry.ensure_partitions(telemetry.MEASUREMENTS, when, when + timedelta(days=1))
        telemetry.ensure_partitions(telemetry.ROLLUPS, when, when + timedelta(days=1))
    services.record_measurements([{"home_id": home.pk, "time": expired, "power_w": 500.0},
                                  {"home_id": home.pk, "time": kept, "power_w": 800.0}])
    services.roll_up_telemetry_days(now=expired, days_back=1)
    days_before = MeasurementDay.objects.filter(home=home).count()
    assert days_before >= 1

    result = services.maintain_telemetry_storage(now)

    assert telemetry.ROLLUPS.name(datetime(2025, 10, 1, tzinfo=dt_timezone.utc)) in result["dropped"]
    assert telemetry.ROLLUPS.name(datetime(2025, 11, 1, tzinfo=dt_timezone.utc)) not in result["dropped"]
    assert list(MeasurementRollup.objects.filter(home=home).values_list("power_w_sum", flat=True)) == [800.0]
    assert MeasurementDay.objects.filter(home=home).count() == days_before  # days are kept for ever
    assert services.maintain_telemetry_storage(now)["dropped"] == []  # idempotent

    settings.TELEMETRY_ROLLUP_RETENTION_MONTHS = 0  # kept for ever
    assert all(not n.startswith("devices_measurementrollup") for n in services.maintain_telemetry_storage(
        now + timedelta(days=3650))["dropped"])


def test_months_before_counts_calendar_months():
    assert telemetry.months_before(datetime(2026, 1, 15, tzinfo=dt_timezone.utc), 1) == datetime(
        2025, 12, 1, tzinfo=dt_timezone.utc)
    assert telemetry.months_before(datetime(2026, 12, 31, 23, tzinfo=dt_timezone.utc), 12) == datetime(
        2025, 12, 1, tzinfo=dt_timezone.utc)
