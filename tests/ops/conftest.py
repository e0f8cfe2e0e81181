"""Fixtures of the operations tests."""
from __future__ import annotations

import pytest
import redis

from energy_manager import metrics
from tests.plugins.celery_worker import broker_url


@pytest.fixture
def clean_metrics():
    """No histogram left in the test Redis by an earlier test: counts start at zero."""
    client = redis.Redis.from_url(broker_url())
    keys = list(client.scan_iter(match=f"{metrics.KEY_PREFIX}:*"))
    if keys:
        client.delete(*keys)
    client.close()

