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
