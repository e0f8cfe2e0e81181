"""Planning input rules: windows already over, phases above the device's rating, one unit convention."""
from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command

from devices.device_parameters import DEVICE_PARAMETERS
from devices.models import Cycle, Device

pytestmark = pytest.mark.django_db


def fields_of(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.json())
    return response.json()["error"]["fields"]


def test_cycle_whose_window_is_over_is_400_naming_latest_end(api_client, washing_machine, slot_start):
    r = api_client.post("/api/v1/cycles/", {
        "device": washing_machine.pk, "earliest_start": (slot_start - timedelta(hours=6)).isoformat(),
        "latest_end": (slot_start - timedelta(minutes=1)).isoformat(),
        "power_profile": [{"duration_min": 60, "max_power_w": 2000}]})
    assert list(fields_of(r)) == ["latest_end"]
    assert not Cycle.objects.exists()


def test_moving_a_cycle_window_into_the_past_is_400_but_other_edits_of_a_past_cycle_are_not(api_client, cycle,
                                                                                              slot_start):
    r = api_client.patch(f"/api/v1/cycles/{cycle.pk}/", {
        "earliest_start": (slot_start - timedelta(hours=5)).isoformat(),
        "latest_end": (slot_start - timedelta(hours=1)).isoformat()})
    assert list(fields_of(r)) == ["latest_end"]
    Cycle.objects.filter(pk=cycle.pk).update(earliest_start=slot_start - timedelta(hours=5),
                                             latest_end=slot_start - timedelta(hours=1))
    assert api_client.patch(f"/api/v1/cycles/{cycle.pk}/", {"program": "renamed"}).status_code == 200


def test_ev_session_whose_departure_is_over_is_400(api_client, ev_charger, slot_start):
    r = api_client.post("/api/v1/ev-sessions/", {
        "device": ev_charger.pk, "arrival": (slot_start - timedelta(hours=9)).isoformat(),
        "departure": (slot_start - timedelta(hours=1)).isoformat(), "energy_kwh": 10})
    assert list(fields_of(r)) == ["departure"]


def test_phase_above_the_device_rating_is_400_naming_the_phase(api_client, washing_machine, slot_start):
    assert washing_machine.parameters["max_power_kw"] == 2.8
    r = api_client.post("/api/v1/cycles/", {
        "device": washing_machine.pk, "earliest_start": (slot_start + timedelta(hours=1)).isoformat(),
        "latest_end": (slot_start + timedelta(hours=9)).isoformat(),
        "power_profile": [{"duration_min": 10, "max_power_w": 400}, {"duration_min": 40, "max_power_w": 3000},
                          {"duration_min": 10, "max_power_w": 2800}]})
    assert list(fields_of(r)) == ["power_profile[1].max_power_w"]


def test_device_parameters_give_power_in_kw_and_energy_in_kwh():
    names = {name for schema in DEVICE_PARAMETERS.values() for name in schema}
    assert not {n for n in names if n.endswith(("_w", "_wh"))}, names
    assert {"max_power_kw", "standing_loss_kw", "max_charge_kw", "capacity_kwh"} <= names


def test_old_watt_parameter_is_rejected_with_its_name(api_client, home):
    r = api_client.post("/api/v1/devices/", {"home": home.pk, "serial_number": "WM-9", "name": "Washer",
                                             "device_type": "washing_machine", "parameters": {"max_power_w": 2200}})
    assert "parameters.max_power_w" in fields_of(r)


def test_data_migration_converts_watt_parameters_to_kw(home):
    migration = importlib.import_module("devices.migrations.0005_device_power_in_kw")
    old = Device.objects.create(home=home, device_type="dishwasher", serial_number="OLD-1", name="Old",
                                parameters={"max_power_w": 2200})
    ev = Device.objects.create(home=home, device_type="ev_charger", serial_number="EV-OLD", name="EV",
                               parameters={"max_power_kw": 7.4})
    heater = Device.objects.create(home=home, device_type="water_heater", serial_number="WH-OLD", name="Boiler",
                                   parameters={"electric_power_kw": 2.0, "standing_loss_w": 50})
    migration.forwards(django_apps, None)
    for device in (old, ev, heater):
        device.refresh_from_db()
    assert old.parameters == {"max_power_kw": 2.2} and ev.parameters == {"max_power_kw": 7.4}
    assert heater.parameters == {"electric_power_kw": 2.0, "standing_loss_kw": 0.05}
    migration.backwards(django_apps, None)
    old.refresh_from_db()
    assert old.parameters == {"max_power_w": 2200}


def test_demo_washer_is_rated_for_its_own_program():
    call_command("seed_demo")
    cycle = Cycle.objects.get(sequence_id="demo-washing")
    rated_w = cycle.device.parameters["max_power_kw"] * 1000
    assert max(p["max_power_w"] for p in cycle.power_profile) <= rated_w
