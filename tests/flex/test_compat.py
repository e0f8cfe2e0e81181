"""FlexiHome-compatible endpoints answer with the OpenAPI v1.8.0 shapes, for good and bad requests."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import Cycle, Device, DeviceType
from flexibility.grid.models import Activation
from flexibility.planning.models import OptimizationRun, Recommendation, RecommendationStatus, Schedule

from .conftest import CORRELATION, jwt_client, store_offer

pytestmark = pytest.mark.django_db
SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "shared/reference/flexihome-energy-manager-openapi.yaml").read_text())
BASE = "/api/energy_manager_service/flexibility"


def check(body, schema_name: str | None = None, schema: dict | None = None) -> None:
    schema = dict(schema or {"$ref": f"#/components/schemas/{schema_name}"})
    schema["components"] = SPEC["components"]
    jsonschema.validate(body, schema)


def check_error(response, status: int) -> None:
    assert response.status_code == status, response.content
    check(response.json(), "Error")
    assert isinstance(response.json()["error"], str)


def test_available_get_returns_kw_vectors_in_the_documented_shape(household):
    offer = store_offer(household, base=0.5, up=2.0, down=1.0)
    r = jwt_client(household.owner).get(f"{BASE}/available?user_id=hh00000001")
    assert r.status_code == 200
    assert r["X-Correlation-ID"] == CORRELATION["HTTP_X_CORRELATION_ID"]
    body = r.json()
    check(body, "AvailableFlexibilityResponse")
    assert body["user_id"] == "hh00000001"
    assert len(body["baseline"]) == offer.slots == len(body["flexibility_upward"]) == len(body["flexibility_downward"])
    first = body["baseline"][0]
    assert first == {"start_time": offer.start.isoformat().replace("+00:00", "Z"), "power_value": 0.5, "power_units": "kW"}
    assert body["flexibility_upward"][0]["power_value"] == pytest.approx(2.0)
    assert body["flexibility_downward"][0]["power_value"] == pytest.approx(1.0)


def test_available_bad_requests(household, neighbour):
    store_offer(household)
    owner = jwt_client(household.owner)
    check_error(APIClient().get(f"{BASE}/available?user_id=hh00000001", **CORRELATION), 401)
    no_corr = APIClient()
    no_corr.force_authenticate(household.owner)
    r = no_corr.get(f"{BASE}/available?user_id=hh00000001")
    check_error(r, 400)
    assert r.json()["error"] == "missing X-Correlation-ID header"
    check_error(owner.get(f"{BASE}/available"), 400)
    check_error(owner.get(f"{BASE}/available?user_id=nobody0000"), 404)
    check_error(owner.get(f"{BASE}/available?user_id=hh00000002"), 404)  # the neighbour's home
    check_error(jwt_client(neighbour.owner).get(f"{BASE}/available?user_id=hh00000002"), 404)  # no offer yet


def test_available_post_without_flexible_devices_is_202(db):
    from .conftest import make_home

    home = make_home("hh00000005", battery=False)
    r = jwt_client(home.owner).post(f"{BASE}/available?user_id=hh00000005")
    assert r.status_code == 202
    check(r.json(), "ResponseInfoMessage")


def accept_body(start, slots: int = 24, value: float = 1.0, step_min: int = 60) -> dict:
    return {
        "data_point": "dp-1", "creation_timestamp": timezone.now().isoformat(),
        "setpoints": [
            {"time_interval_start": (start + timedelta(minutes=step_min * i)).isoformat(),
             "time_interval_end": (start + timedelta(minutes=step_min * (i + 1))).isoformat(), "power_value": value}
            for i in range(slots)
        ],
    }


def test_accept_turns_setpoints_into_an_activation(aggregator, household):
    offer = store_offer(household, base=0.5, up=2.0)
    body = accept_body(offer.start)
    check(body, "FlexAcceptBody")
    r = aggregator.post(f"{BASE}/accept?asset=hh00000001", body, format="json")
    assert r.status_code == 200, r.content
    check(r.json(), "FlexAcceptedAcknowledged")
    assert r["X-Correlation-ID"] == CORRELATION["HTTP_X_CORRELATION_ID"]
    act = Activation.objects.get()
    assert act.home_id == household.pk and act.slots == 96 and act.requested_min_kw == [1.0] * 96
    again = aggregator.post(f"{BASE}/accept?asset=hh00000001", body, format="json")
    assert again.status_code == 202
    check(again.json(), "FlexAcceptedAcknowledged")
    assert Activation.objects.count() == 1


def test_accept_refusals(aggregator, household, outsider):
    offer = store_offer(household, base=0.5, up=2.0)
    store_offer(outsider)
    body = accept_body(offer.start)
    check_error(jwt_client(household.owner).post(f"{BASE}/accept?asset=hh00000001", body, format="json"), 403)
    check_error(APIClient().post(f"{BASE}/accept?asset=hh00000001", body, format="json", **CORRELATION), 401)
    check_error(aggregator.post(f"{BASE}/accept?asset=hh00000003", body, format="json"), 404)  # outside portfolio
    check_error(aggregator.post(f"{BASE}/accept?asset=hh00000001", {"setpoints": []}, format="json"), 400)
    check_error(aggregator.post(f"{BASE}/accept?asset=hh00000001", accept_body(offer.start, slots=10), format="json"), 400)
    r = aggregator.post(f"{BASE}/accept?asset=hh00000001", accept_body(offer.start, value=9.0), format="json")
    check_error(r, 422)
    assert "2.500" in r.json()["error"]
    past = store_offer(household, day=offer.delivery_day - timedelta(days=2))
    check_error(aggregator.post(f"{BASE}/accept?asset=hh00000001", accept_body(past.start), format="json"), 409)
    assert not Activation.objects.exists()


@pytest.fixture
def recommendations(household):
    dev = Device.objects.create(home=household, serial_number="WM-1", name="Washer", device_type=DeviceType.WASHING_MACHINE)
    now = timezone.now().replace(second=0, microsecond=0)
    run = OptimizationRun.objects.create(home=household, input_hash="x", problem={}, horizon_start=now,
                                         horizon_end=now + timedelta(hours=24), status="succeeded")
    sched = Schedule.objects.create(run=run, home=household, start=now, resolution_minutes=15, slots=96, cost_eur=1,
                                    co2_kg=0, baseline_cost_eur=1, baseline_co2_kg=0, savings_eur=0,
                                    net_import_kw=[0] * 96, devices={})
    recs = []
    for i, status in enumerate([RecommendationStatus.PENDING, RecommendationStatus.ACCEPTED, RecommendationStatus.PENDING]):
        cycle = Cycle.objects.create(device=dev, sequence_id=f"SEQ-{i}", earliest_start=now + timedelta(hours=1),
                                     latest_end=now + timedelta(hours=20),
                                     power_profile=[{"duration_min": 60, "expected_power_w": 500, "max_power_w": 2000}])
        recs.append(Recommendation.objects.create(
            schedule=sched, home=household, device=dev, cycle=cycle, recommended_start=now + timedelta(hours=2 + i),
            recommended_end=now + timedelta(hours=3 + i), saving_eur=0.1, status=status))
    return recs


def test_recommendations_list_filter_and_shapes(household, recommendations, aggregator):
    owner = jwt_client(household.owner)
    r = owner.get(f"{BASE}/recommendations?user_id=hh00000001")
    assert r.status_code == 200
    check(r.json(), schema={"type": "array", "items": {"$ref": "#/components/schemas/RecommendationObject"}})
    assert [x["sequence_id"] for x in r.json()] == ["SEQ-0", "SEQ-1", "SEQ-2"]
    assert [x["sequence_id"] for x in owner.get(f"{BASE}/recommendations?user_id=hh00000001&accepted=true").json()] == ["SEQ-1"]
    assert len(owner.get(f"{BASE}/recommendations?user_id=hh00000001&accepted=false").json()) == 2
    check_error(owner.get(f"{BASE}/recommendations?user_id=hh00000001&accepted=maybe"), 400)
    check_error(aggregator.get(f"{BASE}/recommendations?user_id=hh00000001"), 403)


def test_recommendation_delete_and_accept(household, neighbour, recommendations):
    owner, other = jwt_client(household.owner), jwt_client(neighbour.owner)
    first, accepted, last = recommendations
    check_error(owner.delete(f"{BASE}/recommendations"), 400)
    check_error(other.delete(f"{BASE}/recommendations?recommendation_id={first.pk}"), 404)
    r = owner.delete(f"{BASE}/recommendations?recommendation_id={first.pk}")
    assert r.status_code == 200 and isinstance(r.json(), str)
    r = owner.delete(f"{BASE}/recommendations?sequence_id=SEQ-2&serial_number=WM-1")
    assert r.status_code == 200
    assert owner.get(f"{BASE}/recommendations?user_id=hh00000001").json()[0]["sequence_id"] == "SEQ-1"
    check_error(owner.post(f"{BASE}/recommendations/accept?recommendation_id={accepted.pk}", {}, format="json"), 400)
    r = owner.post(f"{BASE}/recommendations/accept?recommendation_id={accepted.pk}", {"delay_call_ok": True}, format="json")
    assert r.status_code == 202
    check(r.json(), "FlexAcceptedAcknowledged")
    check_error(owner.post(f"{BASE}/recommendations/accept?recommendation_id=999999", {"delay_call_ok": True}, format="json"), 404)
    check_error(owner.post(f"{BASE}/recommendations/accept", {"delay_call_ok": True}, format="json"), 400)
    cycle = Cycle.objects.create(device=first.device, sequence_id="SEQ-9", earliest_start=first.cycle.earliest_start,
                                 latest_end=first.cycle.latest_end, power_profile=first.cycle.power_profile)
    fresh = Recommendation.objects.create(
        schedule=first.schedule, home=household, device=first.device, cycle=cycle,
        recommended_start=first.recommended_start, recommended_end=first.recommended_end, saving_eur=0.2)
    r = owner.post(f"{BASE}/recommendations/accept?recommendation_id={fresh.pk}", {"delay_call_ok": True}, format="json")
    assert r.status_code == 200 and r.json() == "Recommendation for cycle SEQ-9 was accepted by the user"
    fresh.refresh_from_db()
    assert fresh.status == RecommendationStatus.ACCEPTED
