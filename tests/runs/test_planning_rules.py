"""Planning answers: a repeated request returns the existing run with its schedule."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_identical_request_answers_the_existing_run_with_its_schedule(home, owner_client,
                                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = owner_client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    assert first.status_code == 202
    again = owner_client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    body = again.json()
    assert again.status_code == 200 and body["id"] == first.json()["id"] and body["created"] is False
    assert body["status"] == "succeeded" and body["schedule"] is not None
    assert body["schedule"] == owner_client.get(f"/api/v1/optimizations/{body['id']}").json()["schedule"]


def test_missing_forecast_422_names_the_exact_missing_span_in_fields(owner, owner_client, now):
    from datetime import timedelta

    from tests.factories.homes import seed_area_signals, seed_standard_home
    from devices.models import SignalKind, SignalSeries
    from flexibility.planning.slots import floor_to_slot

    seed_area_signals(now - timedelta(hours=1))
    home = seed_standard_home(owner, "Short forecast", now, with_load=False)
    start = floor_to_slot(now)
    covered = 4 * 48 - 34  # all but the last 8.5 h of a 48 h horizon
    SignalSeries.objects.create(kind=SignalKind.LOAD_FORECAST, home=home, start=start, resolution_minutes=15,
                                values=[400.0] * covered)
    r = owner_client.post(f"/api/v1/homes/{home.pk}/optimizations", {"horizon_hours": 48}, format="json")
    assert r.status_code == 422, r.content
    error = r.json()["error"]
    assert list(error["fields"]) == ["load_forecast"], error
    gap_start, gap_end = start + timedelta(minutes=15 * covered), start + timedelta(hours=48)
    message = error["fields"]["load_forecast"][0]
    assert f"from {gap_start.isoformat()} to {gap_end.isoformat()}" in message, message
    assert "8.5 h of the 48 h horizon" in message, message
    assert message in error["message"]
