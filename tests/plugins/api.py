"""Fixtures for the household/DER domain and the authenticated API.

Everything is built through the real services (devices.services), so fixtures
obey the same validation as the API. Use them from any test:

    def test_x(api_client, home, make_device, make_cycle): ...

- users: `user` (household A), `other_user` (household B), `staff_user` (operator), `make_user`
- API clients with a real JWT: `api_client` (user), `other_client`, `staff_client`, `anon_client`, `client_for(user)`
- objects of `user`: `home`, `hub` (claimed by `home`; `hub.mqtt_secret` holds its secret), `dishwasher`,
  `washing_machine`, `ev_charger`, `battery`, `pv`, `water_heater`, `cycle` (on the washing machine),
  `ev_session`; `other_home` belongs to `other_user`
- factories: `make_home(owner, **fields)`, `make_hub(hub_id=None, home=None)`, `make_device(home, device_type, **fields)`,
  `make_cycle(device, **fields)`, `make_ev_session(device, **fields)`
- time: `slot_start` = the current quarter-hour (aware, UTC)
"""
from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, Callable

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from devices import services
from devices.device_parameters import EXAMPLE_PARAMETERS
from devices.models import Cycle, Device, EVSession, Home, Hub

PASSWORD = "correct-horse-battery-2026"
_counter = itertools.count(1)

WASHING_PROFILE = [
    {"duration_min": 4, "expected_power_w": 350, "max_power_w": 400},
    {"duration_min": 47, "expected_power_w": 2000, "max_power_w": 2600},
    {"duration_min": 21, "expected_power_w": 800, "max_power_w": 1000},
    {"duration_min": 3, "expected_power_w": 300, "max_power_w": 400},
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """PBKDF2's million iterations dominate fixture time; tests do not measure hashing strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache_namespace(settings) -> None:
    """Each test counts its own throttled requests: the shared Redis cache gets a key prefix per test."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture
def slot_start() -> datetime:
    now = datetime.now(dt_timezone.utc)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


@pytest.fixture
def make_user(db, django_user_model) -> Callable[..., Any]:
    def make(email: str | None = None, *, is_staff: bool = False, password: str = PASSWORD):
        email = email or f"user{next(_counter)}@example.com"
        if is_staff:
            return django_user_model.objects.create_superuser(username=email, email=email, password=password)
        return django_user_model.objects.create_user(username=email, email=email, password=password)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice@example.com")


@pytest.fixture
def other_user(make_user):
    return make_user("bob@example.com")


@pytest.fixture
def staff_user(make_user):
    return make_user("operator@example.com", is_staff=True)


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    """An APIClient carrying a freshly issued JWT access token for `user`."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        client.user = user
        return client

    return make


def registered_household(email: str, password: str = "a-long-passphrase-2026") -> APIClient:
    """A household that registered and logged in through the API, as a new user does: its client."""
    anon = APIClient()
    assert anon.post("/api/v1/auth/register/", {"email": email, "password": password}, format="json").status_code == 202
    token = anon.post("/api/v1/auth/token/", {"email": email, "password": password}, format="json").json()["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def add_starter_devices(client: APIClient, home_id: int, prefix: str) -> None:
    """A PV system, a water heater and a battery, added through the API with their serials under `prefix`."""
    for body in ({"serial_number": f"{prefix}-PV", "name": "Roof", "device_type": "pv",
                  "parameters": {"peak_power_kw": 3.5}},
                 {"serial_number": f"{prefix}-WH", "name": "Boiler", "device_type": "water_heater",
                  "parameters": {"electric_power_kw": 2.0, "tank_volume_l": 150}},
                 {"serial_number": f"{prefix}-BAT", "name": "Battery", "device_type": "battery",
                  "parameters": {"capacity_kwh": 5, "max_charge_kw": 2.5, "max_discharge_kw": 2.5}}):
        r = client.post("/api/v1/devices/", {"home": home_id, **body}, format="json")
        assert r.status_code == 201, r.json()


@pytest.fixture
def api_client(client_for, user) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_client(client_for, other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def staff_client(client_for, staff_user) -> APIClient:
    return client_for(staff_user)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_home(db) -> Callable[..., Home]:
    def make(owner, **fields: Any) -> Home:
        fields.setdefault("name", f"Home {next(_counter)}")
        return services.home_save(Home(owner=owner), fields)

    return make


@pytest.fixture
def home(make_home, user) -> Home:
    from devices.models import Tariff

    return make_home(user, name="Alice's home", timezone="Europe/Lisbon",
                     tariff=Tariff.objects.get(code="pt-tri-hourly-daily"), tariff_kind="tri_hourly")


@pytest.fixture
def other_home(make_home, other_user) -> Home:
    return make_home(other_user, name="Bob's home")


@pytest.fixture
def make_hub(db) -> Callable[..., Hub]:
    def make(hub_id: str | None = None, home: Home | None = None) -> Hub:
        hub, secret = services.hub_register(hub_id=hub_id or f"HUB-{next(_counter):05d}", home=home)
        hub.mqtt_secret = secret
        return hub

    return make


@pytest.fixture
def hub(make_hub, home) -> Hub:
    return make_hub(home=home)


@pytest.fixture
def make_device(db) -> Callable[..., Device]:
    def make(home: Home, device_type: str, **fields: Any) -> Device:
        n = next(_counter)
        fields.setdefault("serial_number", f"{device_type.upper()}-{n}")
        fields.setdefault("name", f"{device_type.replace('_', ' ').title()} {n}")
        fields.setdefault("parameters", dict(EXAMPLE_PARAMETERS[device_type]))
        fields.setdefault("hub", home.hubs.first())
        return services.device_save(Device(home=home, device_type=device_type), fields)

    return make


def _device_fixture(device_type: str):
    @pytest.fixture
    def fixture(make_device, home, hub) -> Device:
        return make_device(home, device_type)

    fixture.__doc__ = f"A {device_type} of `home`, behind `hub`."
    return fixture


dishwasher = _device_fixture("dishwasher")
washing_machine = _device_fixture("washing_machine")
ev_charger = _device_fixture("ev_charger")
battery = _device_fixture("battery")
pv = _device_fixture("pv")
water_heater = _device_fixture("water_heater")


@pytest.fixture
def make_cycle(slot_start) -> Callable[..., Cycle]:
    def make(device: Device, **fields: Any) -> Cycle:
        fields.setdefault("program", "eco 40")
        fields.setdefault("earliest_start", slot_start + timedelta(hours=1))
        fields.setdefault("latest_end", fields["earliest_start"] + timedelta(hours=10))
        fields.setdefault("power_profile", [dict(p) for p in WASHING_PROFILE])
        return services.cycle_save(Cycle(device=device), fields)

    return make


@pytest.fixture
def cycle(make_cycle, washing_machine) -> Cycle:
    return make_cycle(washing_machine)


@pytest.fixture
def make_ev_session(slot_start) -> Callable[..., EVSession]:
    def make(device: Device, **fields: Any) -> EVSession:
        fields.setdefault("arrival", slot_start)
        fields.setdefault("departure", slot_start + timedelta(hours=12))
        fields.setdefault("energy_kwh", 20.0)
        return services.ev_session_save(EVSession(device=device), fields)

    return make


@pytest.fixture
def ev_session(make_ev_session, ev_charger) -> EVSession:
    return make_ev_session(ev_charger)
