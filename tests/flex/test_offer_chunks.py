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
