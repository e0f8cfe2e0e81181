"""Issue 14's physics end to end: set through the API, planned by a real Celery worker, visible in the
stored schedule (minimum state at a time, battery wear and taper, capacity charge)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devices.models import EVSession
from flexibility.planning import slots
from flexibility.planning.models import RunStatus

from .test_workers import QUEUES, final_run

pytestmark = pytest.mark.django_db(transaction=True)


def _boundary(schedule: dict, at: datetime) -> int:
    """The slot boundary at or after `at` (the state there must hold the minimum)."""
    start = datetime.fromisoformat(schedule["slot_starts"][0])
    minutes = (at - start).total_seconds() / 60
    return int(-(-minutes // schedule["resolution_minutes"]))


def test_physics_set_over_the_api_are_planned_by_a_worker(home, owner_client, now, celery_worker):
    worker = celery_worker(queues=QUEUES, concurrency=1)
    battery = owner_client.post("/api/v1/devices/", {
        "home": home.pk, "serial_number": "BAT-1", "name": "Home battery", "device_type": "battery",
        "parameters": {"capacity_kwh": 10.0, "max_charge_kw": 3.0, "max_discharge_kw": 3.0, "min_soc_pct": 10,
                       "initial_soc_pct": 30, "wear_cost_eur_per_kwh": 0.03, "max_cycles_per_day": 1.5,
                       "charge_taper_above_soc_pct": 80, "charge_kw_at_full": 0.6}}, format="json")
    assert battery.status_code == 201, battery.content
    start = slots.floor_to_slot(now)
    storm = start + timedelta(hours=9, minutes=7)
    backup = owner_client.post("/api/v1/minimum-states/", {
        "device": battery.json()["id"], "at": storm.isoformat(), "energy_kwh": 9.0, "reason": "storm backup"},
        format="json")
    assert backup.status_code == 201, backup.content
    too_much = owner_client.post("/api/v1/minimum-states/", {
        "device": battery.json()["id"], "at": storm.isoformat(), "energy_kwh": 11.0}, format="json")
    assert too_much.status_code == 400 and "energy_kwh" in too_much.json()["error"]["fields"], too_much.content
    session = EVSession.objects.get(device__home=home)
    trip = session.arrival + timedelta(hours=5)
    assert owner_client.post("/api/v1/minimum-states/", {
        "device": session.device_id, "at": trip.isoformat(), "energy_kwh": 8.0, "reason": "trip"},
        format="json").status_code == 201

    # 1: the home's tariff bills 4 EUR per kW of the month's highest 15-minute import (set by the admin's
    # tariff form or the operator API; here on the row); a 3 kW quarter-hour earlier this month is the floor.
    from devices.models import MeasurementRollup

    home.tariff.capacity_price_eur_per_kw_month = 4
    home.tariff.save()
    earlier = start - timedelta(hours=2)
    MeasurementRollup.objects.create(home=home, slot_start=earlier, samples=1, power_samples=1, power_w_sum=3000.0)
    response = owner_client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    assert response.status_code == 202, response.content
    run = final_run(response.json()["id"], worker=worker)
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.explanation, worker.log())
    schedule = owner_client.get(f"/api/v1/homes/{home.pk}/schedules/latest").json()
    items = {d["item"]: d for d in schedule["devices"]}

    # 6: the battery holds its backup at the storm, the car its trip energy; the plan shows both.
    bat = items[f"battery-{battery.json()['id']}"]
    assert [(datetime.fromisoformat(x["at"].replace("Z", "+00:00")), x["energy_kwh"])
            for x in bat["min_energy_at"]] == [(storm, 9.0)]
    k = _boundary(schedule, storm)
    assert bat["soc_kwh"][k] >= 9.0 - 1e-3 and bat["soc_kwh"][k - 1] >= 9.0 - 1e-3
    ev = items[f"ev-{session.pk}"]
    assert ev["soc_kwh"][_boundary(schedule, trip)] >= 8.0 - 1e-3, ev["soc_kwh"]

    # 2: the battery's wear is priced and shown; above 80 % its charge power tapers to 0.6 kW at full.
    assert bat["wear_eur"] == pytest.approx(bat["throughput_kwh"] * 0.03, abs=1e-5) and bat["throughput_kwh"] > 0
    charge = [max(x, 0.0) for x in bat["power_kw"]]
    for t, x in enumerate(charge):
        assert x <= 0.6 + 2.4 * (10.0 - bat["soc_kwh"][t + 1]) / 2.0 + 1e-3, (t, x, bat["soc_kwh"][t + 1])
    bad = owner_client.patch(f"/api/v1/devices/{battery.json()['id']}/", {"parameters": {
        **battery.json()["parameters"], "charge_kw_at_full": 5.0}}, format="json")
    assert bad.status_code == 400 and "parameters.charge_kw_at_full" in bad.json()["error"]["fields"], bad.content

    # 1: the planned peak and its cost are in the stored schedule; the battery keeps imports under the floor.
    (cc,) = [c for c in schedule["capacity_charges"] if datetime.fromisoformat(c["start"]) <= start]
    assert cc["peak_floor_kw"] == pytest.approx(3.0) and cc["price_eur_per_kw"] == 4.0
    assert cc["planned_peak_kw"] == pytest.approx(max(max(schedule["net_import_kw"][:96]), 0.0), abs=1e-3)
    assert cc["charge_eur"] == pytest.approx(4.0 * max(3.0, cc["planned_peak_kw"]), abs=1e-3)
    assert run.problem["capacity_charges"][0]["peak_floor_kw"] == pytest.approx(3.0)
