"""Statistics benchmark: a month of statistics for one home and for a 1,000-home portfolio.

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/hems_bench_stats \
        .venv/bin/python -m bench.stats --homes 1000 --days 31 --json

Seeds (once; `--reseed` to redo) N households in Europe/Lisbon on the tri-hourly tariff, each with a
PV system, a grid-meter and a PV sample every `--sample-min` minutes for the last `--days` local days
written as production writes it (`devices.services.record_measurements`: COPY into the raw rows plus
the 15-minute roll-ups in the same transaction; then the beat's daily roll-up, `roll_up_telemetry_days`),
a stored day-ahead plan per home and day, and the area's CO2 series. Then times
GET /api/v1/homes/<id>/statistics/ (one home) and GET /api/v1/operator/portfolios/<id>/statistics/
(all N homes) over those days through Django's full request stack, `--repeat` times each, and prints
JSON lines with the median and every run. Statistics read the 15-minute roll-ups; `--raw` reads the raw
rows instead (the figures before the roll-ups).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from zoneinfo import ZoneInfo


WRITE_BATCH_ROWS = 20_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--sample-min", type=int, default=15, choices=[1, 5, 15], help="telemetry interval")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--raw", action="store_true",
                        help="also time the same read from the raw rows (slow) and check it gives the same energy")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args(argv)
    _setup_django()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from devices.models import Measurement
    from flexibility.grid.models import Portfolio

    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    zone = "Europe/Lisbon"
    today = timezone.now().astimezone(ZoneInfo(zone)).date()
    last = today - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    portfolio = Portfolio.objects.filter(code="bench-stats").first()
    tag = {"homes": args.homes, "first": first.isoformat(), "days": args.days, "sample_min": args.sample_min,
           "writer": "record_measurements"}
    if args.reseed or portfolio is None or portfolio.description != json.dumps(tag, sort_keys=True):
        portfolio = _seed(args, first, zone, tag, log)
    homes = list(portfolio.homes.order_by("id"))
    from devices.services import roll_up_telemetry_days

    roll_up_telemetry_days(days_back=0, backfill_homes=len(homes))  # the day sheets, as the beat job keeps them
    rows = Measurement.objects.filter(home__in=homes).count()
    log(f"{len(homes)} homes, {rows} measurements")

    from django.contrib.auth import get_user_model

    operator, _ = get_user_model().objects.get_or_create(username="bench-stats-operator", defaults={"is_staff": True})
    query = {"first_day": first.isoformat(), "last_day": last.isoformat()}
    home_client, portfolio_client = Client(), Client()
    home_client.force_login(homes[0].owner)
    portfolio_client.force_login(operator)
    cases = [("home", home_client, f"/api/v1/homes/{homes[0].pk}/statistics/", 1),
             ("portfolio", portfolio_client, f"/api/v1/operator/portfolios/{portfolio.pk}/statistics/", len(homes))]
    for scope, client, url, n in cases:
        times, body = [], None
        for _ in range(args.repeat + 1):  # the first request warms caches and connections; not counted
            t0 = time.perf_counter()
            r = client.get(url, query)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.content[:500]
            body = r.json()
        times = times[1:]
        print(json.dumps({
            "bench": "stats", "scope": scope, "homes": n, "days": len(body["buckets"]), "sample_min": args.sample_min,
            "measurements_in_db": rows, "p50_ms": round(statistics.median(times), 1),
            "min_ms": round(min(times), 1), "runs_ms": [round(t, 1) for t in times],
            "import_kwh": body["totals"]["import_kwh"], "planned_savings_eur": body["totals"]["planned_savings_eur"],
            "realized_slots": body["totals"]["realized_slots"],
            "load_1m": round(os.getloadavg()[0], 2),
        }), flush=True)
    _time_reads(args, homes, zone, first, last, rows)
    connection.close()
    return 0


def _time_reads(args, homes, zone: str, first, last, rows: int) -> None:
    """What the portfolio's statistics read of telemetry, alone: every meter and every PV per slot over
    the days, from the roll-ups (and from the raw rows with --raw)."""
    from devices.models import DeviceType
    from devices.telemetry import grouped_slot_energy
    from insights.selectors import Period

    period = Period.of_days(zone, first, last)
    ids = [h.pk for h in homes]

    def read(raw: bool):
        (meters,), pv = grouped_slot_energy([ids], period.start, period.slots, device_type=DeviceType.PV, raw=raw)
        return meters, pv

    energy = {}
    for source in ("rollups", "raw") if args.raw else ("rollups",):
        raw = source == "raw"
        read(raw)  # warm
        times = []
        for _ in range(args.repeat if not raw else 1):
            t0 = time.perf_counter()
            meters, pv = read(raw)
            times.append((time.perf_counter() - t0) * 1000)
        energy[source] = [sum(meters.import_kwh), sum(meters.export_kwh), sum(pv.export_kwh), sum(meters.reporting)]
        print(json.dumps({
            "bench": "stats", "scope": f"telemetry read ({source})", "homes": len(ids), "slots": period.slots,
            "rows_read": 2 * sum(meters.reporting) if not raw else rows, "p50_ms": round(statistics.median(times), 1),
            "runs_ms": [round(t, 1) for t in times], "import_kwh, export_kwh, pv_kwh, home_slots": [round(x, 3) for x in energy[source]],
            "load_1m": round(os.getloadavg()[0], 2),
        }), flush=True)
    if args.raw and any(abs(a - b) > 1e-9 * max(1.0, abs(a)) for a, b in zip(energy["raw"], energy["rollups"])):
        print(json.dumps({"bench": "stats", "error": "roll-ups and raw rows disagree", **energy}), flush=True)


def _setup_django() -> None:
    """Django on the database of DATABASE_URL, migrated; the synthetic users never log in (cheap hashes)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ALLOWED_HOSTS = ["*"]


def _seed(args, first, zone: str, tag: dict, log):
    """Homes, PV devices, telemetry (the production writer), day-ahead plans and CO2 for the benchmark's days."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from devices import services
    from devices.models import Device, DeviceType, Home, SignalKind, Tariff, TariffKind
    from demo.management.commands.seed_demo import BUILTIN_CO2, BUILTIN_LOAD_PER_UNIT, local_day_slots
    from flexibility.grid.models import Portfolio
    from flexibility.planning.models import OptimizationRun, RunStatus, Schedule

    t0 = time.time()
    User = get_user_model()
    Portfolio.objects.filter(code="bench-stats").delete()
    User.objects.filter(username__startswith="bs0").delete()  # cascades to homes, devices, telemetry, plans
    tariff = Tariff.objects.get(code="pt-tri-hourly-daily")
    tz = ZoneInfo(zone)
    with transaction.atomic():
        users = User.objects.bulk_create([User(username=f"bs{i:08d}", password="!") for i in range(args.homes)])
        homes = Home.objects.bulk_create([
            Home(owner=u, name=f"Bench home {i}", timezone=zone, tariff=tariff, tariff_kind=TariffKind.TRI_HOURLY)
            for i, u in enumerate(users)])
        pvs = Device.objects.bulk_create([
            Device(home=h, serial_number=f"BS-PV-{h.pk}", name="PV", device_type=DeviceType.PV,
                   parameters={"peak_power_kw": 4.0}) for h in homes])
        portfolio = Portfolio.objects.create(code="bench-stats", name="Bench statistics",
                                             description=json.dumps(tag, sort_keys=True))
        portfolio.homes.set(homes)
    log(f"homes created in {time.time() - t0:.1f} s")

    days = [first + timedelta(days=d) for d in range(args.days)]
    from devices import telemetry

    span = (local_day_slots(days[0], tz)[0], local_day_slots(days[-1], tz)[0] + timedelta(days=1))
    for spec in (telemetry.MEASUREMENTS, telemetry.ROLLUPS):  # as the hourly beat job made them, day by day
        telemetry.ensure_partitions(spec, *span)
    step = timedelta(minutes=args.sample_min)
    rng = random.Random(7)
    t0 = time.time()
    written = 0
    for day in days:
        start, slots = local_day_slots(day, tz)
        services.replace_signal(SignalKind.CO2_INTENSITY, start, 15,
                                [float(BUILTIN_CO2[(start + timedelta(minutes=15 * t)).astimezone(tz).hour])
                                 for t in range(slots)], area="PT", source="bench")
        samples = slots * 15 // args.sample_min
        times = [start + k * step for k in range(samples)]
        shape = []
        for when in times:
            local = when.astimezone(tz)
            hour = local.hour + local.minute / 60
            shape.append((BUILTIN_LOAD_PER_UNIT[local.hour] * 6900, max(0.0, math.sin(math.pi * (hour - 7) / 13)) * 3200))
        rows = []
        for home, pv in zip(homes, pvs):
            scale, sun = rng.uniform(0.6, 1.4), rng.uniform(0.2, 1.0)
            for when, (load, pv_w) in zip(times, shape):
                rows.append({"home_id": home.pk, "time": when, "power_w": round(load * scale - pv_w * sun, 1)})
                rows.append({"home_id": home.pk, "device_id": pv.pk, "time": when, "power_w": round(-pv_w * sun, 1)})
        for i in range(0, len(rows), WRITE_BATCH_ROWS):  # each batch its own transaction, as the listener writes
            written += services.record_measurements(rows[i:i + WRITE_BATCH_ROWS])
        runs = OptimizationRun.objects.bulk_create([
            OptimizationRun(home=h, status=RunStatus.SUCCEEDED, input_hash="bench", problem={}, horizon_start=start,
                            horizon_end=start + timedelta(minutes=15 * slots)) for h in homes])
        made = start - timedelta(hours=6)
        schedules = Schedule.objects.bulk_create([
            Schedule(run=r, home_id=r.home_id, start=start, resolution_minutes=15, slots=slots, cost_eur=2.0,
                     co2_kg=1.0, baseline_cost_eur=2.5, baseline_co2_kg=1.1, savings_eur=0.5,
                     net_import_kw=[0.5] * slots, devices={}) for r in runs])
        Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(created_at=made)
        log(f"{day}: {written} measurements so far ({time.time() - t0:.0f} s)")
    services.maintain_telemetry_storage()  # as beat: partitions ahead (the seed's days are written already)
    # The beat job rebuilds today and yesterday every 15 minutes; over the seeded days it has done them all.
    services.roll_up_telemetry_days(days_back=args.days + 1)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # fresh statistics, as autovacuum keeps them in service
    return portfolio


if __name__ == "__main__":
    sys.exit(main())
