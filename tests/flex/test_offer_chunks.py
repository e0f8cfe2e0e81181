"""Offers of a chunk of homes built in one pass; a home with bad data gets none and the rest do."""
from __future__ import annotations

import pytest

from devices.models import Device
from flexibility.grid import services as flex_services
from flexibility.grid.models import FlexibilityOffer

from .conftest import make_home, tomorrow

pytestmark = pytest.mark.django_db


def test_offers_of_a_chunk_and_a_broken_home_fails_alone():
    day = tomorrow()
    good = [make_home(f"chunk-offer-{i}") for i in range(3)]
    broken = make_home("chunk-offer-broken")
    Device.objects.filter(home=broken).update(parameters={})  # written around validation: no battery data
    outsider = make_home("chunk-offer-out", opt_in=False)

    offers = flex_services.build_offers([h.pk for h in good + [broken, outsider]], day)

    assert all(offers[h.pk] is not None and offers[h.pk].delivery_day == day for h in good)
    assert offers[broken.pk] is None and offers[outsider.pk] is None
    assert set(FlexibilityOffer.objects.values_list("home_id", flat=True)) == {h.pk for h in good}
    single = flex_services.build_offer(good[0].pk, day)  # the one-home path is the same pass
    assert single.pk == offers[good[0].pk].pk and single.baseline_kw == offers[good[0].pk].baseline_kw


def test_offers_start_from_the_stored_day_ahead_plans(caplog):
    """After a day-ahead chunk, each home's envelope reuses its stored plan instead of solving again."""
    import logging

    from flexibility.planning.models import FleetRun, RunStatus
    from flexibility.planning.services import plan_fleet_chunk

    day = tomorrow()
    homes = [make_home(f"reuse-offer-{i}") for i in range(3)]
    fresh = make_home("reuse-offer-no-plan")
    fleet = FleetRun.objects.create(delivery_day=day, homes=3, chunks_total=1)
    plan_fleet_chunk(fleet.pk, [h.pk for h in homes])
    assert set(fleet.runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}

    with caplog.at_level(logging.INFO, logger="flexibility.grid.services"):
        offers = flex_services.build_offers([h.pk for h in homes + [fresh]], day)

    assert all(offers[h.pk] is not None for h in homes + [fresh])
    assert all(offers[h.pk].run is not None and offers[h.pk].run.fleet_run_id == fleet.pk for h in homes)
    lines = {h.pk: [r.getMessage() for r in caplog.records if f"home {h.pk} " in r.getMessage()] for h in homes + [fresh]}
    assert all(any("from its stored plan" in m for m in lines[h.pk]) for h in homes), lines
    assert any("from a new plan" in m for m in lines[fresh.pk]), lines[fresh.pk]


def test_a_chunk_of_offers_costs_a_fixed_number_of_queries_and_keeps_frozen_offers():
    """Reads and writes per chunk, not per home: 2 homes and 6 homes cost the same queries. A second pass
    refreshes the open offers in bulk and leaves a frozen one (and one past its gate, then frozen) as it was."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    day = tomorrow()
    few = [make_home(f"fixed-q-{i}") for i in range(2)]
    more = [make_home(f"fixed-q-more-{i}") for i in range(6)]
    counts = []
    for homes in (few, more):
        with CaptureQueriesContext(connection) as queries:
            offers = flex_services.build_offers([h.pk for h in homes], day)
        assert all(offers[h.pk] is not None for h in homes)
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts

    frozen, closing, open_ = more[:3]
    FlexibilityOffer.objects.filter(home=frozen).update(frozen=True, min_kw=[-9.0] * offers[frozen.pk].slots)
    FlexibilityOffer.objects.filter(home=closing).update(gate_closure=timezone.now() - timedelta(minutes=1))
    FlexibilityOffer.objects.filter(home=open_).update(min_kw=[-9.0] * offers[open_.pk].slots)
    with CaptureQueriesContext(connection) as queries:
        again = flex_services.build_offers([h.pk for h in more], day)
    assert len(queries.captured_queries) <= counts[1] + 2  # the updates instead of the insert
    by_home = {o.home_id: o for o in FlexibilityOffer.objects.filter(home__in=more)}
    assert by_home[frozen.pk].frozen and by_home[frozen.pk].min_kw[0] == -9.0
    assert by_home[closing.pk].frozen and again[closing.pk].pk == offers[closing.pk].pk
    assert not by_home[open_.pk].frozen and by_home[open_.pk].min_kw == offers[open_.pk].min_kw
    assert by_home[open_.pk].updated_at > offers[open_.pk].updated_at
