"""Isolation matrix: user B against every object route of user A answers 404 and changes nothing; staff see all."""
from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from devices.models import ComfortPreference
from devices.services import record_measurements, replace_signal

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_objects(home, hub, washing_machine, battery, cycle, ev_session, slot_start):
    """One of each of user A's objects, by route."""
    signal = replace_signal("load_forecast", slot_start, 15, [250.0] * 96, home=home)
    record_measurements([{"home": home, "time": slot_start, "power_w": 10.0}])
    return {
        "homes": home, "hubs": hub, "devices": battery, "cycles": cycle, "ev-sessions": ev_session,
        "signals": signal,
    }


WRITE_BODIES = {
    "homes": {"name": "Taken"},
    "devices": {"name": "Taken", "serial_number": "X", "home": None, "device_type": "battery"},
    "cycles": {"program": "Taken"},
    "ev-sessions": {"energy_kwh": 1},
}

# (route, method, suffix): every detail and custom object action.
DETAIL_CASES = [
    (route, method, "")
    for route in ("homes", "devices", "cycles", "ev-sessions")
    for method in ("get", "put", "patch", "delete")
] + [
    ("hubs", "get", ""),
    ("hubs", "post", "release/"),
    ("devices", "get", "comfort/"),
    ("devices", "put", "comfort/"),
    ("signals", "get", ""),
]


def _snapshot(obj):
    obj.refresh_from_db()
    return model_to_dict(obj)


@pytest.mark.parametrize("route, method, suffix", DETAIL_CASES)
def test_other_user_gets_404_and_nothing_changes(a_objects, other_client, other_home, route, method, suffix):
    obj = a_objects[route]
    before = _snapshot(obj)
    body = dict(WRITE_BODIES.get(route, {}))
    if suffix == "comfort/":
        body = {"battery_reserve_pct": 90}
    if "home" in body:
        body["home"] = other_home.pk
    r = getattr(other_client, method)(f"/api/v1/{route}/{obj.pk}/{suffix}", body, format="json")
    assert r.status_code == 404, (route, method, suffix, r.status_code)
    assert r.json()["error"]["code"] == "not_found"
    assert _snapshot(obj) == before
    if suffix == "comfort/":
        assert not ComfortPreference.objects.filter(device=obj).exists()


LIST_ROUTES = ["homes", "hubs", "devices", "cycles", "ev-sessions", "signals", "measurements"]


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_other_user_lists_are_empty_and_staff_see_all(a_objects, api_client, other_client, staff_client, route):
    assert other_client.get(f"/api/v1/{route}/").json()["count"] == 0
    assert api_client.get(f"/api/v1/{route}/").json()["count"] >= 1
    assert staff_client.get(f"/api/v1/{route}/").json()["count"] >= 1


@pytest.mark.parametrize("route", ["homes", "hubs", "devices", "cycles", "ev-sessions", "signals"])
def test_staff_can_read_any_object(a_objects, staff_client, route):
    obj = a_objects[route]
    assert staff_client.get(f"/api/v1/{route}/{obj.pk}/").status_code == 200


@pytest.mark.parametrize("route, filter_name", [
    ("devices", "home"), ("cycles", "home"), ("ev-sessions", "home"), ("signals", "home"),
    ("measurements", "home"), ("hubs", "home"), ("cycles", "device"), ("measurements", "device"),
])
def test_filtering_by_another_users_id_reveals_nothing(a_objects, other_client, home, battery, washing_machine,
                                                      route, filter_name):
    value = home.pk if filter_name == "home" else (washing_machine.pk if route == "cycles" else battery.pk)
    r = other_client.get(f"/api/v1/{route}/", {filter_name: value})
    assert r.status_code == 200 and r.json()["count"] == 0


@pytest.mark.parametrize("route, payload", [
    ("devices", lambda o: {"home": o["homes"].pk, "serial_number": "X1", "name": "Mine", "device_type": "pv",
                           "parameters": {"peak_power_kw": 3}}),
    ("devices", lambda o: {"home": None, "hub": o["hubs"].pk, "serial_number": "X2", "name": "Mine",
                           "device_type": "pv", "parameters": {"peak_power_kw": 3}}),
    ("cycles", lambda o: {"device": o["cycles"].device_id, "earliest_start": "2026-01-01T00:00:00Z",
                          "latest_end": "2026-01-01T06:00:00Z",
                          "power_profile": [{"duration_min": 30, "max_power_w": 100}]}),
    ("ev-sessions", lambda o: {"device": o["ev-sessions"].device_id, "arrival": "2026-01-01T00:00:00Z",
                               "departure": "2026-01-01T06:00:00Z", "energy_kwh": 5}),
])
def test_other_user_cannot_create_into_a_users_objects(a_objects, other_client, other_home, route, payload):
    body = payload(a_objects)
    if body.get("home") is None and "home" in body:
        body["home"] = other_home.pk
    count_before = other_client.get(f"/api/v1/{route}/").json()["count"]
    r = other_client.post(f"/api/v1/{route}/", body, format="json")
    assert r.status_code == 400
    named = set(r.json()["error"]["fields"])
    assert named & {"home", "hub", "device"}
    for field in named & {"home", "hub", "device"}:
        assert "does not exist" in r.json()["error"]["fields"][field][0]  # same words as a missing id
    assert other_client.get(f"/api/v1/{route}/").json()["count"] == count_before


def test_missing_and_foreign_ids_look_the_same(a_objects, other_client):
    foreign = other_client.get(f"/api/v1/homes/{a_objects['homes'].pk}/")
    missing = other_client.get("/api/v1/homes/999999/")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
