"""Every household endpoint: happy paths, 400s naming the offending fields, nothing half-written."""
from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import ComfortPreference, Cycle, Device, DoNotDisturbWindow, EVSession, Home, Hub
from devices.hub_credentials import check_secret

pytestmark = pytest.mark.django_db


def fields_of(response) -> set[str]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}
    return set(body["error"]["fields"])


# --- homes ---------------------------------------------------------------------------

def test_home_create_with_windows_and_read_back(api_client, user):
    r = api_client.post("/api/v1/homes/", {
        "name": "Flat", "timezone": "Europe/Madrid", "contracted_power_kva": 10.35, "export_limit_kw": 3,
        "tariff_kind": "bi_hourly", "tariff": "pt-bi-hourly-daily", "objective": "mixed", "objective_cost_weight": 0.7,
        "do_not_disturb_windows": [{"weekday": 0, "start_time": "22:00", "end_time": "07:00"}],
    }, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["owner"] == user.pk
    assert body["contracted_power_kva"] == 10.35
    assert body["tariff"] == "pt-bi-hourly-daily"
    assert body["do_not_disturb_windows"] == [{"weekday": 0, "start_time": "22:00:00", "end_time": "07:00:00"}]
    detail = api_client.get(f"/api/v1/homes/{body['id']}/").json()
    assert detail == body


@pytest.mark.parametrize("payload, bad", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"contracted_power_kva": 7}, "contracted_power_kva"),
    ({"export_limit_kw": -1}, "export_limit_kw"),
    ({"objective_cost_weight": 1.5}, "objective_cost_weight"),
    ({"tariff_kind": "simple", "tariff": "pt-tri-hourly-daily"}, "tariff"),
    ({"tariff": "no-such-tariff"}, "tariff"),
    ({"do_not_disturb_windows": [{"weekday": 7, "start_time": "22:00", "end_time": "07:00"}]},
     "do_not_disturb_windows[0].weekday"),
    ({"do_not_disturb_windows": [{"weekday": 1, "start_time": "22:00", "end_time": "22:00"}]},
     "do_not_disturb_windows[0].end_time"),
    ({"colour": "blue"}, "colour"),
])
def test_home_bad_input_names_the_field_and_writes_nothing(api_client, payload, bad):
    r = api_client.post("/api/v1/homes/", {"name": "X", **payload}, format="json")
    assert r.status_code == 400
    assert bad in fields_of(r)
    assert Home.objects.count() == 0


def test_home_update_replaces_windows_atomically(api_client, home):
    url = f"/api/v1/homes/{home.pk}/"
    ok = api_client.patch(url, {"do_not_disturb_windows": [
        {"weekday": d, "start_time": "23:00", "end_time": "07:00"} for d in range(7)]}, format="json")
    assert ok.status_code == 200 and len(ok.json()["do_not_disturb_windows"]) == 7
    bad = api_client.patch(url, {"name": "Renamed", "do_not_disturb_windows": [
        {"weekday": 1, "start_time": "10:00", "end_time": "12:00"},
        {"weekday": 2, "start_time": "10:00", "end_time": "10:00"}]}, format="json")
    assert bad.status_code == 400
    assert fields_of(bad) == {"do_not_disturb_windows[1].end_time"}
    home.refresh_from_db()
    assert home.name == "Alice's home"
    assert DoNotDisturbWindow.objects.filter(home=home).count() == 7


def test_home_delete_frees_its_hubs(api_client, home, hub):
    assert api_client.delete(f"/api/v1/homes/{home.pk}/").status_code == 204
    hub.refresh_from_db()
    assert hub.home_id is None


def test_list_is_paginated(api_client, make_home, user):
    for _ in range(3):
        make_home(user)
    body = api_client.get("/api/v1/homes/").json()
    assert body["count"] == 3 and len(body["results"]) == 3 and "next" in body


def test_unauthenticated_gets_401_in_standard_shape(anon_client):
    r = anon_client.get("/api/v1/homes/")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_api_root_is_public(anon_client):
    r = anon_client.get("/api/v1/")
    assert r.status_code == 200 and "homes" in r.json()


# --- hubs ----------------------------------------------------------------------------

def test_staff_registers_hub_and_sees_secret_once(staff_client, api_client):
    r = staff_client.post("/api/v1/hubs/", {"hub_id": "HUB-ABC-1", "firmware_version": "1.2.0"}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    hub = Hub.objects.get(hub_id="HUB-ABC-1")
    assert body["mqtt_username"] == "hub-HUB-ABC-1" == hub.mqtt_username
    assert check_secret(body["mqtt_secret"], hub.mqtt_password_hash)
    assert body["mqtt_secret"] not in hub.mqtt_password_hash
    assert "mqtt_secret" not in staff_client.get(f"/api/v1/hubs/{hub.pk}/").json()
    # households cannot register hubs
    assert api_client.post("/api/v1/hubs/", {"hub_id": "HUB-X-2"}, format="json").status_code == 403
    dup = staff_client.post("/api/v1/hubs/", {"hub_id": "HUB-ABC-1"}, format="json")
    assert dup.status_code == 400 and "hub_id" in fields_of(dup)
    bad = staff_client.post("/api/v1/hubs/", {"hub_id": "a/b#"}, format="json")
    assert bad.status_code == 400 and "hub_id" in fields_of(bad)


def test_reset_secret(staff_client, hub):
    old_hash = hub.mqtt_password_hash
    r = staff_client.post(f"/api/v1/hubs/{hub.pk}/reset-secret/")
    assert r.status_code == 200
    hub.refresh_from_db()
    assert hub.mqtt_password_hash != old_hash
    assert check_secret(r.json()["mqtt_secret"], hub.mqtt_password_hash)
    assert not check_secret(hub.mqtt_secret, hub.mqtt_password_hash)


def test_claim_and_release(api_client, other_client, home, other_home, make_hub, make_device):
    hub = make_hub("HUB-CLAIM-1")
    assert api_client.get(f"/api/v1/hubs/{hub.pk}/").status_code == 404  # unclaimed: not yours
    r = api_client.post("/api/v1/hubs/claim/", {"hub_id": "HUB-CLAIM-1", "home": home.pk}, format="json")
    assert r.status_code == 200 and r.json()["home"] == home.pk
    assert api_client.post("/api/v1/hubs/claim/", {"hub_id": "HUB-CLAIM-1", "home": home.pk},
                           format="json").status_code == 200  # idempotent
    taken = other_client.post("/api/v1/hubs/claim/", {"hub_id": "HUB-CLAIM-1", "home": other_home.pk}, format="json")
    assert taken.status_code == 409
    assert str(home.pk) not in taken.json()["error"]["message"] and home.name not in taken.json()["error"]["message"]
    # B cannot claim into A's home either: A's home is "not found" for B
    stolen = other_client.post("/api/v1/hubs/claim/", {"hub_id": "HUB-CLAIM-1", "home": home.pk}, format="json")
    assert stolen.status_code == 400 and fields_of(stolen) == {"home"}
    missing = api_client.post("/api/v1/hubs/claim/", {"hub_id": "NOPE-404", "home": home.pk}, format="json")
    assert missing.status_code == 404
    hub.refresh_from_db()
    device = make_device(home, "dishwasher", hub=hub)
    assert api_client.post(f"/api/v1/hubs/{hub.pk}/release/").status_code == 200
    hub.refresh_from_db()
    device.refresh_from_db()
    assert hub.home_id is None and device.hub_id is None and device.home_id == home.pk
    assert other_client.post("/api/v1/hubs/claim/", {"hub_id": "HUB-CLAIM-1", "home": other_home.pk},
                             format="json").status_code == 200


def test_household_cannot_delete_or_reset_hub(api_client, hub):
    assert api_client.delete(f"/api/v1/hubs/{hub.pk}/").status_code == 403
    assert api_client.post(f"/api/v1/hubs/{hub.pk}/reset-secret/").status_code == 403
    assert Hub.objects.filter(pk=hub.pk).exists()


# --- devices -------------------------------------------------------------------------

def test_device_crud(api_client, home, hub):
    r = api_client.post("/api/v1/devices/", {
        "home": home.pk, "hub": hub.pk, "serial_number": "EV-9", "name": "Wallbox", "brand": "Acme",
        "device_type": "ev_charger", "parameters": {"max_power_kw": 11, "phases": 3},
    }, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["parameters"]["max_power_kw"] == 11 and body["parameters"]["min_power_kw"] == 1.38  # defaults filled
    url = f"/api/v1/devices/{body['id']}/"
    assert api_client.patch(url, {"automatic_management": True}, format="json").json()["automatic_management"] is True
    assert api_client.get("/api/v1/devices/", {"home": home.pk, "device_type": "ev_charger"}).json()["count"] == 1
    assert api_client.get("/api/v1/devices/", {"device_type": "battery"}).json()["count"] == 0
    assert api_client.delete(url).status_code == 204
    assert not Device.objects.filter(pk=body["id"]).exists()


@pytest.mark.parametrize("payload, bad", [
    ({"device_type": "toaster"}, "device_type"),
    ({"device_type": "ev_charger", "parameters": {}}, "parameters.max_power_kw"),
    ({"device_type": "ev_charger", "parameters": {"max_power_kw": 1000}}, "parameters.max_power_kw"),
    ({"device_type": "ev_charger", "parameters": {"max_power_kw": 7, "turbo": True}}, "parameters.turbo"),
    ({"device_type": "battery", "parameters": {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5,
                                               "initial_soc_pct": 5, "min_soc_pct": 10}}, "parameters.initial_soc_pct"),
    ({"device_type": "water_heater", "parameters": {"electric_power_kw": "2 kW", "tank_volume_l": 200}},
     "parameters.electric_power_kw"),
    ({"device_type": "dishwasher", "parameters": [1, 2]}, "parameters"),
    ({"device_type": "dishwasher", "serial_number": ""}, "serial_number"),
])
def test_device_bad_input(api_client, home, payload, bad):
    data = {"home": home.pk, "serial_number": "S-1", "name": "D", **payload}
    r = api_client.post("/api/v1/devices/", data, format="json")
    assert r.status_code == 400
    assert bad in fields_of(r)
    assert Device.objects.count() == 0


def test_device_serial_unique_per_home(api_client, home, other_home, make_device):
    make_device(home, "dishwasher", serial_number="DW-1")
    r = api_client.post("/api/v1/devices/", {"home": home.pk, "serial_number": "DW-1", "name": "Again",
                                             "device_type": "dishwasher"}, format="json")
    assert r.status_code == 400 and fields_of(r) == {"serial_number"}
    make_device(other_home, "dishwasher", serial_number="DW-1")  # another home may reuse it


def test_device_hub_must_belong_to_the_same_home(api_client, home, make_home, make_hub, user):
    second = make_home(user)
    foreign_hub = make_hub(home=second)
    r = api_client.post("/api/v1/devices/", {"home": home.pk, "hub": foreign_hub.pk, "serial_number": "S",
                                             "name": "D", "device_type": "dishwasher"}, format="json")
    assert r.status_code == 400 and fields_of(r) == {"hub"}


def test_device_home_and_type_are_fixed_after_creation(api_client, dishwasher, make_home, user):
    second = make_home(user)
    r = api_client.patch(f"/api/v1/devices/{dishwasher.pk}/", {"home": second.pk, "device_type": "pv"}, format="json")
    assert r.status_code == 200
    dishwasher.refresh_from_db()
    assert dishwasher.home_id != second.pk and dishwasher.device_type == "dishwasher"


def test_comfort_get_put(api_client, battery, water_heater):
    url = f"/api/v1/devices/{battery.pk}/comfort/"
    assert api_client.get(url).json()["battery_reserve_pct"] is None
    r = api_client.put(url, {"battery_reserve_pct": 20}, format="json")
    assert r.status_code == 200 and r.json()["battery_reserve_pct"] == 20
    assert ComfortPreference.objects.get(device=battery).battery_reserve_pct == 20
    bad = api_client.put(url, {"battery_reserve_pct": 120}, format="json")
    assert bad.status_code == 400 and fields_of(bad) == {"battery_reserve_pct"}
    wrong_kind = api_client.put(url, {"temperature_min_c": 40, "temperature_max_c": 60}, format="json")
    assert wrong_kind.status_code == 400 and "temperature_min_c" in fields_of(wrong_kind)
    assert ComfortPreference.objects.get(device=battery).battery_reserve_pct == 20
    wh = f"/api/v1/devices/{water_heater.pk}/comfort/"
    band = api_client.put(wh, {"temperature_min_c": 60, "temperature_max_c": 50}, format="json")
    assert band.status_code == 400 and fields_of(band) == {"temperature_max_c"}
    assert api_client.put(wh, {"temperature_min_c": 50, "temperature_max_c": 60}, format="json").status_code == 200


# --- cycles --------------------------------------------------------------------------

def _cycle_payload(device, start, **kw):
    return {"device": device.pk, "program": "eco", "earliest_start": start.isoformat(),
            "latest_end": (start + timedelta(hours=6)).isoformat(),
            "power_profile": [{"duration_min": 60, "max_power_w": 2000}], **kw}


def test_cycle_crud_and_filters(api_client, washing_machine, slot_start):
    r = api_client.post("/api/v1/cycles/", _cycle_payload(washing_machine, slot_start), format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["sequence_id"] and body["duration_min"] == 60 and body["energy_wh"] == 2000
    assert body["power_profile"] == [{"duration_min": 60, "expected_power_w": 2000, "max_power_w": 2000}]
    url = f"/api/v1/cycles/{body['id']}/"
    assert api_client.patch(url, {"state": "cancelled"}, format="json").json()["state"] == "cancelled"
    assert api_client.get("/api/v1/cycles/", {"state": "cancelled"}).json()["count"] == 1
    assert api_client.get("/api/v1/cycles/", {"state": "scheduled"}).json()["count"] == 0
    assert api_client.get("/api/v1/cycles/", {"device": washing_machine.pk}).json()["count"] == 1
    later = (slot_start + timedelta(hours=7)).isoformat()
    assert api_client.get("/api/v1/cycles/", {"start": later}).json()["count"] == 0
    assert api_client.get("/api/v1/cycles/", {"end": later}).json()["count"] == 1
    assert api_client.delete(url).status_code == 204


@pytest.mark.parametrize("change, bad", [
    ({"power_profile": []}, "power_profile"),
    ({"power_profile": [{"duration_min": 0, "max_power_w": 100}]}, "power_profile[0].duration_min"),
    ({"power_profile": [{"duration_min": 10, "max_power_w": 100}, {"duration_min": 10, "max_power_w": -5}]},
     "power_profile[1].max_power_w"),
    ({"power_profile": [{"duration_min": 10, "max_power_w": 100, "watts": 3}]}, "power_profile[0].watts"),
    ({"power_profile": [{"duration_min": 10, "max_power_w": 100, "expected_power_w": 200}]},
     "power_profile[0].expected_power_w"),
    ({"power_profile": [{"duration_min": 400, "max_power_w": 100}]}, "power_profile"),
    ({"power_profile": {"duration_min": 10}}, "power_profile"),
    ({"latest_end": "EARLY"}, "latest_end"),
    ({"earliest_start": "2026-05-01T08:00:00"}, "earliest_start"),
    ({"scheduled_start": "LATE"}, "scheduled_start"),
    ({"state": "exploded"}, "state"),
])
def test_cycle_bad_input(api_client, washing_machine, slot_start, change, bad):
    payload = _cycle_payload(washing_machine, slot_start)
    if change.get("latest_end") == "EARLY":
        change = {"latest_end": (slot_start - timedelta(hours=1)).isoformat()}
    if change.get("scheduled_start") == "LATE":
        change = {"scheduled_start": (slot_start + timedelta(hours=5, minutes=30)).isoformat()}
    payload.update(change)
    r = api_client.post("/api/v1/cycles/", payload, format="json")
    assert r.status_code == 400
    assert bad in fields_of(r)
    assert Cycle.objects.count() == 0


def test_cycles_only_for_shiftable_devices(api_client, battery, slot_start):
    r = api_client.post("/api/v1/cycles/", _cycle_payload(battery, slot_start), format="json")
    assert r.status_code == 400 and fields_of(r) == {"device"}


def test_cycle_sequence_id_unique_per_device(api_client, washing_machine, slot_start):
    payload = _cycle_payload(washing_machine, slot_start, sequence_id="seq-1")
    assert api_client.post("/api/v1/cycles/", payload, format="json").status_code == 201
    r = api_client.post("/api/v1/cycles/", payload, format="json")
    assert r.status_code == 400 and fields_of(r) == {"sequence_id"}


# --- EV sessions ---------------------------------------------------------------------

def test_ev_session_crud_and_validation(api_client, ev_charger, dishwasher, slot_start):
    payload = {"device": ev_charger.pk, "arrival": slot_start.isoformat(),
               "departure": (slot_start + timedelta(hours=10)).isoformat(),
               "target_soc_pct": 80, "initial_soc_pct": 30, "vehicle_capacity_kwh": 60}
    r = api_client.post("/api/v1/ev-sessions/", payload, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["required_energy_kwh"] == pytest.approx(30.0)
    url = f"/api/v1/ev-sessions/{r.json()['id']}/"
    assert api_client.patch(url, {"energy_kwh": 12}, format="json").json()["required_energy_kwh"] == 12
    backwards = api_client.patch(url, {"departure": (slot_start - timedelta(hours=1)).isoformat()}, format="json")
    assert backwards.status_code == 400 and fields_of(backwards) == {"departure"}
    assert EVSession.objects.get(pk=r.json()["id"]).departure == slot_start + timedelta(hours=10)
    wrong_device = api_client.post("/api/v1/ev-sessions/", {**payload, "device": dishwasher.pk}, format="json")
    assert wrong_device.status_code == 400 and fields_of(wrong_device) == {"device"}
    nothing = api_client.post("/api/v1/ev-sessions/", {k: v for k, v in payload.items() if k != "target_soc_pct"},
                              format="json")
    assert nothing.status_code == 400 and fields_of(nothing) == {"energy_kwh"}
    assert api_client.delete(url).status_code == 204


# --- read-only data ------------------------------------------------------------------

def test_signals_area_and_own_home(api_client, other_client, home, other_home, slot_start):
    from devices.services import replace_signal

    replace_signal("import_price", slot_start, 15, [0.1] * 96, area="PT")
    replace_signal("load_forecast", slot_start, 15, [300.0] * 96, home=home)
    replace_signal("load_forecast", slot_start, 15, [500.0] * 96, home=other_home)
    mine = api_client.get("/api/v1/signals/").json()
    assert {(s["kind"], s["home"]) for s in mine["results"]} == {("import_price", None), ("load_forecast", home.pk)}
    assert api_client.get("/api/v1/signals/", {"kind": "import_price", "area": "PT"}).json()["count"] == 1
    after = (slot_start + timedelta(days=1, minutes=1)).isoformat()
    assert api_client.get("/api/v1/signals/", {"start": after}).json()["count"] == 0
    inside = (slot_start + timedelta(hours=23)).isoformat()
    assert api_client.get("/api/v1/signals/", {"start": inside}).json()["count"] == 2
    assert api_client.get("/api/v1/signals/", {"end": slot_start.isoformat()}).json()["count"] == 0
    series = mine["results"][0]
    assert series["unit"] in ("EUR/kWh", "W") and len(series["values"]) == 96


def test_measurements_read(api_client, home, other_home, battery, slot_start):
    from devices.services import record_measurements

    rows = [{"home": home, "time": slot_start + timedelta(minutes=i), "power_w": 100.0 + i} for i in range(30)]
    rows += [{"home": home, "device": battery, "time": slot_start, "soc_pct": 55.0},
             {"home": other_home, "time": slot_start, "power_w": 1.0}]
    assert record_measurements(rows) == 32
    assert api_client.get("/api/v1/measurements/").json()["count"] == 31
    assert api_client.get("/api/v1/measurements/", {"device": battery.pk}).json()["results"][0]["soc_pct"] == 55.0
    window = api_client.get("/api/v1/measurements/", {"home": home.pk,
                            "start": (slot_start + timedelta(minutes=10)).isoformat(),
                            "end": (slot_start + timedelta(minutes=20)).isoformat()}).json()
    assert [m["power_w"] for m in window["results"]] == [110.0 + i for i in range(10)]
    assert api_client.get("/api/v1/measurements/", {"home": other_home.pk}).json()["count"] == 0
    bad = api_client.get("/api/v1/measurements/", {"start": "yesterday"})
    assert bad.status_code == 400 and fields_of(bad) == {"start"}


def test_public_tariffs_are_read_only_for_households(api_client):
    r = api_client.get("/api/v1/tariffs/")
    codes = {t["code"] for t in r.json()}
    assert {"pt-simple", "pt-bi-hourly-daily", "pt-tri-hourly-daily"} <= codes
    assert all(t["source"] for t in r.json())
    public = next(t for t in r.json() if t["code"] == "pt-simple")
    assert api_client.patch(f"/api/v1/tariffs/{public['id']}/", {"name": "mine"}, format="json").status_code == 404
    assert api_client.delete(f"/api/v1/tariffs/{public['id']}/").status_code == 404
