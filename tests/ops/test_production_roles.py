"""Production parity: every role, started as the README says (`make <role>`), from a venv built
from requirements/base.txt alone (`make base-venv`, which `make test` runs first), with
DJANGO_ENV=production, against the test PostgreSQL database, the test Redis and the session's
private Mosquitto. Each role proves it works by doing its job, polled with deadlines:

- web (gunicorn, 2 processes): /health/ 200 with every check OK, an API request planned end to end,
  /metrics behind its bearer token, counting the requests of both processes in one scrape;
- optimization worker: `celery inspect ping` and the solve of the API's run;
- beat: sends the reaper, which re-sends a run whose message was lost; the worker solves it;
- hub worker: `celery inspect ping` and a command relayed to a simulated hub;
- listener: the hub's telemetry and its acknowledgement of that command written to PostgreSQL;
- flower: 401 without basic auth, the two workers listed with it; refuses to start without auth.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from base64 import b64encode
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories.homes import seed_area_signals, seed_standard_home
from devices.models import Device, Hub, Measurement
from flexibility.planning import services
from flexibility.planning.models import OptimizationRun, RunStatus
from hub_bridge.models import CommandState, HubCommand
from hub_bridge.provision import provision_simulated_hubs
from hub_bridge.services import enqueue_command
from tests.plugins.celery_worker import broker_url, database_url, purge_queues, use_broker
from tests.plugins.mqtt import free_port, port_open, wait_for

from tests.ops.promtext import metric_value

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
QUEUES = ["optimization", "default", "hub"]
METRICS_TOKEN = "prometheus-scrape-token-2026"
FLOWER_AUTH = "ops:flower-password-2026"


def base_venv() -> Path:
    path = os.environ.get("BASE_VENV")
    if not path or not (Path(path) / ".base").exists():
        pytest.fail("BASE_VENV is not a built venv: run `make test`, which builds .venv-base from "
                    "requirements/base.txt alone (`make base-venv`).")
    return Path(path)


class Role:
    """`make <target> VENV=<base venv>` in its own process group, output to a log file."""

    def __init__(self, target: str, env: dict):
        self.target = target
        self.env = env
        self.log_path = Path(tempfile.mkstemp(prefix=f"role-{target}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Role":
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["make", "--no-print-directory", self.target, f"VENV={self.env['VENV']}"],
                                         cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.alive():
            self.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:  # children that outlived make (a worker's pool)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, AttributeError):
            pass


def poll(roles: list[Role], predicate, timeout: float, message: str):
    """wait_for that fails at once, with the logs, when a role died."""
    def check():
        dead = [r for r in roles if not r.alive()]
        if dead:
            raise AssertionError(f"{dead[0].target} exited while waiting for {message}:\n{dead[0].log()}")
        return predicate()

    try:
        return wait_for(check, timeout, message, interval=0.2)
    except AssertionError as exc:
        logs = "\n".join(f"--- {r.target} ---\n{r.log()}" for r in roles)
        raise AssertionError(f"{exc}\n{logs}") from None


def http(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def celery_ping(venv: Path, env: dict, node: str) -> bool:
    out = subprocess.run([str(venv / "bin" / "celery"), "-A", "energy_manager", "inspect", "ping", "-d", node,
                          "--timeout", "3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return out.returncode == 0 and "pong" in out.stdout


@pytest.fixture
def role_env(transactional_db, hub_env, clean_metrics, request):
    venv = base_venv()
    assert not (venv / "bin" / "pytest").exists(), "the base venv must hold requirements/base.txt alone"
    purge_queues(QUEUES)
    request.addfinalizer(lambda: purge_queues(QUEUES))
    request.addfinalizer(use_broker(broker_url()))  # this process sends to the same broker
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {**keep, **hub_env, "VENV": str(venv), "DJANGO_ENV": "production", "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "DATABASE_URL": database_url(), "CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": broker_url(), "METRICS_TOKEN": METRICS_TOKEN, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def start_role(role_env, request):
    started: list[Role] = []

    def start(target: str, **env: str) -> Role:
        role = Role(target, {**role_env, **env}).start()
        started.append(role)
        return role

    def stop_all():
        for role in started:  # all at once: each takes seconds to shut down warmly
            role.terminate()
        for role in started:
            role.stop()

    request.addfinalizer(stop_all)
    start.roles = started
    return start


def _plannable_home(owner):
    now = timezone.now()
    seed_area_signals(now - timedelta(hours=1))
    return seed_standard_home(owner, "Parity home", now)


def test_every_role_runs_from_base_requirements(start_role, role_env, mqtt_broker, sync_broker_credentials,
                                                simulated_hub, django_user_model):
    venv = Path(role_env["VENV"])
    owner = django_user_model.objects.create_user("parity", "parity@example.com", "parity-password-2026")
    home = _plannable_home(owner)
    spec = provision_simulated_hubs(1)[0]
    sync_broker_credentials()
    # A run whose message was lost (sent an hour ago, gone from the broker): the reaper's job.
    lost, _ = services.submit_run(home, time_limit_s=9.0)  # not the same input as the API run below
    purge_queues(["optimization"])
    OptimizationRun.objects.filter(pk=lost.pk).update(last_enqueued_at=timezone.now() - timedelta(hours=1))
    PeriodicTask.objects.all().delete()  # only this schedule: no day-ahead plans in the counts below
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="parity reaper", task="tasks.periodic.reap_stuck_runs",
                                interval=every_second, queue="default")

    web_port, flower_port = free_port(), free_port()
    web = start_role("web", PORT=str(web_port), ADDRESS="127.0.0.1")
    worker = start_role("worker")
    hub_worker = start_role("hub-worker")
    listener = start_role("listener")
    flower = start_role("flower", FLOWER_PORT=str(flower_port), FLOWER_ADDRESS="127.0.0.1",
                        FLOWER_BASIC_AUTH=FLOWER_AUTH)
    roles = list(start_role.roles)
    base = f"http://127.0.0.1:{web_port}"

    # web: the load balancer's health check (plain HTTP: exempt from the HTTPS redirect)
    status, body = poll(roles, lambda: (r := http(f"{base}/health/?format=json"))[0] == 200 and r, 120,
                        "web /health/ 200")
    assert json.loads(body) == {"Database(alias='default')": "OK", "Redis": "OK", "CeleryBroker": "OK",
                                "MQTTBroker": "OK"}

    # workers answer a ping through the broker
    poll(roles, lambda: celery_ping(venv, role_env, f"optimization@{HOST}"), 120, "the optimization worker's pong")
    poll(roles, lambda: celery_ping(venv, role_env, f"hub@{HOST}"), 120, "the hub worker's pong")

    # web -> broker -> optimization worker -> PostgreSQL -> web
    api = {"Authorization": f"Bearer {RefreshToken.for_user(owner).access_token}", "X-Forwarded-Proto": "https",
           "Content-Type": "application/json"}
    status, body = http(f"{base}/api/v1/homes/{home.pk}/optimizations", api, data=b"{}")
    assert status == 202, body
    run_url = f"{base}/api/v1/optimizations/{json.loads(body)['id']}"
    poll(roles, lambda: json.loads(http(run_url, api)[1]).get("status") == "succeeded", 120,
         "the API's run to be solved by the worker")

    # beat -> reaper on the default queue -> the lost run re-sent -> solved
    beat = start_role("beat")
    roles.append(beat)
    poll(roles, lambda: OptimizationRun.objects.filter(pk=lost.pk, status=RunStatus.SUCCEEDED).exists(),
         120, "beat's reaper to re-send the lost run and the worker to solve it")
    assert OptimizationRun.objects.get(pk=lost.pk).requeues == 1

    # listener: the hub's status and telemetry reach PostgreSQL
    hub = simulated_hub(spec)
    poll(roles, lambda: Hub.objects.filter(hub_id=spec.hub_id, online=True).exists(), 60,
         "the listener to record the hub online")
    ev = Device.objects.get(serial_number=spec.devices[1]["device_serial"])
    before = Measurement.objects.filter(device=ev).count()
    hub.publish_telemetry()
    poll(roles, lambda: Measurement.objects.filter(device=ev).count() > before, 60, "the listener to write telemetry")

    # hub worker relays a command; the hub executes it; the listener records its acknowledgement
    now = timezone.now()
    with transaction.atomic():
        command = enqueue_command(ev, "set_ev_power", {"power_w": 3680}, now, now + timedelta(minutes=10))
    poll(roles, lambda: HubCommand.objects.filter(pk=command.pk, state=CommandState.EXECUTED).exists(), 60,
         "the hub worker to relay the command and the listener to record its execution")

    # /metrics: bearer token; one scrape counts both gunicorn processes and reads the shared histograms
    assert http(f"{base}/metrics")[0] == 401

    def scrape() -> str:
        status, text = http(f"{base}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200, text
        return text.decode()

    def health_requests() -> float:
        return metric_value(scrape(), "django_http_requests_total_by_view_transport_method_total", view="health") or 0.0

    before = health_requests()
    for _ in range(8):  # spread over both gunicorn processes
        assert http(f"{base}/health/?format=json")[0] == 200
    assert health_requests() - before == 8
    solved = OptimizationRun.objects.filter(status=RunStatus.SUCCEEDED).count()
    assert solved >= 2
    poll(roles, lambda: metric_value(scrape(), "hems_optimization_solve_seconds_count", status="succeeded") == solved,
         30, f"the scrape to count the {solved} solves")
    text = scrape()
    assert metric_value(text, "hems_command_ack_latency_seconds_count", kind="set_ev_power") == 1
    assert metric_value(text, "hems_celery_queue_messages", queue="optimization") is not None

    # flower: basic auth required; both workers listed
    flower_url = f"http://127.0.0.1:{flower_port}"
    poll(roles, lambda: port_open(flower_port), 60, "flower to listen")
    assert http(f"{flower_url}/api/workers")[0] == 401
    auth = {"Authorization": "Basic " + b64encode(FLOWER_AUTH.encode()).decode()}

    def workers_listed():
        status, body = http(f"{flower_url}/api/workers?refresh=1", auth)
        return status == 200 and {f"optimization@{HOST}", f"hub@{HOST}"} <= json.loads(body).keys()

    poll(roles, workers_listed, 60, "flower to list both workers")


def test_flower_refuses_to_start_without_auth_in_production(role_env, start_role):
    env = {k: v for k, v in role_env.items() if not k.startswith("FLOWER_")}
    flower = Role("flower", {**env, "FLOWER_PORT": str(free_port())}).start()
    try:
        flower.proc.wait(120)
    finally:
        flower.stop()
    assert flower.proc.returncode != 0
    assert "refusing to start without authentication in production" in flower.log()
