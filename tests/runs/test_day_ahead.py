"""Day-ahead fleet runs: per home's local time, fanned out in chunks on a real worker, summarized in the admin."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.factories.homes import seed_area_signals, seed_standard_home
from devices.models import Home
from flexibility.planning import services, slots
from flexibility.planning.models import FleetRun, OptimizationRun, RunStatus, RunTrigger

from .test_workers import QUEUES, wait_for

LISBON, TOKYO = "Europe/Lisbon", "Asia/Tokyo"


def at_local(zone: str, day: date, hh_mm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), tzinfo=ZoneInfo(zone))


def seed_homes(owner, n: int, when: datetime, zone: str = LISBON, **kwargs) -> list[Home]:
    homes = [seed_standard_home(owner, f"{zone} {kwargs} {i}", when, **kwargs) for i in range(n)]
    Home.objects.filter(pk__in=[h.pk for h in homes]).update(timezone=zone)
    return list(Home.objects.filter(pk__in=[h.pk for h in homes]))


def day_ahead_runs(homes) -> dict[int, list[OptimizationRun]]:
    out: dict[int, list[OptimizationRun]] = {h.pk: [] for h in homes}
    for run in OptimizationRun.objects.filter(home__in=homes, trigger=RunTrigger.DAY_AHEAD).select_related("fleet_run"):
        out[run.home_id].append(run)
    return out


@pytest.mark.django_db
def test_each_zone_is_planned_once_after_its_own_local_day_ahead_time(owner, settings):
    """Beat ticks every 15 min; a home is planned for its local tomorrow once its local 18:00 has passed."""
    from django_celery_beat.models import PeriodicTask

    beat = PeriodicTask.objects.get(task="tasks.periodic.day_ahead")  # the row migrations create
    assert (beat.crontab.minute, beat.crontab.hour, str(beat.crontab.timezone)) == ("*/15", "*", "UTC")
    settings.DAY_AHEAD_LOCAL_TIME = "18:00"
    t1 = at_local(LISBON, timezone.now().date(), "18:05")  # Tokyo: 02:05/03:05 the next day
    seed_area_signals(t1 - timedelta(hours=1), hours=96)
    lisbon = seed_homes(owner, 2, t1)
    tokyo = seed_homes(owner, 2, t1, zone=TOKYO)
    tokyo_out = seed_homes(owner, 1, t1, zone=TOKYO, opt_in=False)

    assert services.start_due_day_ahead(now=t1 - timedelta(minutes=10)) == [], "17:55 in Lisbon: too early"
    fleets = services.start_due_day_ahead(now=t1, chunk_size=1)
    lisbon_day = t1.date() + timedelta(days=1)
    assert [(f.timezone, f.delivery_day, f.homes, f.chunks_total) for f in fleets] == [(LISBON, lisbon_day, 2, 2)]
    runs = day_ahead_runs(lisbon + tokyo + tokyo_out)
    for home in lisbon:
        (run,) = runs[home.pk]
        assert run.status == RunStatus.SUCCEEDED, run.error  # the chunk task plans its homes itself
        assert (run.horizon_start, run.horizon_end) == slots.local_day_horizon(home, lisbon_day)
        assert run.horizon_start.astimezone(ZoneInfo(LISBON)).time() == time(0, 0)
    assert all(runs[h.pk] == [] for h in tokyo + tokyo_out)

    # The next ticks of the evening find nothing new to do (idempotent).
    assert services.start_due_day_ahead(now=t1 + timedelta(minutes=15)) == []
    assert services.start_due_day_ahead(now=at_local(LISBON, t1.date(), "23:45")) == []

    # Tokyo's 18:00 comes the next UTC day; only Tokyo's opted-in homes are planned, for Tokyo's tomorrow.
    t3 = at_local(TOKYO, t1.astimezone(ZoneInfo(TOKYO)).date(), "18:05")
    assert t3 > t1
    fleets = services.start_due_day_ahead(now=t3)
    tokyo_day = t3.date() + timedelta(days=1)
    assert [(f.timezone, f.delivery_day, f.homes) for f in fleets] == [(TOKYO, tokyo_day, 2)]
    runs = day_ahead_runs(lisbon + tokyo + tokyo_out)
    assert [len(runs[h.pk]) for h in lisbon] == [1, 1] and runs[tokyo_out[0].pk] == []
    for home in tokyo:
        (run,) = runs[home.pk]
        assert run.status == RunStatus.SUCCEEDED, run.error  # the chunk task plans its homes itself
        assert run.horizon_start == at_local(TOKYO, tokyo_day, "00:00")
        assert run.horizon_end - run.horizon_start == timedelta(hours=24)
    assert services.start_due_day_ahead(now=t3 + timedelta(minutes=15)) == []


@pytest.mark.django_db
def test_a_zone_whose_fan_out_is_still_running_is_not_started_twice(owner, settings):
    settings.DAY_AHEAD_LOCAL_TIME = "18:00"
    t1 = at_local(LISBON, timezone.now().date(), "18:05")
    seed_area_signals(t1 - timedelta(hours=1), hours=48)
    seed_homes(owner, 1, t1)
    FleetRun.objects.create(delivery_day=t1.date() + timedelta(days=1), timezone=LISBON, homes=1,
                            chunks_total=1, chunks_done=0)  # its chunk message has not been processed yet
    assert services.start_due_day_ahead(now=t1) == []


@pytest.mark.django_db(transaction=True)
def test_day_ahead_fans_out_in_chunks_and_one_broken_home_does_not_block_the_others(owner, operator, settings,
                                                                                     celery_worker):
    settings.DAY_AHEAD_LOCAL_TIME = "18:00"
    t1 = at_local(LISBON, timezone.now().date(), "18:05")
    seed_area_signals(t1 - timedelta(hours=1), hours=48)
    good = seed_homes(owner, 25, t1)
    broken = seed_homes(owner, 1, t1)
    Home.objects.filter(pk=broken[0].pk).update(tariff=None)  # no tariff: cannot be planned
    opted_out = seed_homes(owner, 3, t1, opt_in=False)
    worker = celery_worker(queues=QUEUES, concurrency=2)

    (fleet,) = services.start_due_day_ahead(now=t1, chunk_size=4)
    assert (fleet.homes, fleet.chunks_total) == (26, 7)

    def finished():
        services.refresh_fleet_summaries([fleet.pk])  # what the reaper does every minute
        return FleetRun.objects.filter(pk=fleet.pk, finished_at__isnull=False).first()

    fleet = wait_for(finished, timeout=240, what="the fleet run to finish", worker=worker)
    assert fleet.chunks_done == 7
    chunk_lines = [line for line in worker.log().splitlines() if "tasks.periodic.day_ahead_chunk[" in line]
    assert sum("succeeded" in line for line in chunk_lines) == 7, chunk_lines  # one message per chunk of <= 4
    assert fleet.counts == {"succeeded": 25, "failed": 1}, fleet.counts
    assert fleet.duration_s is not None and fleet.duration_s > 0
    runs = day_ahead_runs(good + broken + opted_out)
    assert all(len(runs[h.pk]) == 1 and runs[h.pk][0].status == RunStatus.SUCCEEDED for h in good)
    (failed,) = runs[broken[0].pk]
    assert failed.status == RunStatus.FAILED and "tariff" in failed.error, failed.error
    assert all(runs[h.pk] == [] for h in opted_out)
    assert all(r.fleet_run_id == fleet.pk for h in good + broken for r in runs[h.pk])

    admin = Client()
    admin.force_login(operator)
    page = admin.get("/admin/flexibility/fleetrun/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "failed 1, succeeded 25" in body and str(fleet.delivery_day.year) in body
