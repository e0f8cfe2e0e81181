"""Operator admin: every domain model's pages load, one search box finds homes, hub secrets shown once."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from devices.models import Hub
from devices.hub_credentials import check_secret

pytestmark = pytest.mark.django_db

DEVICES_MODELS = [m for m in admin.site._registry if m._meta.app_label == "devices"]


@pytest.fixture
def operator_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_every_devices_model_is_registered():
    from django.apps import apps

    assert set(apps.get_app_config("devices").get_models()) == set(DEVICES_MODELS)


@pytest.mark.parametrize("model", DEVICES_MODELS, ids=lambda m: m.__name__)
def test_changelist_and_add_pages_load(operator_client, model, home, hub, cycle, battery, ev_session):
    info = (model._meta.app_label, model._meta.model_name)
    assert operator_client.get(reverse("admin:%s_%s_changelist" % info)).status_code == 200
    assert operator_client.get(reverse("admin:%s_%s_changelist" % info), {"q": "alice"}).status_code == 200
    assert operator_client.get(reverse("admin:%s_%s_add" % info)).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        assert operator_client.get(reverse("admin:%s_%s_change" % info, args=[obj.pk])).status_code == 200


@pytest.mark.parametrize("query", ["alice@example.com", "HUB-SEARCH-1", "SERIAL-XYZ-9"])
def test_one_search_box_finds_a_home(operator_client, home, other_home, make_hub, make_device, query):
    make_hub("HUB-SEARCH-1", home=home)
    make_device(home, "pv", serial_number="SERIAL-XYZ-9")
    r = operator_client.get(reverse("admin:devices_home_changelist"), {"q": query})
    homes = list(r.context["cl"].result_list)
    assert homes == [home]


def test_admin_registers_hub_and_resets_secret(operator_client, home):
    r = operator_client.post(reverse("admin:devices_hub_add"), {
        "hub_id": "HUB-ADMIN-1", "home": home.pk, "firmware_version": "2.0",
        "devices-TOTAL_FORMS": 0, "devices-INITIAL_FORMS": 0, "devices-MIN_NUM_FORMS": 0, "devices-MAX_NUM_FORMS": 1000,
    }, follow=True)
    assert r.status_code == 200
    hub = Hub.objects.get(hub_id="HUB-ADMIN-1")
    shown = [str(m) for m in r.context["messages"] if "secret" in str(m)]
    assert len(shown) == 1
    secret = shown[0].split("secret ")[1].split(" ")[0]
    assert hub.mqtt_username == "hub-HUB-ADMIN-1" and check_secret(secret, hub.mqtt_password_hash)

    r = operator_client.post(reverse("admin:devices_hub_changelist"),
                             {"action": "reset_mqtt_secret", "_selected_action": [hub.pk]}, follow=True)
    new = [str(m) for m in r.context["messages"] if "new MQTT secret" in str(m)]
    new_secret = new[0].split("secret ")[1].split(" ")[0]
    hub.refresh_from_db()
    assert check_secret(new_secret, hub.mqtt_password_hash) and not check_secret(secret, hub.mqtt_password_hash)


def test_household_user_cannot_use_admin(client, user):
    client.force_login(user)
    assert client.get(reverse("admin:devices_home_changelist")).status_code == 302
