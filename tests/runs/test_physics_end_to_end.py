"""Issue 14 items 3-5 end to end: set over the API, planned by a real Celery worker, visible in the stored schedule."""
from __future__ import annotations

import pytest

from devices.models import Device

from .conftest import client_for
from .test_workers import QUEUES, final_run

pytestmark = pytest.mark.django_db(transaction=True)


def plan(client, home, worker) -> dict:
    response = client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    assert response.status_code in (200, 202), response.content  # 200: the re-plan the change queued, same input
    run = final_run(response.json()["id"], worker=worker)
    assert run.status == "succeeded", (run.error, run.explanation, worker.log())
    body = client.get(response.json()["status_url"]).json()
    return {"run": run, "schedule": body["schedule"]}


def test_shared_circuit_set_over_the_api_is_planned_by_a_worker(home, owner_client, stranger, celery_worker):
    ev, washer = (Device.objects.get(home=home, serial_number=s) for s in ("EVC-1", "WM-1"))
    body = {"home": home.pk, "name": "Garage", "limit_kw": 7.4, "devices": [ev.pk, washer.pk]}
    assert client_for(stranger).post("/api/v1/circuits/", body, format="json").status_code == 400  # not their home
    bad = owner_client.post("/api/v1/circuits/", {**body, "limit_kw": "7.4"}, format="json")
    assert bad.status_code == 400 and "limit_kw" in bad.json()["error"]["fields"], bad.content
    created = owner_client.post("/api/v1/circuits/", body, format="json")
    assert created.status_code == 201, created.content
    assert client_for(stranger).get(f"/api/v1/circuits/{created.json()['id']}/").status_code == 404

    worker = celery_worker(queues=QUEUES, concurrency=1)
    out = plan(owner_client, home, worker)
    assert out["run"].problem["circuits"] == [{"id": f"circuit-{created.json()['id']}", "name": "Garage",
                                               "limit_kw": 7.4, "devices": ["WM-1", "EVC-1"]}]
    (circuit,) = out["schedule"]["circuits"]
    assert circuit["name"] == "Garage" and max(circuit["power_kw"]) <= 7.4 + 1e-6
    items = {d["serial_number"]: d for d in out["schedule"]["devices"]}
    summed = [items["EVC-1"]["power_kw"][t] + items["WM-1"]["power_kw"][t] for t in range(len(circuit["power_kw"]))]
    assert summed == pytest.approx(circuit["power_kw"], abs=1e-3)
    assert max(items["EVC-1"]["power_kw"]) > 0 and max(items["WM-1"]["power_kw"]) > 0


def test_v2g_session_set_over_the_api_is_planned_by_a_worker(home, owner_client, celery_worker):
    from devices.models import EVSession

    ev = Device.objects.get(home=home, serial_number="EVC-1")
    session = EVSession.objects.get(device=ev)
    v2g = {"may_discharge": True, "vehicle_capacity_kwh": 60.0, "initial_soc_pct": 50.0, "min_soc_pct": 40.0,
           "export_allowed": False}
    refused = owner_client.patch(f"/api/v1/ev-sessions/{session.pk}/", v2g, format="json")
    assert refused.status_code == 400 and "may_discharge" in refused.json()["error"]["fields"], refused.content
    changed = owner_client.patch(f"/api/v1/devices/{ev.pk}/", {"parameters": {
        "max_power_kw": 7.4, "max_discharge_kw": 7.4, "discharge_efficiency": 0.9}}, format="json")
    assert changed.status_code == 200, changed.content
    accepted = owner_client.patch(f"/api/v1/ev-sessions/{session.pk}/", v2g, format="json")
    assert accepted.status_code == 200 and accepted.json()["may_discharge"] is True, accepted.content

    worker = celery_worker(queues=QUEUES, concurrency=1)
    out = plan(owner_client, home, worker)
    (car,) = out["run"].problem["ev_sessions"]
    assert car["max_discharge_kw"] == 7.4 and car["min_soc_pct"] == 40.0 and car["export_allowed"] is False
    item = next(d for d in out["schedule"]["devices"] if d["serial_number"] == "EVC-1")
    n = len(item["power_kw"])
    assert len(item["charge_kw"]) == len(item["discharge_kw"]) == n
    assert item["power_kw"] == pytest.approx([item["charge_kw"][t] - item["discharge_kw"][t] for t in range(n)],
                                             abs=1e-3)
    assert min(item["soc_kwh"]) >= -6.0 - 1e-3  # never below 40 % of 60 kWh from 50 %
    assert item["soc_kwh"][-1] >= 10.0 - 1e-3  # leaves with its 10 kWh
    assert min(out["schedule"]["net_import_kw"]) >= -1e-3  # no export from the car (the home has no PV)


def test_space_heating_set_over_the_api_is_planned_by_a_worker(home, owner_client, now, celery_worker):
    from datetime import timedelta

    from devices.models import SignalKind, SignalSeries
    from flexibility.planning import slots

    body = {"home": home.pk, "serial_number": "HP-SH-1", "name": "Living-room heat pump",
            "device_type": "space_heating", "parameters": {"max_power_kw": 3.0, "heat_capacity_kwh_per_k": 10.0,
                                                          "heat_loss_kw_per_k": 0.2, "setback_min_c": 17.0,
                                                          "comfort_max_c": 19.0}}
    bad = owner_client.post("/api/v1/devices/", body, format="json")
    assert bad.status_code == 400 and "parameters.comfort_max_c" in bad.json()["error"]["fields"], bad.content
    body["parameters"]["comfort_max_c"] = 23.0
    created = owner_client.post("/api/v1/devices/", body, format="json")
    assert created.status_code == 201, created.content
    start = slots.floor_to_slot(now, 60) - timedelta(hours=1)
    SignalSeries.objects.create(kind=SignalKind.OUTDOOR_TEMPERATURE, home=home, start=start, resolution_minutes=60,
                                values=[3.0] * 30, source="test: a cold day")

    worker = celery_worker(queues=QUEUES, concurrency=1)
    out = plan(owner_client, home, worker)
    (hp,) = out["run"].problem["heat_pumps"]
    assert hp["device"] == "HP-SH-1" and set(hp["comfort_min_c"]) <= {17.0, 20.0} and hp["outdoor_temperature_c"][0] == 3.0
    item = next(d for d in out["schedule"]["devices"] if d["serial_number"] == "HP-SH-1")
    assert item["kind"] == "space_heating" and item["device"] == created.json()["id"]
    temp = item["indoor_temperature_c"]
    assert len(temp) == len(item["power_kw"]) + 1 and temp[0] == 20.0
    assert all(item["comfort_min_c"][t] - 1e-3 <= temp[t + 1] <= item["comfort_max_c"][t] + 1e-3
               for t in range(len(item["power_kw"])))
    assert sum(item["power_kw"]) > 0  # 3 C outside: the house needs heat
