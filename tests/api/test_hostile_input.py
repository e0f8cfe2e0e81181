"""What a fuzzer and a hostile client sent: every one answers a 4xx with the standard JSON error body, never a 500.

Each case is a reproduction from the hardening review; the body shape is {"error": {"code", "message", "fields"}}.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def error_of(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


# --- instants in list filters and bodies ------------------------------------------------

LIST_PATHS = ["/api/v1/cycles/", "/api/v1/ev-sessions/", "/api/v1/signals/", "/api/v1/measurements/"]


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("value", ["2026-11-29T12:00:00+16:00", "2026-11-29T12:00:00-15:00",
                                   "2026-11-29T12:00:00+14:30", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                                   "2026-11-29T12:00:00"])
def test_list_filter_instants_out_of_range_are_400_naming_the_filter(api_client, home, path, value):
    err = error_of(api_client.get(path, {"start": value}), 400)
    assert list(err["fields"]) == ["start"], err


def test_commands_filter_instant_offset_is_400(api_client, home):
    err = error_of(api_client.get("/api/v1/commands/", {"created_after": "2026-11-29T12:00:00+16:00"}), 400)
    assert list(err["fields"]) == ["created_after"]


def test_list_filter_accepts_the_extreme_real_offsets(api_client, home):
    for value in ("2026-11-29T12:00:00+14:00", "2026-11-29T12:00:00-12:00", "2026-11-29T12:00:00Z"):
        assert api_client.get("/api/v1/cycles/", {"start": value}).status_code == 200


@pytest.mark.parametrize("earliest", ["9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z", "2026-12-01T08:00:00+15:00"])
def test_body_instants_out_of_range_are_400(api_client, washing_machine, earliest):
    r = api_client.post("/api/v1/cycles/", {"device": washing_machine.pk, "earliest_start": earliest,
                                            "latest_end": "2030-01-01T00:00:00Z",
                                            "power_profile": [{"duration_min": 30, "max_power_w": 1000}]})
    assert "earliest_start" in error_of(r, 400)["fields"]


# --- bodies -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/auth/register/", "/api/v1/homes/"])
def test_deeply_nested_json_is_a_400_parse_error(api_client, path):
    for body in ("[" * 1000, "[" * 100_000, "[" * 40 + "]" * 40):
        err = error_of(api_client.generic("POST", path, body, content_type="application/json"), 400)
        assert err["code"] == "parse_error", err


def test_body_over_the_upload_limit_is_413_json(anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"email": "a@example.com", "password": "x" * 5000})
    err = error_of(anon_client.generic("POST", "/api/v1/auth/token/", body, content_type="application/json"), 413)
    assert err["code"] == "too_large"


def test_form_bodies_are_415(api_client):
    r = api_client.generic("POST", "/api/v1/homes/", "name=x", content_type="application/x-www-form-urlencoded")
    assert error_of(r, 415)["code"] == "unsupported_media_type"


def test_nul_in_a_text_body_field_is_400_naming_it(api_client, home):
    err = error_of(api_client.patch(f"/api/v1/homes/{home.pk}/", {"tariff": "a\u0000b"}), 400)
    assert err["fields"] == {"tariff": ["Null characters are not allowed."]}
    r = api_client.patch(f"/api/v1/homes/{home.pk}/", {"name": "ok", "do_not_disturb_windows": [{"weekday\u0000": 1}]})
    assert list(error_of(r, 400)["fields"]) == ["do_not_disturb_windows[0].weekday\u0000"]


def test_nul_inside_json_parameters_is_400_naming_the_path(api_client, home):
    r = api_client.post("/api/v1/devices/", {"home": home.pk, "serial_number": "S1", "name": "Dryer",
                                             "device_type": "dryer", "parameters": {"note": "a\u0000"}})
    assert list(error_of(r, 400)["fields"]) == ["parameters.note"]


def test_nul_in_query_parameters_is_400_naming_them(api_client, home):
    err = error_of(api_client.get("/api/v1/signals/?area=PT%00&kind=import_price"), 400)
    assert err["fields"] == {"area": ["Null characters are not allowed."]}


def test_boolean_is_not_a_number(api_client, ev_charger, slot_start):
    r = api_client.post("/api/v1/ev-sessions/", {
        "device": ev_charger.pk, "arrival": (slot_start + timedelta(hours=1)).isoformat(),
        "departure": (slot_start + timedelta(hours=9)).isoformat(), "energy_kwh": True})
    assert error_of(r, 400)["fields"] == {"energy_kwh": ["A number is required."]}


# --- all field errors at once ---------------------------------------------------------------

def test_readme_example_reports_every_field(api_client, washing_machine, slot_start):
    r = api_client.post("/api/v1/cycles/", {
        "device": washing_machine.pk, "earliest_start": (slot_start + timedelta(hours=5)).isoformat(),
        "latest_end": (slot_start + timedelta(hours=2)).isoformat(),
        "power_profile": [{"duration_min": 0, "max_power_w": 1000}, {"duration_min": 10, "max_power_w": -1}]})
    fields = error_of(r, 400)["fields"]
    assert set(fields) == {"latest_end", "power_profile[0].duration_min", "power_profile[1].max_power_w"}, fields


def test_unknown_field_does_not_hide_the_others(api_client, washing_machine):
    r = api_client.post("/api/v1/cycles/", {"device": washing_machine.pk, "earliest_start": "soon",
                                            "colour": "red", "power_profile": "x"})
    fields = error_of(r, 400)["fields"]
    assert {"colour", "earliest_start", "latest_end", "power_profile"} <= set(fields), fields


# --- authentication errors ------------------------------------------------------------------

def test_bad_token_has_a_top_level_code(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    err = error_of(anon_client.get("/api/v1/homes/"), 401)
    assert err["code"] == "token_not_valid" and err["fields"] == {}


def test_expired_token_says_token_expired(anon_client, user, settings):
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert error_of(anon_client.get("/api/v1/homes/"), 401)["code"] == "token_expired"

    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = RefreshToken.for_user(user)
    refresh.set_exp(lifetime=-timedelta(seconds=1))
    r = Client().post("/api/v1/auth/token/refresh/", {"refresh": str(refresh)}, content_type="application/json")
    assert error_of(r, 401)["code"] == "token_expired"


def test_blacklisted_refresh_token_is_token_not_valid(api_client, user):
    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = str(RefreshToken.for_user(user))
    assert api_client.post("/api/v1/auth/logout/", {"refresh": refresh}).status_code == 204
    r = Client().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, content_type="application/json")
    assert error_of(r, 401)["code"] == "token_not_valid"


# --- API paths always answer JSON ------------------------------------------------------------

def test_unknown_api_path_is_a_json_404(settings):
    settings.DEBUG = False
    assert error_of(Client().get("/api/v1/no-such-thing/"), 404)["code"] == "not_found"


def test_server_error_on_an_api_path_is_json():
    from energy_manager.api_errors import server_error
    from django.test import RequestFactory

    r = server_error(RequestFactory().get("/api/v1/homes/"))
    assert r.status_code == 500 and json.loads(r.content)["error"]["code"] == "server_error"
    assert b"<" in server_error(RequestFactory().get("/admin/")).content  # other pages keep Django's


@pytest.mark.parametrize("start", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "2026-12-01T00:00:00+23:00"])
def test_optimization_horizon_out_of_range_is_400(api_client, home, start):
    r = api_client.post(f"/api/v1/homes/{home.pk}/optimizations", {"horizon_start": start, "horizon_hours": 24})
    assert list(error_of(r, 400)["fields"]) == ["horizon_start"]


def test_activation_start_out_of_range_is_400(staff_client, home):
    r = staff_client.post("/api/v1/operator/activations/", {"home": home.pk, "start": "9999-12-31T23:45:00Z",
                                                             "setpoints_kw": [1.0, 1.0]})
    assert list(error_of(r, 400)["fields"]) == ["start"]


def test_forced_solves_are_throttled_per_user(api_client, other_client, home, other_home, settings):
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["solve"].split("/")[0])
    statuses = [api_client.post(f"/api/v1/homes/{home.pk}/optimizations", {"force": True, "time_limit_s": 1})
                .status_code for _ in range(allowed)]
    assert 429 not in statuses, statuses
    err = error_of(api_client.post(f"/api/v1/homes/{home.pk}/optimizations", {"force": True}), 429)
    assert err["code"] == "throttled"
    assert api_client.get(f"/api/v1/homes/{home.pk}/optimizations").status_code == 200  # reading is not throttled
    assert other_client.post(f"/api/v1/homes/{other_home.pk}/optimizations", {"force": True}).status_code != 429


# --- the FlexiHome-compatible routes answer their contract's error shape -----------------------------------

COMPAT = "/api/energy_manager_service/flexibility"
CORRELATION = {"HTTP_X_CORRELATION_ID": "0f8fad5b-d9cb-469f-a165-70867728950e"}


@pytest.mark.parametrize("method, path", [
    ("get", f"{COMPAT}/available?user_id=alice%00"),
    ("post", f"{COMPAT}/accept?asset=alice%00"),
    ("delete", f"{COMPAT}/recommendations?sequence_id=s%00&serial_number=x"),
    ("get", f"{COMPAT}/recommendations?user_id=%00"),
])
def test_flexihome_nul_in_query_is_400_in_the_contract_shape(api_client, home, method, path):
    r = getattr(api_client, method)(path, **CORRELATION)
    assert r.status_code == 400 and set(r.json()) == {"error"}, r.content
    assert "Null characters" in r.json()["error"]
    assert r["X-Correlation-ID"] == CORRELATION["HTTP_X_CORRELATION_ID"]


@pytest.mark.parametrize("value", ["%C2%B2", "99999999999999999999999", "-1"])
def test_flexihome_recommendation_id_must_be_ascii_digits(api_client, home, value):
    for method, path in (("delete", f"{COMPAT}/recommendations"), ("post", f"{COMPAT}/recommendations/accept")):
        r = getattr(api_client, method)(f"{path}?recommendation_id={value}", {"delay_call_ok": True}, **CORRELATION)
        assert r.status_code == 400 and r.json() == {"error": "recommendation_id must be an integer"}, r.content


def test_flexihome_user_id_of_non_ascii_digits_is_not_found(api_client, home):
    r = api_client.get(f"{COMPAT}/available?user_id=%C2%B2", **CORRELATION)
    assert r.status_code == 404 and set(r.json()) == {"error"}
