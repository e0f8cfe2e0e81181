"""Telemetry storage benchmark (not a test: prints JSON lines).

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale \
        .venv/bin/python -m bench.telemetry --homes 1000 --days 30 --json

* write: `devices.services.record_measurements` alone (no MQTT, no listener) at several batch
  sizes, each batch a 10-second reading of every device of `--write-homes` homes: rows/s.
* read: the roll-ups of `--homes` homes over `--days` days (home meters every 15 minutes,
  generated in SQL; devices for the first `--device-homes` homes), read through
  the selectors as statistics would (`telemetry_days` after the daily roll-up of the period,
  `telemetry_rollups` for slots and hours): one home by day, the whole set by home and day or
  month, the whole set as one portfolio by day and by hour. Median of `--repeat` reads.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone as dt_timezone

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def seed_homes(n: int, devices_per_home: int, tag: str) -> list[tuple[int, list[int]]]:
    from django.contrib.auth import get_user_model

    from devices.models import Device, DeviceType, Home

    owner, _ = get_user_model().objects.get_or_create(username=f"bench-telemetry-{tag}")
    homes = Home.objects.bulk_create([Home(owner=owner, name=f"telemetry {tag} {i}") for i in range(n)])
    devices = Device.objects.bulk_create([
        Device(home=h, serial_number=f"BAT-{tag}-{h.pk}-{j}", name="Battery", device_type=DeviceType.BATTERY,
               parameters={}) for h in homes for j in range(devices_per_home)])
    by_home: dict[int, list[int]] = {h.pk: [] for h in homes}
    for d in devices:
        by_home[d.home_id].append(d.pk)
    return list(by_home.items())


def write_phase(homes: list[tuple[int, list[int]]], batch_sizes: list[int], seconds: float) -> list[dict]:
    from devices import services

    now = datetime.now(dt_timezone.utc)
    out = []
    for batch in batch_sizes:
        written, t0, tick = 0, time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            rows = []
            while len(rows) < batch:  # 10-second readings: home meter + each device
                at = now + timedelta(seconds=10 * tick)
                for home_id, device_ids in homes:
                    rows.append({"home_id": home_id, "time": at, "power_w": 1500.0 + tick % 7, "energy_wh": 1.0 * tick})
                    rows += [{"home_id": home_id, "device_id": d, "time": at, "power_w": -500.0, "soc_pct": 50.0}
                             for d in device_ids]
                tick += 1
            for i in range(0, len(rows), batch):
                written += services.record_measurements(rows[i:i + batch])
        elapsed = time.perf_counter() - t0
        out.append({"batch_rows": batch, "rows": written, "seconds": round(elapsed, 2),
                    "rows_per_s": round(written / elapsed, 1), "loadavg_1m": round(os.getloadavg()[0], 2)})
    return out


def seed_rollups(home_ids: list[int], device_homes: list[tuple[int, list[int]]], start: datetime, days: int) -> float:
    """Roll-up rows straight in SQL (what months of telemetry would have left): seconds taken."""
    from django.db import connection, transaction

    from devices import telemetry

    t0 = time.perf_counter()
    telemetry.ensure_partitions(telemetry.ROLLUPS, start, start + timedelta(days=days))
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """INSERT INTO devices_measurementrollup (home_id, device_id, slot_start, samples, power_samples,
                   power_w_sum, power_w_min, power_w_max, meter_wh_last, meter_at, temperature_samples,
                   temperature_c_sum)
               SELECT h, NULL, s, 90, 90, 90 * (800 + 700 * sin(extract(epoch FROM s) / 13750.0 + h)), -200, 4000,
                      1000, s, 0, 0
                 FROM unnest(%s::bigint[]) AS h,
                      generate_series(%s::timestamptz, %s::timestamptz - interval '15 minutes',
                                      interval '15 minutes') AS s""",
            [home_ids, start, start + timedelta(days=days)])
        for home_id, device_ids in device_homes:
            cur.execute(
                """INSERT INTO devices_measurementrollup (home_id, device_id, slot_start, samples, power_samples,
                       power_w_sum, soc_pct_last, soc_at, temperature_samples, temperature_c_sum)
                   SELECT %s, d, s, 90, 90, -9000, 50, s, 0, 0
                     FROM unnest(%s::bigint[]) AS d,
                          generate_series(%s::timestamptz, %s::timestamptz - interval '15 minutes',
                                          interval '15 minutes') AS s""",
                [home_id, device_ids, start, start + timedelta(days=days)])
        cur.execute("ANALYZE devices_measurementrollup")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1000, help="homes whose roll-ups are read")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--device-homes", type=int, default=50, help="homes that also get device roll-ups")
    parser.add_argument("--write-homes", type=int, default=250)
    parser.add_argument("--batch-sizes", default="100,1000,5000")
    parser.add_argument("--write-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-write", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import django

    django.setup()
    import uuid

    from django.core.management import call_command

    from devices.selectors import telemetry_days, telemetry_rollups
    from devices.telemetry import roll_up_days

    call_command("migrate", verbosity=0)
    tag = uuid.uuid4().hex[:6]
    load = lambda: round(os.getloadavg()[0], 2)  # noqa: E731
    if not args.skip_write:
        writers = seed_homes(args.write_homes, 3, f"w{tag}")
        for result in write_phase(writers, [int(b) for b in args.batch_sizes.split(",")], args.write_seconds):
            print(json.dumps({"bench": "telemetry.write", "homes": args.write_homes, "rows_per_message": 4,
                              "cpus": os.cpu_count(), **result}), flush=True)

    homes = seed_homes(args.homes, 0, f"r{tag}")
    home_ids = [h for h, _ in homes]
    device_homes = seed_homes(args.device_homes, 3, f"d{tag}")
    start = datetime(2026, 1, 1, tzinfo=dt_timezone.utc)
    seed_s = seed_rollups(home_ids, device_homes, start, args.days)
    end = start + timedelta(days=args.days)
    t0 = time.perf_counter()
    roll_up_days(end - timedelta(seconds=1), args.days)
    days_s = time.perf_counter() - t0
    print(json.dumps({"bench": "telemetry.roll_up_days", "homes": args.homes + args.device_homes, "days": args.days,
                      "seconds": round(days_s, 2), "loadavg_1m": load()}), flush=True)
    first, last = start.date(), (end - timedelta(days=1)).date()
    one, many = home_ids[:1], home_ids
    cases = {
        "one home by day": lambda: telemetry_days(one, first, last),
        "one home by slot": lambda: telemetry_rollups(one, start, end),
        "one home's devices by day": lambda: telemetry_days(device_homes[0][:1], first, last, per="device"),
        f"{args.homes} homes by home and day": lambda: telemetry_days(many, first, last),
        f"{args.homes} homes by home and month": lambda: telemetry_days(many, first, last, bucket="month"),
        f"{args.homes} homes as a portfolio by day": lambda: telemetry_days(many, first, last, per="total"),
        f"{args.homes} homes as a portfolio by hour": lambda: telemetry_rollups(many, start, end, bucket="hour",
                                                                                 per="total"),
    }
    for name, fn in cases.items():
        median_s, rows = _timed(fn, args.repeat)
        print(json.dumps({"bench": "telemetry.read", "case": name, "days": args.days, "rollup_rows_seeded":
                          len(home_ids) * args.days * 96, "seed_s": round(seed_s, 1), "result_rows": len(rows),
                          "median_s": round(median_s, 4), "repeat": args.repeat, "loadavg_1m": load()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
