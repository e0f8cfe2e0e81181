"""The household page without a browser: login, owner scoping, accept/decline by POST only."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from flexibility.planning.models import Recommendation, RecommendationStatus
from hub_bridge.models import HubCommand
from tests.insights.conftest import stored_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def recommendation(home, cycle, slot_start):
    schedule = stored_plan(home, slot_start, 96, made=slot_start, baseline_cost_eur=2.0, savings_eur=0.5)
    start = cycle.earliest_start + timedelta(hours=2)
    return Recommendation.objects.create(schedule=schedule, home=home, device=cycle.device, cycle=cycle,
                                         recommended_start=start, recommended_end=start + cycle.duration,
                                         saving_eur=0.21)


def test_login_required_and_only_own_homes(client, user, home, other_home):
    r = client.get(reverse("webapp:home"))
    assert r.status_code == 302 and reverse("webapp:login") in r["Location"]
    client.force_login(user)
    assert client.get(reverse("webapp:home")).status_code == 200
    assert client.get(reverse("webapp:home"), {"home": other_home.pk}).status_code == 404


def test_accept_then_decline_is_refused(client, user, recommendation):
    client.force_login(user)
    accept = reverse("webapp:accept", args=[recommendation.pk])
    assert client.get(accept).status_code == 405  # changes happen by POST only (CSRF-protected)
    r = client.post(accept, follow=True)
    assert r.status_code == 200
    assert any("will start at" in str(m) for m in r.context["messages"])
    recommendation.refresh_from_db()
    assert recommendation.status == RecommendationStatus.ACCEPTED
    assert recommendation.cycle.scheduled_start is not None
    assert HubCommand.objects.filter(recommendation=recommendation, kind="start_cycle").count() == 1
    r = client.post(reverse("webapp:decline", args=[recommendation.pk]), follow=True)
    assert any("already accepted" in str(m) for m in r.context["messages"])
    recommendation.refresh_from_db()
    assert recommendation.status == RecommendationStatus.ACCEPTED


def test_another_households_recommendation_is_not_found(client, other_user, recommendation):
    client.force_login(other_user)
    assert client.post(reverse("webapp:decline", args=[recommendation.pk])).status_code == 404
    recommendation.refresh_from_db()
    assert recommendation.status == RecommendationStatus.PENDING


def test_household_page_lists_pending_recommendations_and_savings(client, user, recommendation):
    client.force_login(user)
    html = client.get(reverse("webapp:home")).content.decode()
    assert f'data-recommendation="{recommendation.pk}"' in html and "saves 0.21 EUR" in html
    assert "This week" in html and "This month" in html
