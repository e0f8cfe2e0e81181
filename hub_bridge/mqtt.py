"""A thin paho-mqtt 2.x wrapper: one place for URLs, TLS, reconnect backoff and waiting.

Used by the relay worker, the listener, the simulator and the tests.
"""
from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    ca_file: str | None = None


def parse_url(url: str) -> BrokerAddress:
    """mqtt://user:secret@host:1883 or mqtts://user:secret@host:8883?ca=/path/ca.crt"""
    if not url:
        raise ValueError("MQTT URL is empty: set MQTT_URL")
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"Unsupported MQTT URL scheme '{u.scheme}'")
    tls = u.scheme in ("mqtts", "ssl")
    query = dict(p.split("=", 1) for p in u.query.split("&") if "=" in p)
    return BrokerAddress(
        host=u.hostname or "127.0.0.1",
        port=u.port or (8883 if tls else 1883),
        username=unquote(u.username) if u.username else None,
        password=unquote(u.password) if u.password else None,
        tls=tls,
        ca_file=query.get("ca"),
    )


class Connection:
    """One MQTT client with its network thread, automatic reconnect (1..30 s backoff) and a
    `connected` event that callers can wait on."""

    def __init__(self, address: BrokerAddress, client_id: str, clean_session: bool = True,
                 will: tuple[str, bytes, int, bool] | None = None, on_message=None, on_connect=None,
                 max_inflight: int = 1000):
        self.address = address
        self.connected = threading.Event()
        self._on_connect_hook = on_connect
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                                  protocol=paho.MQTTv311)
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        if address.tls:
            self.client.tls_set(ca_certs=address.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if will:
            self.client.will_set(*will)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        if on_message is not None:
            self.client.on_message = on_message
        self.last_connect_rc = None

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.last_connect_rc = reason_code
        if reason_code.is_failure:
            log.warning("MQTT connect to %s:%s refused: %s", self.address.host, self.address.port, reason_code)
            return
        self.connected.set()
        if self._on_connect_hook is not None:
            self._on_connect_hook(self, flags)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if reason_code.value == 0:  # we asked for it
            return
        log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.address.host, self.address.port, reason_code)

    def start(self, wait_s: float | None = 10.0) -> "Connection":
        """Connect in the background (retrying while the broker is down); optionally wait."""
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        if wait_s is not None and not self.connected.wait(wait_s):
            raise ConnectionError(f"MQTT broker {self.address.host}:{self.address.port} not reachable "
                                  f"(last answer: {self.last_connect_rc})")
        return self

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def publish_many(self, messages: list[tuple[str, bytes, int, bool]], timeout_s: float) -> list[bool]:
        """Publish every message and wait (until `timeout_s`) for the broker's PUBACKs.

        Returns, per message, whether the broker acknowledged it in time.
        """
        infos = []
        for topic, payload, qos, retain in messages:
            try:
                infos.append(self.client.publish(topic, payload, qos=qos, retain=retain))
            except (ValueError, RuntimeError) as exc:  # e.g. queue full while disconnected
                log.warning("MQTT publish to %s failed: %s", topic, exc)
                infos.append(None)
        deadline = time.monotonic() + timeout_s
        done = []
        for info in infos:
            if info is None:
                done.append(False)
                continue
            remaining = deadline - time.monotonic()
            if remaining > 0 and not info.is_published():
                try:
                    info.wait_for_publish(remaining)
                except (ValueError, RuntimeError):
                    pass
            done.append(info.is_published())
        return done
