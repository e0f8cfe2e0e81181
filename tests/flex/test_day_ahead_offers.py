"""Offers follow the day-ahead runs, and offers freeze at gate closure on a beat schedule (eager mode)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from energy_manager.celery import app
from flexibility.planning import services
from flexibility.grid.models import FlexibilityOffer
from flexibility.planning.models import OptimizationRun, RunStatus, RunTrigger
from tasks.grid import freeze_due_offers

from .conftest import make_home, store_offer, tomorrow

pytestmark = pytest.mark.django_db


def test_a_day_ahead_run_builds_the_homes_offer_for_that_day(django_capture_on_commit_callbacks):
    contributing = make_home("dayahead01")
    opted_out = make_home("dayahead02", opt_in=False)
    day = tomorrow()
    with django_capture_on_commit_callbacks(execute=True):
        services.start_day_ahead(delivery_day=day, home_ids=[contributing.pk, opted_out.pk])

    run = OptimizationRun.objects.get(home=contributing, trigger=RunTrigger.DAY_AHEAD)
    assert run.status == RunStatus.SUCCEEDED
    offer = FlexibilityOffer.objects.get(home=contributing, delivery_day=day)
    assert offer.run_id == run.pk
    assert not offer.frozen
    assert all(lo <= b <= hi for lo, b, hi in zip(offer.min_kw, offer.baseline_kw, offer.max_kw))
    assert max(h - lo for lo, h in zip(offer.min_kw, offer.max_kw)) > 1.0  # the battery gives room to move
    assert not FlexibilityOffer.objects.filter(home=opted_out).exists()


def test_offers_past_gate_closure_are_frozen_by_the_periodic_task(household):
    offer = store_offer(household)
    FlexibilityOffer.objects.filter(pk=offer.pk).update(gate_closure=timezone.now() - timedelta(minutes=1))
    later = store_offer(make_home("dayahead03"))
    assert later.gate_closure > timezone.now()

    freeze_due_offers.apply()

    offer.refresh_from_db()
    later.refresh_from_db()
    assert offer.frozen and not later.frozen


def test_the_freeze_runs_on_beat_on_the_default_queue():
    row = PeriodicTask.objects.get(task="tasks.flex.freeze_due_offers")
    assert row.enabled and row.interval.every == 1 and row.interval.period == "minutes"
    assert app.amqp.router.route({}, "tasks.flex.freeze_due_offers")["queue"].name == "default"
    assert app.amqp.router.route({}, "tasks.flex.build_offer")["queue"].name == "optimization"
