"""Inputs benchmarks: bulk signal ingestion through the API, and forecast accuracy on simulated homes.

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_inputs \\
        .venv/bin/python -m bench.inputs ingest --areas 30 --days 365 --json
    .venv/bin/python -m bench.inputs forecast --homes 20 --days 7 --json

`ingest` posts one request holding a year of hourly prices for each of N areas to
POST /api/v1/signals/ (Django's full request path in this process, real PostgreSQL), first into
an empty table and then again (the idempotent replace), and prints the median seconds.
`forecast` runs the day-ahead base-load, PV and hot-water models on simulated homes
(tests/inputs/simulation.py) for consecutive days and prints their mean per-home MAE next to
seasonal naive's (same slot one week earlier), and the time per forecast.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timezone

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")


def _payload(areas: int, days: int) -> dict:
    start = datetime(2025, 12, 31, 23, tzinfo=timezone.utc)
    series = []
    for a in range(areas):
        values = [round(0.05 + 0.03 * ((h + a) % 24) / 24 + 0.001 * (h % 7), 5) for h in range(days * 24)]
        series.append({"kind": "import_price", "area": f"Z{a:02d}", "start": start.isoformat(),
                       "resolution_minutes": 60, "values": values, "source": "bench"})
    return {"series": series}


def ingest(areas: int, days: int, repeats: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from devices.models import SignalSeries

    call_command("migrate", verbosity=0)
    User = get_user_model()
    operator, _ = User.objects.get_or_create(username="bench-inputs@example.com",
                                             defaults={"email": "bench-inputs@example.com", "is_staff": True})
    client = APIClient()
    client.force_authenticate(operator)
    body = json.dumps(_payload(areas, days))
    fresh, again = [], []
    for _ in range(repeats):
        SignalSeries.objects.filter(source="bench").delete()
        for sink in (fresh, again):
            t0 = time.perf_counter()
            r = client.generic("POST", "/api/v1/signals/", body, content_type="application/json")
            sink.append(time.perf_counter() - t0)
            assert r.status_code == 201, r.content[:500]
    stored = SignalSeries.objects.filter(source="bench").count()
    SignalSeries.objects.filter(source="bench").delete()
    return {"bench": "inputs.ingest", "areas": areas, "days": days, "values": areas * days * 24,
            "payload_mb": round(len(body) / 1e6, 2), "series_stored": stored,
            "fresh_s_median": round(statistics.median(fresh), 3), "replace_s_median": round(statistics.median(again), 3),
            "repeats": repeats, "load": os.getloadavg()[0]}


def forecast(homes: int, days: int) -> dict:
    import numpy as np

    from flexibility.forecasting import base_load, hot_water, pv
    from flexibility.forecasting.reference import BUILTIN_LOAD_PER_UNIT
    from tests.inputs.simulation import SimulatedHome, days_before, mean_daily_mae

    first = datetime(2026, 4, 14, 23, tzinfo=timezone.utc)
    maes: dict[str, list[tuple[float, float]]] = {k: [] for k in ("base_load", "pv", "hot_water")}
    seconds: dict[str, list[float]] = {k: [] for k in maes}
    for seed in range(homes):
        home = SimulatedHome(seed=1000 + seed)
        system = pv.PVSystem(float(home.rng.uniform(2, 8)), 38.7, -9.1, float(home.rng.uniform(10, 40)),
                             float(home.rng.uniform(120, 240)))
        start, slots = days_before(first, 42)
        cases = {
            "base_load": (home.base_load_w(start, slots + days * 96), lambda h, d: base_load.forecast_base_load(
                h, d, 96, tz=home.tz, country="PT", per_unit_hourly=BUILTIN_LOAD_PER_UNIT, contracted_kva=6.9)),
            "pv": (home.pv_w(system, start, slots + days * 96), lambda h, d: pv.forecast_pv(system, h, d, 96, tz=home.tz)),
            "hot_water": (home.hot_water_w(start, slots + days * 96),
                          lambda h, d: hot_water.forecast_hot_water(h, d, 96, tz=home.tz, country="PT")),
        }
        for kind, (series, model) in cases.items():
            def timed(history, day, model=model, kind=kind):
                t0 = time.perf_counter()
                f = model(history, day)
                seconds[kind].append(time.perf_counter() - t0)
                return f
            maes[kind].append(mean_daily_mae(series, first, days, timed))
    result: dict = {"bench": "inputs.forecast", "homes": homes, "days": days}
    for kind, pairs in maes.items():
        result[kind] = {"mae_w": round(float(np.mean([m for m, _ in pairs])), 1),
                        "naive_mae_w": round(float(np.mean([n for _, n in pairs])), 1),
                        "homes_better_than_naive": sum(m < n for m, n in pairs),
                        "forecast_ms_median": round(statistics.median(seconds[kind]) * 1000, 1)}
    result["load"] = os.getloadavg()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--areas", type=int, default=30)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    f = sub.add_parser("forecast")
    f.add_argument("--homes", type=int, default=20)
    f.add_argument("--days", type=int, default=7)
    f.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "ingest":
        result = ingest(args.areas, args.days, args.repeats)
    else:
        import django

        django.setup()
        result = forecast(args.homes, args.days)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
