"""Issue 14 in the problem builder: minimum states to their battery or EV session, battery wear parameters,
the tariff's capacity charge per local month with the month's peak so far from the grid meter."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devices.models import Device, EVSession, MeasurementRollup, MinimumState
from flexibility.optimizer import problem_from_dict
from flexibility.planning import problem_builder, slots

pytestmark = pytest.mark.django_db


def test_builder_hands_issue_14_physics_to_the_optimizer(home, now):
    battery = Device(home=home, serial_number="BAT-1", name="Battery", device_type="battery",
                     parameters={"capacity_kwh": 10.0, "max_charge_kw": 3.0, "max_discharge_kw": 3.0,
                                 "wear_cost_eur_per_kwh": 0.04, "charge_taper_above_soc_pct": 85})
    battery.full_clean()
    battery.save()
    start = slots.floor_to_slot(now)
    session = EVSession.objects.get(device__home=home)
    MinimumState.objects.create(device=battery, at=start + timedelta(hours=6), energy_kwh=12.0)  # capped at 10
    MinimumState.objects.create(device=battery, at=start - timedelta(hours=1), energy_kwh=5.0)  # past: dropped
    MinimumState.objects.create(device=session.device, at=session.arrival + timedelta(hours=3), energy_kwh=4.0)
    MinimumState.objects.create(device=session.device, at=session.departure + timedelta(hours=1), energy_kwh=9.0)
    home.tariff.capacity_price_eur_per_kw_month = 3.5
    home.tariff.save()
    month = datetime(start.astimezone(home.tzinfo).year, start.astimezone(home.tzinfo).month, 1, tzinfo=home.tzinfo)
    for minutes, watts in ((30, 1000.0), (15, 4200.0), (24 * 60 * 40, 9000.0)):  # the last: another month
        MeasurementRollup.objects.create(home=home, slot_start=start - timedelta(minutes=minutes), samples=2,
                                         power_samples=2, power_w_sum=2 * watts)
    problem = problem_builder.build_problem(home, now=now)
    bat = problem["batteries"][0]
    assert bat["min_energy_at"] == [{"at": (start + timedelta(hours=6)).isoformat(), "energy_kwh": 10.0}]
    assert bat["wear_cost_eur_per_kwh"] == 0.04 and bat["charge_taper_above_soc_pct"] == 85
    (ev,) = problem["ev_sessions"]
    assert ev["min_energy_at"] == [{"at": (session.arrival + timedelta(hours=3)).isoformat(), "energy_kwh": 4.0}]
    cc = problem["capacity_charges"][0]
    assert cc["price_eur_per_kw"] == 3.5 and cc["window_min"] == 15
    assert cc["peak_floor_kw"] == (4.2 if start - timedelta(minutes=15) >= month else 0.0)
    assert datetime.fromisoformat(cc["start"]) == month
    problem_from_dict(problem)

    # A horizon across the month's end: two periods, the next one starting from no peak.
    end_of_month = (month.replace(tzinfo=None) + timedelta(days=32)).replace(day=1, tzinfo=home.tzinfo)
    crossing: dict = {}
    problem_builder._add_capacity_charges(crossing, home, end_of_month - timedelta(hours=6),
                                          end_of_month + timedelta(hours=18))
    assert [c["peak_floor_kw"] for c in crossing["capacity_charges"]][1] == 0.0
    assert crossing["capacity_charges"][1]["start"] == end_of_month.isoformat()


def test_minimum_states_are_scoped_to_their_owner(home, owner_client, stranger, now):
    from .conftest import client_for

    session = EVSession.objects.get(device__home=home)
    body = {"device": session.device_id, "at": (session.arrival + timedelta(hours=1)).isoformat(), "energy_kwh": 3.0}
    created = owner_client.post("/api/v1/minimum-states/", body, format="json")
    assert created.status_code == 201, created.content
    other = client_for(stranger)
    assert other.get(f"/api/v1/minimum-states/{created.json()['id']}/").status_code == 404
    assert other.get("/api/v1/minimum-states/").json()["results"] == []
    assert other.post("/api/v1/minimum-states/", body, format="json").status_code in (400, 404)
    past = owner_client.post("/api/v1/minimum-states/", {**body, "at": (now - timedelta(hours=1)).isoformat()},
                             format="json")
    assert past.status_code == 400 and "at" in past.json()["error"]["fields"], past.content
    pv = Device.objects.create(home=home, serial_number="PV-9", name="Roof", device_type="pv",
                               parameters={"peak_power_kw": 3.0})
    wrong = owner_client.post("/api/v1/minimum-states/", {**body, "device": pv.pk}, format="json")
    assert wrong.status_code == 400 and "device" in wrong.json()["error"]["fields"], wrong.content
