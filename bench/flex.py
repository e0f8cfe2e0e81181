"""Grid flexibility benchmark: offers for N battery homes, then one portfolio activation over them.

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/hems_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python -m bench.flex --homes 1000 --workers 2 --json

Seeds N homes (dynamic prices, flat load, a 10 kWh battery with 95 % charge and discharge efficiency under automatic management
behind a hub), starts `celery worker -Q optimization -c N`, sends one tasks.flex.build_offers
per chunk of homes (as the day-ahead chunks do; with `--day-ahead`, plans them through the day-ahead
fan-out first, whose chunks ask for the offers) and times until every offer is stored; then posts one portfolio activation
(4 quarter-hours at noon, half-way from the summed baseline to the summed upper limit),
which is split at least cost and re-planned per home by the workers (runs, schedules,
hub commands), and times until the activation is settled. Prints JSON lines.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--day-ahead", action="store_true",
                        help="plan the homes through the day-ahead fan-out first; their chunks then ask for the "
                             "offers, which reuse the stored plans (the production path)")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args(argv)
    if not os.environ.get("CELERY_BROKER_URL"):
        parser.error("set CELERY_BROKER_URL (the benchmark needs Redis and real worker processes)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from flexibility.grid import services as flex_services
    from flexibility.grid.models import Activation, ActivationMode, ActivationStatus, FlexibilityOffer, Portfolio, ServiceAccount
    from hub_bridge.models import HubCommand
    from flexibility.grid.services import OFFER_CHUNK
    from tasks.grid import build_offers
    from tests.flex.conftest import make_home, tomorrow
    from tests.plugins.celery_worker import CeleryWorker, purge_queues, use_broker

    def log(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    call_command("migrate", verbosity=0)
    from devices.models import Hub

    # The synthetic households never log in: a cheap password hash keeps seeding from
    # measuring PBKDF2 (about 0.5 s per user on this machine).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    get_user_model().objects.filter(username__startswith="bf").delete()
    Hub.objects.filter(hub_id__startswith="hub-bf").delete()
    Activation.objects.filter(portfolio__code="bench-flex").delete()
    Portfolio.objects.filter(code="bench-flex").delete()
    ServiceAccount.objects.filter(name="bench-flex").delete()
    t0 = time.time()
    homes = [make_home(f"bf{i:08d}", efficiency=0.95) for i in range(args.homes)]  # a real battery's losses
    portfolio = Portfolio.objects.create(code="bench-flex", name="Bench portfolio")
    portfolio.homes.set(homes)
    account, _ = flex_services.create_service_account("bench-flex", portfolios=[portfolio])
    log(f"seeded {len(homes)} homes in {time.time() - t0:.1f} s")

    broker = settings.CELERY_BROKER_URL
    purge_queues(["optimization", "default"], broker)
    undo = use_broker(broker)
    worker = CeleryWorker(["optimization", "default"], concurrency=args.workers, name="bench-flex", broker=broker,
                          env={"DATABASE_URL": os.environ["DATABASE_URL"], "LOG_LEVEL": "WARNING"})
    worker.start()
    day = tomorrow()
    try:
        t0 = time.time()
        ids = [home.pk for home in homes]
        if args.day_ahead:
            from flexibility.planning.services import start_day_ahead

            fleet = start_day_ahead(day, chunk_size=OFFER_CHUNK, home_ids=ids)
        else:
            for i in range(0, len(ids), OFFER_CHUNK):
                build_offers.delay(ids[i:i + OFFER_CHUNK], day.isoformat())
        deadline = time.monotonic() + args.timeout
        while FlexibilityOffer.objects.filter(home__in=homes, delivery_day=day).count() < len(homes):
            if time.monotonic() > deadline:
                raise SystemExit("timed out building offers")
            time.sleep(0.5)
        offers_s = time.time() - t0
        extra = {}
        if args.day_ahead:  # the plans' share of the time: offers are built while later chunks plan
            from flexibility.planning.models import OptimizationRun

            last_plan = max(OptimizationRun.objects.filter(fleet_run=fleet).values_list("finished_at", flat=True))
            plans_s = (last_plan - fleet.started_at).total_seconds()
            # The offer chunks are queued behind the plan chunks still waiting (one queue, FIFO), so most offers
            # are built after the last plan: their own rate is the offers written after it over that time.
            later = FlexibilityOffer.objects.filter(home__in=homes, delivery_day=day, created_at__gt=last_plan)
            last_offer = max(later.values_list("created_at", flat=True), default=last_plan)
            window_s = (last_offer - last_plan).total_seconds()
            extra = {"via": "day-ahead", "plans_done_s": round(plans_s, 2),
                     "offers_after_plans_s": round(offers_s - plans_s, 2), "offers_built_after_plans": later.count(),
                     "offers_homes_per_s_after_plans": round(later.count() / window_s, 2) if window_s > 0 else None}
        print(json.dumps({"bench": "flex", "phase": "offers", "homes": len(homes), "workers": args.workers, **extra,
                          "elapsed_s": round(offers_s, 2), "homes_per_s": round(len(homes) / offers_s, 2),
                          "loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)

        offers = list(FlexibilityOffer.objects.filter(home__in=homes, delivery_day=day))
        first, n = 48, 4
        request = [round(sum(o.baseline_kw[t] + 0.5 * (o.max_kw[t] - o.baseline_kw[t]) for o in offers), 3)
                   for t in range(first, first + n)]
        t0 = time.time()
        act = flex_services.create_activation(
            account, start=offers[0].start + timedelta(minutes=15 * first), requested_min_kw=request,
            requested_max_kw=request, mode=ActivationMode.SETPOINT, portfolio=portfolio, external_id="bench")
        split_s = time.time() - t0
        while Activation.objects.filter(pk=act.pk, status=ActivationStatus.PLANNING).exists():
            if time.monotonic() > deadline:
                raise SystemExit("timed out planning the activation")
            time.sleep(0.2)
        planned_s = time.time() - t0
        act.refresh_from_db()
        shares = list(act.shares.all())
        planned_sum = [round(sum((s.planned_kw or [0.0] * n)[t] for s in shares), 3) for t in range(n)]
        print(json.dumps({
            "bench": "flex", "phase": "activation", "homes": len(homes), "workers": args.workers,
            "split_s": round(split_s, 2), "planned_and_dispatched_s": round(planned_s, 2), "status": act.status,
            "shares": {st: sum(1 for s in shares if s.status == st) for st in {s.status for s in shares}},
            "requested_kw": request, "planned_kw": planned_sum,
            "hub_commands": HubCommand.objects.filter(run__activation_shares__activation=act).distinct().count(),
            "replanned_homes": sum(1 for s in shares if s.run_id),
            "target_s": 60, "loadavg_1m": round(os.getloadavg()[0], 2),
        }), flush=True)
    finally:
        worker.stop()
        undo()
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
