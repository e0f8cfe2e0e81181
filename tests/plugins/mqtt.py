"""MQTT fixtures: a private Mosquitto per test session, the real listener, the relay worker.

    mqtt_broker            session: `mosquitto -c <generated conf>` with two listeners on free ports, as
                           docker/mosquitto/mosquitto.conf: hubs on `hub_port` (client id = username), cloud
                           services on `port`; allow_anonymous false, password + ACL files per listener written
                           by `manage.py mqtt_credentials`, persistence on (so restart() keeps queued messages).
                           Killed on teardown.
    hub_env                function: points this process's settings at the private broker and a
                           topic prefix unique to the session; returns the env for subprocesses.
    hub_listener           function: `manage.py hub_listener` subprocess against the test database.
    hub_relay              function: a real `celery worker -Q hub` (tests.plugins.celery_worker).
    sync_broker_credentials  function: rewrite password/ACL from the DB and wait for the reload.
"""
from __future__ import annotations

import getpass
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

from tests.plugins.celery_worker import database_url

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
SESSION_PREFIX = f"test_hub_{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, message: str = "condition",
             interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """A private mosquitto with generated config, password file and ACL file."""

    def __init__(self, directory: Path, prefix: str):
        self.dir = directory
        self.port = free_port()  # cloud services (relay, listener, admin)
        self.hub_port = free_port()
        self.prefix = prefix
        self.password_file = directory / "passwd"
        self.acl_file = directory / "acl"
        self.service_password_file = directory / "service-passwd"
        self.service_acl_file = directory / "service-acl"
        self.log_file = directory / "mosquitto.log"
        self.conf = directory / "mosquitto.conf"
        self.proc: subprocess.Popen | None = None
        self.accounts = {role: (f"{role}-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16))
                         for role in ("relay", "listener", "admin")}
        self._canary = 0
        self.conf.write_text("\n".join([
            f"user {getpass.getuser()}",  # as root, mosquitto would otherwise drop to `mosquitto`
            "per_listener_settings true",
            f"listener {self.hub_port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            "use_username_as_clientid true",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.service_password_file}",
            f"acl_file {self.service_acl_file}",
            "persistence true",
            f"persistence_location {directory}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
            "max_inflight_messages 1000",
            f"log_dest file {self.log_file}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "",
        ]))
        # Cloud accounts only until the first sync writes the hubs too.
        from hub_bridge.broker_config import acl_lines
        from devices.hub_credentials import mosquitto_hash

        self.service_password_file.write_text("".join(f"{u}:{mosquitto_hash(s)}\n" for u, s in self.accounts.values()))
        self.service_acl_file.write_text("\n".join(
            line for role, (u, _) in self.accounts.items() for line in acl_lines(prefix, u, (role,))) + "\n")
        self.password_file.write_text("")
        self.acl_file.write_text("")

    def url(self, role: str | None = None, username: str | None = None, secret: str | None = None) -> str:
        """A cloud role's URL (services' listener), or the hubs' listener without a role."""
        if role:
            username, secret = self.accounts[role]
        auth = f"{username}:{secret}@" if username else ""
        return f"mqtt://{auth}127.0.0.1:{self.port if role else self.hub_port}"

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: (port_open(self.port) and port_open(self.hub_port)) or self.proc.poll() is not None, 15,
                 "mosquitto to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited {self.proc.returncode}: {self.log()}")
        return self

    def stop(self) -> None:
        """Clean stop (SIGTERM): mosquitto saves its persistence file on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        wait_for(lambda: not port_open(self.port), 10, "the old broker to close its port")
        self.start()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    def sync_credentials(self) -> None:
        """`manage.py mqtt_credentials` (in-process, needs DB access) + SIGHUP, then wait until a new
        canary account is accepted: proof that the broker reread both files."""
        from django.core.management import call_command

        self._canary += 1
        canary = (f"canary-{self._canary}-{uuid.uuid4().hex[:4]}", secrets.token_urlsafe(12))
        services = [f"{u}:{s}:{role}" for role, (u, s) in self.accounts.items()] + [f"{canary[0]}:{canary[1]}:admin"]
        call_command("mqtt_credentials", password_file=str(self.password_file), acl_file=str(self.acl_file),
                     service_password_file=str(self.service_password_file),
                     service_acl_file=str(self.service_acl_file),
                     service=services, prefix=self.prefix, reload_pid=self.proc.pid, stdout=open(os.devnull, "w"))
        wait_for(lambda: self.can_connect(*canary), 10, "mosquitto to reload its password files")

    def can_connect(self, username: str, secret: str, hub: bool = False) -> bool:
        """Whether the account logs in on the services' listener (or, with `hub`, the hubs')."""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
        client.username_pw_set(username, secret)
        result = {}
        client.on_connect = lambda c, u, f, rc, p: result.setdefault("rc", rc)
        try:
            client.connect("127.0.0.1", self.hub_port if hub else self.port, keepalive=5)
            deadline = time.monotonic() + 2
            while "rc" not in result and time.monotonic() < deadline:
                client.loop(0.05)
        except OSError:
            return False
        finally:
            client.disconnect()
        return "rc" in result and not result["rc"].is_failure


@pytest.fixture(scope="session")
def mqtt_broker():
    directory = Path(tempfile.mkdtemp(prefix="mosquitto-test-"))
    broker = Broker(directory, SESSION_PREFIX).start()
    yield broker
    broker.stop()
    if broker.proc and broker.proc.poll() is None:
        broker.proc.kill()


@pytest.fixture
def hub_env(settings, mqtt_broker) -> dict:
    """Settings of this process and env of the subprocesses for the private broker."""
    env = {
        "MQTT_URL": mqtt_broker.url("relay"),
        "MQTT_LISTENER_URL": mqtt_broker.url("listener"),
        "MQTT_TOPIC_PREFIX": mqtt_broker.prefix,
        "MQTT_LISTENER_GROUP": f"{mqtt_broker.prefix}-listeners",
        "MQTT_COMMAND_RESEND_S": "2",
        "MQTT_PUBACK_TIMEOUT_S": "2",
    }
    settings.MQTT_URL = env["MQTT_URL"]
    settings.MQTT_LISTENER_URL = env["MQTT_LISTENER_URL"]
    settings.MQTT_TOPIC_PREFIX = env["MQTT_TOPIC_PREFIX"]
    settings.MQTT_LISTENER_GROUP = env["MQTT_LISTENER_GROUP"]
    settings.MQTT_COMMAND_RESEND_S = 2.0
    settings.MQTT_PUBACK_TIMEOUT_S = 2.0
    return env


@pytest.fixture
def sync_broker_credentials(mqtt_broker, hub_env) -> Callable[[], None]:
    return mqtt_broker.sync_credentials


class ListenerProcess:
    def __init__(self, env: dict):
        self.log_path = Path(tempfile.mkstemp(prefix="hub-listener-", suffix=".log")[1])
        self._log = open(self.log_path, "w")
        self.env = {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": database_url(), "CONN_MAX_AGE": "0",
                    "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **env}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ListenerProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "hub_listener", "--stats-interval", "1", "--batch-wait-ms", "5"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: "hub_listener subscribed" in self.log() or self.proc.poll() is not None, 30,
                 "the listener to subscribe")
        if self.proc.poll() is not None:
            raise RuntimeError(f"hub_listener exited {self.proc.returncode}:\n{self.log()}")
        return self

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def rejections(self, reason: str | None = None) -> int:
        needle = f"hub_listener rejected reason={reason}" if reason else "hub_listener rejected reason="
        return self.log().count(needle)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def hub_listener(request, hub_env, django_db_setup):
    listener = ListenerProcess(hub_env)
    request.addfinalizer(listener.stop)
    return listener.start()


@pytest.fixture
def simulated_hub(request, mqtt_broker, hub_env):
    """Factory: start a SimulatedHub (in this process) for a HubSpec; stopped on teardown."""
    from hub_bridge.mqtt import parse_url
    from hub_bridge.simulator import SimulatedHub

    hubs = []

    def start(spec, wait: bool = True):
        hub = SimulatedHub(spec, parse_url(mqtt_broker.url()), mqtt_broker.prefix)
        hubs.append(hub)
        return hub.start(wait_s=15 if wait else None)

    def finish():
        for hub in hubs:
            try:
                hub.stop()
            except Exception:
                hub.connection.client.loop_stop()

    request.addfinalizer(finish)
    return start


@pytest.fixture
def hub_relay(celery_worker, hub_env):
    """A real Celery worker on the `hub` queue holding the relay's MQTT connection."""
    from kombu import pools

    # celery_worker's reset closes kombu's global pools but leaves them registered, so a second
    # test in the session would get "Acquire on closed pool"; start from fresh pools.
    pools.reset()
    return celery_worker(queues=["hub"], concurrency=1, env=hub_env, name="hub")
