"""Fixtures for grid flexibility: households with a battery, offers, portfolios, service accounts."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from devices.models import Device, DeviceType, Home, Hub, SignalKind, SignalSeries, TariffKind
from flexibility.grid import services as flex_services
from flexibility.grid.models import Portfolio

CORRELATION = {"HTTP_X_CORRELATION_ID": "0f8fad5b-d9cb-469f-a165-70867728950e"}


def tomorrow() -> date:
    """The next delivery day whose gate is still open (from 23:30 UTC, tomorrow's gate has closed: the day
    after), with half an hour to spare for the test."""
    return (timezone.now() + timedelta(days=1, hours=1)).date()


def make_home(username: str, opt_in: bool = True, battery: bool = True, tz: str = "UTC",
              efficiency: float = 1.0) -> Home:
    """A dynamic-tariff home with a price signal, a flat 0.5 kW base load and (optionally) a battery."""
    user = get_user_model().objects.create_user(username=username, password="x-" + username)
    home = Home.objects.create(owner=user, name=f"home of {username}", timezone=tz, tariff_kind=TariffKind.DYNAMIC,
                               global_optimizer_opt_in=opt_in, export_limit_kw=3)
    start = datetime.combine(timezone.now().date() - timedelta(days=1), datetime.min.time(), tzinfo=dt_timezone.utc)
    slots = 4 * 24 * 4
    prices = [0.10 if (i // 4) % 24 < 8 else 0.25 if (i // 4) % 24 >= 18 else 0.16 for i in range(slots)]
    SignalSeries.objects.create(kind=SignalKind.IMPORT_PRICE, home=home, start=start, resolution_minutes=15, values=prices)
    SignalSeries.objects.create(kind=SignalKind.CO2_INTENSITY, home=home, start=start, resolution_minutes=15,
                                values=[200.0] * slots)
    SignalSeries.objects.create(kind=SignalKind.LOAD_FORECAST, home=home, start=start, resolution_minutes=15,
                                values=[500.0] * slots)
    if battery:
        hub = Hub.objects.create(hub_id=f"hub-{username}", home=home, mqtt_username=f"hub-{username}")
        Device.objects.create(home=home, hub=hub, serial_number=f"BAT-{username}", name="Battery",
                              device_type=DeviceType.BATTERY, automatic_management=True,
                              parameters={"capacity_kwh": 10, "max_charge_kw": 3, "max_discharge_kw": 3,
                                          "charge_efficiency": efficiency, "discharge_efficiency": efficiency,
                                          "min_soc_pct": 0, "initial_soc_pct": 50})
    return home


def synthetic_envelope(slots: int, base: float = 0.5, down: float = 1.0, up: float = 2.0) -> dict:
    return {
        "baseline_kw": [base] * slots, "min_kw": [base - down] * slots, "max_kw": [base + up] * slots,
        "cost_min_eur": [0.05 * down] * slots, "cost_max_eur": [0.02 * up] * slots,
    }


def store_offer(home: Home, day: date | None = None, **kw):
    day = day or tomorrow()
    _, slots = flex_services.delivery_window(home, day)
    return flex_services.save_offer(home, day, synthetic_envelope(slots, **kw))


@pytest.fixture
def household(db) -> Home:
    return make_home("hh00000001")


@pytest.fixture
def neighbour(db) -> Home:
    return make_home("hh00000002")


@pytest.fixture
def outsider(db) -> Home:
    return make_home("hh00000003")


@pytest.fixture
def portfolio(household, neighbour) -> Portfolio:
    p = Portfolio.objects.create(code="feeder-1", name="Feeder 1")
    p.homes.set([household, neighbour])
    return p


@pytest.fixture
def aggregator(portfolio):
    account, key = flex_services.create_service_account("aggregator-1", portfolios=[portfolio])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}", **CORRELATION)
    client.account = account
    return client


def jwt_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}", **CORRELATION)
    return client
