"""What operators and load balancers see: /, the API root, /health/, /metrics, and a broker outage.

Real services throughout: the test Redis, the session's private Mosquitto, and a port where
nothing listens for the dead broker.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import redis
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories.homes import seed_area_signals, seed_standard_home
from energy_manager import metrics
from energy_manager.views import API_RESOURCES, HOME_RESOURCES
from flexibility.planning import services
from flexibility.planning.services import rolling
from flexibility.planning.models import OptimizationRun, RunStatus
from hub_bridge.models import HubCommand
from tests.plugins.celery_worker import broker_url, purge_queues, use_broker
from tests.plugins.mqtt import free_port

from tests.ops.promtext import metric_value

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_broker(request):
    """This process's Celery app on the test Redis (not eager), queues purged before and after."""
    purge_queues(["optimization", "default", "hub"])
    request.addfinalizer(lambda: purge_queues(["optimization", "default", "hub"]))
    undo = use_broker(broker_url())
    request.addfinalizer(undo)
    return broker_url()


@pytest.fixture
def dead_broker(request):
    """This process's Celery app on a Redis URL where nothing listens."""
    undo = use_broker(f"redis://127.0.0.1:{free_port()}/0")
    request.addfinalizer(undo)


def _routes(patterns, prefix: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name


# --- GET / and the API root ---------------------------------------------------------------

def test_site_index_links_api_docs_admin_and_health():
    body = Client().get("/").json()
    assert {"api", "docs", "admin", "health", "metrics"} <= body["links"].keys()
    html = Client().get("/", HTTP_ACCEPT="text/html").content.decode()
    assert 'href="http://testserver/api/v1/"' in html and 'href="http://testserver/health/"' in html


def test_unknown_url_is_a_plain_404_without_the_url_list():
    r = Client().get("/nope/")
    assert r.status_code == 404 and b"api/v1/" not in r.content


def test_api_root_lists_every_route_that_takes_no_id():
    """Walks the URL configuration: a new list endpoint missing from the root fails here."""
    expected = set()
    for route, name in _routes(get_resolver().url_patterns):
        if not route.startswith(("api/v1/", "api/energy_manager_service/")) or "format" in route:
            continue
        if name == "api-root":
            continue
        if "home_id" in route:
            assert name in HOME_RESOURCES.values(), f"{route} ({name}) missing from the API root"
        elif not re.search(r"<|\(\?P<", route):
            expected.add(name)
    missing = expected - set(API_RESOURCES.values())
    assert not missing, f"routes missing from the API root: {sorted(missing)}"
    body = APIClient().get("/api/v1/").json()
    assert set(API_RESOURCES) | set(HOME_RESOURCES) <= body.keys()
    assert body["homes/{id}/optimizations"].endswith("/api/v1/homes/{id}/optimizations")
    for key in API_RESOURCES:  # every link resolves (401/405 without a token, never 404)
        assert APIClient().get(body[key]).status_code != 404, key


# --- /health/ -------------------------------------------------------------------------------

def test_health_checks_database_redis_broker_and_mqtt(live_broker, hub_env):
    r = Client().get("/health/?format=json")
    assert r.status_code == 200, r.content
    assert r.json() == {"Database(alias='default')": "OK", "Redis": "OK", "CeleryBroker": "OK", "MQTTBroker": "OK"}
    assert "127.0.0.1" not in r.content.decode(), "the public health page names no host"


def test_health_fails_naming_the_broker_when_it_is_down(dead_broker, hub_env):
    r = Client().get("/health/", HTTP_ACCEPT="application/json")
    assert r.status_code == 500
    body = r.json()
    assert body["Database(alias='default')"] == "OK" and body["MQTTBroker"] == "OK"
    assert body["Redis"].startswith("Unavailable") and body["CeleryBroker"].startswith("Unavailable")


def test_health_fails_when_mqtt_refuses_the_login(live_broker, hub_env, settings, mqtt_broker):
    settings.MQTT_URL = mqtt_broker.url(username="nobody", secret="wrong")
    body = Client().get("/health/?format=json").json()
    assert body["MQTTBroker"].startswith("Unavailable: MQTT broker refused the login"), body


# --- /metrics -------------------------------------------------------------------------------

def test_metrics_need_the_bearer_token_when_one_is_set(settings, staff_user, user):
    settings.METRICS_TOKEN = "scrape-secret-2026"
    anon = Client().get("/metrics")
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "not_authenticated"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    household = Client()
    household.force_login(user)
    assert household.get("/metrics").status_code == 401
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-2026")
    assert ok.status_code == 200 and b"django_http_requests_total_by_method_total" in ok.content
    operator = Client()
    operator.force_login(staff_user)
    assert operator.get("/metrics").status_code == 200


def test_metrics_in_production_without_token_are_for_staff_only(settings, staff_user):
    settings.METRICS_TOKEN, settings.PRODUCTION = "", True
    assert Client().get("/metrics").status_code == 401
    operator = Client()
    operator.force_login(staff_user)
    assert operator.get("/metrics").status_code == 200


def test_metrics_show_queue_depth_solve_times_and_command_latency_from_redis(clean_metrics, live_broker):
    from tasks.planning import solve_run

    for _ in range(3):
        solve_run.apply_async(args=[0])  # nobody consumes: they wait in the queue
    metrics.observe_solve(0.3, "cpsat", "succeeded")  # as a worker on another host would
    metrics.observe_solve(7.0, "cpsat", "succeeded")
    metrics.observe_command_acks([(1.5, "start_cycle")])
    text = Client().get("/metrics").content.decode()
    assert metric_value(text, "hems_celery_queue_messages", queue="optimization") == 3
    assert metric_value(text, "hems_celery_queue_messages", queue="hub") == 0
    solve = dict(backend="cpsat", status="succeeded")
    assert metric_value(text, "hems_optimization_solve_seconds_count", **solve) == 2
    assert metric_value(text, "hems_optimization_solve_seconds_bucket", le="0.5", **solve) == 1
    assert metric_value(text, "hems_optimization_solve_seconds_bucket", le="10.0", **solve) == 2
    assert metric_value(text, "hems_optimization_solve_seconds_sum", **solve) == pytest.approx(7.3)
    assert metric_value(text, "hems_command_ack_latency_seconds_bucket", le="2.0", kind="start_cycle") == 1


def test_a_stored_result_and_an_acknowledgement_are_observed(clean_metrics, live_broker, make_user):
    from hub_bridge import services as hub_services

    home = _plannable_home(make_user(), hub=True)
    hub, device = home.hubs.get(), home.devices.first()
    run, _ = services.submit_run(home)
    services.execute_run(run.pk)
    command = HubCommand.objects.create(hub=hub, device=device, kind="start_cycle", state="sent",
                                        not_before=timezone.now(), expires_at=timezone.now() + timedelta(hours=1))
    hub_services.apply_acknowledgements([(hub, {"command_id": str(command.command_id), "status": "accepted"})])
    hub_services.apply_acknowledgements([(hub, {"command_id": str(command.command_id), "status": "executed"})])
    text = Client().get("/metrics").content.decode()
    run.refresh_from_db()
    backend = run.solver_stats["backend"]
    assert metric_value(text, "hems_optimization_solve_seconds_count", backend=backend, status="succeeded") == 1
    assert metric_value(text, "hems_command_ack_latency_seconds_count", kind="start_cycle") == 1, \
        "only the first acknowledgement of a command counts"


# --- broker outage --------------------------------------------------------------------------

def _plannable_home(owner, hub: bool = False):
    now = timezone.now()
    seed_area_signals(now - timedelta(hours=1))
    return seed_standard_home(owner, "Plannable home", now, hub=hub)


def test_broker_down_answers_503_and_leaves_the_run_queued_for_the_reaper(make_user, dead_broker, request):
    owner = make_user()
    home = _plannable_home(owner)
    client = APIClient()
    client.force_authenticate(owner)
    r = client.post(f"/api/v1/homes/{home.pk}/optimizations", {}, format="json")
    assert r.status_code == 503, r.content
    error = r.json()["error"]
    assert error["code"] == "service_unavailable" and "queued" in error["message"]
    run = OptimizationRun.objects.get(home=home)
    assert run.status == RunStatus.QUEUED and run.last_enqueued_at is not None

    # Broker back: the reaper re-sends the run once it counts as stuck.
    request.getfixturevalue("live_broker")
    reaped = services.reap_stuck_runs(stuck_after_s=0, now=timezone.now() + timedelta(seconds=1))
    assert reaped == {"requeued": 1, "failed": 0}
    assert redis.Redis.from_url(broker_url()).llen("optimization") == 1



def test_other_broker_errors_are_a_json_503_and_anything_else_is_left_alone():
    from django.test import RequestFactory
    from redis.exceptions import ConnectionError as RedisConnectionError

    from energy_manager.api_errors import BrokerOutageMiddleware

    middleware = BrokerOutageMiddleware(lambda request: None)
    request = RequestFactory().patch("/api/v1/cycles/1/")
    response = middleware.process_exception(request, RedisConnectionError("Connection refused"))
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert json.loads(response.content)["error"]["code"] == "service_unavailable"
    assert middleware.process_exception(request, ValueError("not ours")) is None


def test_broker_down_does_not_fail_a_change_whose_re_plan_the_rolling_tick_catches_up(make_user, dead_broker):
    """A new cycle is committed and answered 201 with the broker down: its re-plan trigger is lost, not the cycle
    (a 503 would make the app send it again and create it twice)."""
    owner = make_user()
    home = _plannable_home(owner)
    run, _ = services.submit_run(home, enqueue=False)
    services.execute_run(run.pk)
    washer = home.devices.get(device_type="washing_machine")
    client = APIClient()
    client.force_authenticate(owner)
    start = timezone.now() + timedelta(hours=1)
    r = client.post("/api/v1/cycles/", {
        "device": washer.pk, "program": "eco", "earliest_start": start.isoformat(),
        "latest_end": (start + timedelta(hours=6)).isoformat(),
        "power_profile": [{"duration_min": 60, "max_power_w": 2000}]}, format="json")
    assert r.status_code == 201, r.content
    assert home.devices.get(pk=washer.pk).cycles.filter(pk=r.json()["id"]).exists()
    cycle_id = r.json()["id"]

    # Nothing planned it; the next rolling tick does (it re-plans homes with requests newer than their last run).
    reasons = rolling.check_chunk([home.pk], timezone.now(), max_replans=0).reasons[home.pk]
    assert f"cycle {cycle_id} is not in the plan" in reasons
