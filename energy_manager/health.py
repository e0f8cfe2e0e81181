"""What `/health/` checks (django-health-check): the services a role needs to do its work.

The database always; with a Redis broker, Redis itself and a Celery broker connection;
with an MQTT URL, a login on the MQTT broker. The embedded run (SQLite, tasks in-process,
no MQTT) checks only its database. Check names carry no host names or credentials:
the endpoint is public for load balancers.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import time
import uuid
from typing import Any

from django.conf import settings
from health_check.base import HealthCheck
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class BrokerRedis(Redis):
    """Redis of the Celery broker (also debounce keys and relay flags), pinged."""

    def __repr__(self) -> str:
        return "Redis"

    @property
    def labels(self) -> dict[str, str]:
        return {"check": "Redis"}


@dataclasses.dataclass
class CeleryBroker(HealthCheck):
    """A kombu connection to the broker with the app's own transport (what `apply_async` uses)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def __repr__(self) -> str:
        return "CeleryBroker"

    def run(self) -> None:
        from kombu.exceptions import OperationalError

        from energy_manager.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=self.timeout.total_seconds())
                connection.default_channel  # opens a channel: the Redis transport pings here
        except (OSError, OperationalError) as exc:
            raise ServiceUnavailable(f"Celery broker unreachable ({type(exc).__name__})") from exc


@dataclasses.dataclass
class MQTTBroker(HealthCheck):
    """A login on the MQTT broker with the role's account; proves the broker is up and accepts it."""

    url: str = dataclasses.field(default="", repr=False)
    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def __repr__(self) -> str:
        return "MQTTBroker"

    def run(self) -> None:
        import ssl

        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        from hub_bridge.mqtt import parse_url

        address = parse_url(self.url)
        client_id = f"{address.username or 'health'}-health-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                             protocol=paho.MQTTv311)
        if address.username:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set(ca_certs=address.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        answer: dict[str, Any] = {}
        client.on_connect = lambda c, userdata, flags, rc, props: answer.setdefault("rc", rc)
        deadline = time.monotonic() + self.timeout.total_seconds()
        try:
            client.connect(address.host, address.port, keepalive=10)
            while "rc" not in answer and time.monotonic() < deadline:
                client.loop(timeout=0.05)
        except OSError as exc:
            raise ServiceUnavailable(f"MQTT broker unreachable ({type(exc).__name__})") from exc
        finally:
            client.disconnect()
        if "rc" not in answer:
            raise ServiceUnavailable("MQTT broker did not answer the login in time")
        if answer["rc"].is_failure:
            raise ServiceUnavailable(f"MQTT broker refused the login: {answer['rc']}")


def checks() -> list:
    """The checks of this deployment, from its settings and its Celery app's broker."""
    from energy_manager.celery import app

    found: list = ["health_check.checks.Database"]
    broker = app.conf.broker_url or ""
    if broker.startswith(("redis://", "rediss://")):
        from redis.asyncio import Redis as AsyncRedis

        found.append((BrokerRedis, {"client_factory": lambda: AsyncRedis.from_url(broker, socket_timeout=3)}))
    if broker:
        found.append(CeleryBroker)
    mqtt_url = settings.MQTT_URL or settings.MQTT_LISTENER_URL
    if mqtt_url:
        found.append((MQTTBroker, {"url": mqtt_url}))
    return found


class HealthView(HealthCheckView):
    """django-health-check's view (HTML, `?format=json`, text, OpenMetrics) with this deployment's checks.

    Answers 200 when every check passes, 500 otherwise (what load balancers look at).
    """

    def get_checks(self):
        self.checks = checks()
        return super().get_checks()
