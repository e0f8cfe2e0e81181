"""Rolling re-planning tick on many homes: how long finding the homes that left their plan takes.

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_inputs \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python -m bench.rolling --homes 10000 --json

Seeds N homes in bulk, each with a battery, a current 24-hour plan (schedule + run problem with a
base-load forecast) and the last hour of telemetry (home meter, battery SoC); `--off` of them
(default 10 %) measure a SoC 30 points off the plan. Then runs one tick the way the workers do:
list the homes with a current plan, check them chunk by chunk (ROLLING_CHUNK_SIZE), ask the
debounced re-planning (Redis keys, messages left unconsumed and purged afterwards) for those off
their plan. Prints one JSON line: listing and checking seconds, per-chunk median, re-plans asked.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")

SLOTS = 96


def seed(homes: int, off_share: float, now) -> list[int]:
    from django.contrib.auth import get_user_model

    from django.db import transaction

    from devices import telemetry
    from devices.models import Device, DeviceType, Home
    from flexibility.planning.models import OptimizationRun, RunStatus, RunTrigger, Schedule
    from flexibility.planning.slots import floor_to_slot

    User = get_user_model()
    owner, _ = User.objects.get_or_create(username="bench-rolling@example.com", defaults={"email": "bench-rolling@example.com"})
    Home.objects.filter(owner=owner).delete()
    start = floor_to_slot(now) - timedelta(hours=2)
    created = Home.objects.bulk_create([Home(owner=owner, name=f"rolling-{i}") for i in range(homes)], batch_size=2000)
    batteries = Device.objects.bulk_create([
        Device(home=h, serial_number=f"BAT-{h.pk}", name="Battery", device_type=DeviceType.BATTERY,
               parameters={"capacity_kwh": 10.0, "max_charge_kw": 5.0, "max_discharge_kw": 5.0, "min_soc_pct": 10,
                           "initial_soc_pct": 50}) for h in created], batch_size=2000)
    base = [0.3 + 0.2 * ((t // 4) % 6 == 0) for t in range(SLOTS)]
    soc_kwh = [5.0 + 2.0 * (t / SLOTS) for t in range(SLOTS + 1)]
    runs = OptimizationRun.objects.bulk_create([OptimizationRun(
        home=h, status=RunStatus.SUCCEEDED, trigger=RunTrigger.DAY_AHEAD, input_hash="bench", horizon_start=start,
        horizon_end=start + timedelta(minutes=15 * SLOTS), problem={
            "start": start.isoformat(), "resolution_min": 15, "slots": SLOTS, "cycles": [], "ev_sessions": [],
            "batteries": [{"id": f"battery-{b.pk}", "device": b.serial_number, "capacity_kwh": 10.0}],
            "site": {"base_load_kw": base}}) for h, b in zip(created, batteries)], batch_size=1000)
    Schedule.objects.bulk_create([Schedule(
        run=r, home=h, start=start, resolution_minutes=15, slots=SLOTS, cost_eur=1.0, co2_kg=1.0, baseline_cost_eur=1.2,
        baseline_co2_kg=1.0, savings_eur=0.2, net_import_kw=base,
        devices={f"battery-{b.pk}": {"device": b.serial_number, "power_kw": [0.5] * SLOTS, "soc_kwh": soc_kwh}})
        for r, h, b in zip(runs, created, batteries)], batch_size=1000)
    t_now = int((now - start) / timedelta(minutes=15))
    planned_pct = 100 * soc_kwh[t_now] / 10.0
    off_every = max(int(round(1 / off_share)), 1) if off_share > 0 else 0
    rows = []
    for i, (h, b) in enumerate(zip(created, batteries)):
        off = off_every and i % off_every == 0
        rows.append((h.pk, b.pk, now - timedelta(minutes=3), 500.0, None, planned_pct - 30 if off else planned_pct + 2,
                     None))
        rows += [(h.pk, None, now - timedelta(minutes=m), 800.0 + 10 * (m % 3), None, None, None) for m in (5, 20, 35, 50)]
    with transaction.atomic():  # raw rows and their roll-ups, as the listener writes them
        telemetry.write_batch(rows)
    return [h.pk for h in created]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=10000)
    parser.add_argument("--off", type=float, default=0.1, help="share of homes off their plan")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not os.environ.get("CELERY_BROKER_URL"):
        parser.error("set CELERY_BROKER_URL (the debounce keys live in Redis)")
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from devices.models import Home
    from flexibility.planning.services import rolling

    call_command("migrate", verbosity=0)
    now = timezone.now()
    t0 = time.perf_counter()
    ids = seed(args.homes, args.off, now)
    seed_s = time.perf_counter() - t0
    r = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in r.scan_iter("hems:reoptimize:*"):
        r.delete(key)
    t0 = time.perf_counter()
    listed = rolling.homes_with_current_plan(now)
    list_s = time.perf_counter() - t0
    size = settings.ROLLING_CHUNK_SIZE
    chunk_s, replans, checked = [], 0, 0
    for i in range(0, len(listed), size):
        t1 = time.perf_counter()
        result = rolling.check_chunk(listed[i:i + size], now, max_replans=size)
        chunk_s.append(time.perf_counter() - t1)
        replans += result.replans
        checked += result.homes
    total_s = list_s + sum(chunk_s)
    for key in r.scan_iter("hems:reoptimize:*"):
        r.delete(key)
    for queue in ("default", "optimization"):
        r.delete(queue)
    Home.objects.filter(pk__in=ids).delete()
    print(json.dumps({"bench": "rolling.tick", "homes": args.homes, "homes_checked": checked, "replans_asked": replans,
                      "seed_s": round(seed_s, 1), "list_s": round(list_s, 3), "check_s_total": round(sum(chunk_s), 2),
                      "chunk_size": size, "chunks": len(chunk_s),
                      "chunk_s_median": round(statistics.median(chunk_s), 3) if chunk_s else None,
                      "tick_s_one_process": round(total_s, 2), "load": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
