"""An activation's shares re-planned a chunk per task: one home with bad data fails alone, fixed queries."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.models import Device
from flexibility.grid import services as flex_services
from flexibility.grid.models import ActivationMode, ActivationStatus, FlexibilityOffer, Portfolio, ShareStatus
from flexibility.planning.models import RunStatus, RunTrigger

from .conftest import make_home, tomorrow

pytestmark = pytest.mark.django_db


def _activation(prefix: str, n: int):
    """n homes with offers and an activation half-way to their summed upper limit at noon (4 slots)."""
    day = tomorrow()
    homes = [make_home(f"{prefix}-{i}") for i in range(n)]
    flex_services.build_offers([h.pk for h in homes], day)
    portfolio = Portfolio.objects.create(code=prefix, name=prefix)
    portfolio.homes.set(homes)
    account, _ = flex_services.create_service_account(prefix, portfolios=[portfolio])
    offers = list(FlexibilityOffer.objects.filter(home__in=homes, delivery_day=day))
    first, slots = 48, 4
    request = [round(sum(o.baseline_kw[t] + 0.5 * (o.max_kw[t] - o.baseline_kw[t]) for o in offers), 3)
               for t in range(first, first + slots)]
    act = flex_services.create_activation(
        account, start=offers[0].start + timedelta(minutes=15 * first), requested_min_kw=request,
        requested_max_kw=request, mode=ActivationMode.SETPOINT, portfolio=portfolio, external_id=prefix)
    return homes, act, list(act.shares.filter(status=ShareStatus.QUEUED).values_list("pk", flat=True))


def test_a_chunk_of_shares_is_planned_together_and_a_broken_home_fails_alone():
    homes, act, queued = _activation("share-chunk", 4)
    assert len(queued) >= 2
    broken = act.shares.get(pk=queued[0]).home
    Device.objects.filter(home=broken).update(parameters={})  # written around validation: no battery data

    statuses = flex_services.replan_shares(queued)

    assert statuses[queued[0]] == ShareStatus.FAILED and set(statuses) == set(queued)
    assert all(statuses[pk] == ShareStatus.PLANNED for pk in queued[1:])
    for share in act.shares.filter(pk__in=queued[1:]).select_related("run"):
        assert share.run.trigger == RunTrigger.ACTIVATION and share.run.status == RunStatus.SUCCEEDED
        assert share.run.problem["grid_request"]["min_net_import_kw"][48] == share.min_kw[0]
        assert all(lo - 2e-3 <= p <= hi + 2e-3 for p, lo, hi in zip(share.planned_kw, share.min_kw, share.max_kw))
    failed = act.shares.get(pk=queued[0])
    assert failed.message and failed.run_id is None
    act.refresh_from_db()
    assert act.status == ActivationStatus.PARTIAL and act.planned_at is not None
    assert flex_services.replan_shares(queued) == {}  # a redelivered chunk finds nothing queued


def test_a_chunk_of_shares_costs_a_fixed_number_of_queries():
    counts, sizes = [], []
    for prefix, n in (("share-q-few", 2), ("share-q-more", 8)):
        _, act, queued = _activation(prefix, n)
        sizes.append(len(queued))
        with CaptureQueriesContext(connection) as queries:
            statuses = flex_services.replan_shares(queued)
        assert set(statuses.values()) == {ShareStatus.PLANNED}
        act.refresh_from_db()
        assert act.status == ActivationStatus.PLANNED
        counts.append(len(queries.captured_queries))
    assert sizes[0] < sizes[1] and counts[0] == counts[1], (sizes, counts)
