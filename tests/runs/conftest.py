"""Fixtures of the optimization-run tests: owners, API clients and seeded standard homes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories.homes import seed_area_signals, seed_standard_home


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("runs-owner", "owner@example.com", "pw-runs-owner-2026")


@pytest.fixture
def stranger(db):
    return get_user_model().objects.create_user("runs-stranger", "stranger@example.com", "pw-runs-stranger-2026")


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_user("runs-operator", "op@example.com", "pw-runs-operator-2026",
                                                is_staff=True, is_superuser=True)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def home(owner, now):
    """A standard home (washer, dishwasher, EV session) with all the data a 24 h horizon needs."""
    seed_area_signals(now - timedelta(hours=1))
    return seed_standard_home(owner, "Standard home", now)
