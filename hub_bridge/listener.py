"""The hub listener: ingests what hubs publish, in batches.

The MQTT network thread only queues raw messages; the main loop drains the queue
into batches (up to `batch_size` messages or `batch_wait_s`), validates each
message against its schema and writes the batch with a few bulk queries. A bad
message is logged and counted by reason and leaves nothing behind; it never stops
the listener.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import Counter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, transaction

from . import protocol, services
from .mqtt import Connection, parse_url

log = logging.getLogger("hub_bridge.listener")

SHARED_CHANNELS = (protocol.ACK, protocol.TELEMETRY, protocol.CYCLES)
# Retained messages are not delivered on shared subscriptions, and status/registry are
# small and idempotent: every listener takes all of them.
BROADCAST_CHANNELS = (protocol.STATUS, protocol.REGISTRY)


class Listener:
    def __init__(self, url: str | None = None, prefix: str | None = None, group: str | None = None,
                 batch_size: int = 2000, batch_wait_s: float = 0.02, max_payload_bytes: int | None = None):
        self.address = parse_url(url or settings.MQTT_LISTENER_URL or settings.MQTT_URL)
        self.prefix = prefix or settings.MQTT_TOPIC_PREFIX
        self.group = group or settings.MQTT_LISTENER_GROUP
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.max_payload_bytes = max_payload_bytes or settings.MQTT_MAX_PAYLOAD_BYTES
        self.inbox: queue.Queue = queue.Queue(maxsize=200_000)
        self.stats: Counter = Counter()
        self.stop_event = threading.Event()
        client_id = f"listener-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.connection = Connection(self.address, client_id=client_id, clean_session=True,
                                     on_message=self._on_message, on_connect=self._subscribe)

    def filters(self) -> list[tuple[str, int]]:
        shared = [(f"$share/{self.group}/{protocol.uplink_filter(self.prefix, c)}", 1) for c in SHARED_CHANNELS]
        return shared + [(protocol.uplink_filter(self.prefix, c), 1) for c in BROADCAST_CHANNELS]

    def _subscribe(self, conn: Connection, flags) -> None:
        conn.client.subscribe(self.filters())
        log.info("hub_listener subscribed to %s", [f for f, _ in self.filters()])

    def _on_message(self, client, userdata, msg) -> None:
        self.inbox.put((msg.topic, msg.payload))

    # --- main loop ------------------------------------------------------------------
    def run(self, stats_interval_s: float = 10.0) -> None:
        self.connection.start(wait_s=30)
        next_stats = time.monotonic() + stats_interval_s
        try:
            while not self.stop_event.is_set():
                batch = self._next_batch()
                if batch:
                    self.process_batch(batch)
                if time.monotonic() >= next_stats:
                    self.log_stats()
                    next_stats = time.monotonic() + stats_interval_s
        finally:
            self.connection.stop()
            self.log_stats()

    def _next_batch(self) -> list[tuple[str, bytes]]:
        try:
            first = self.inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self.inbox.get(timeout=remaining))
                except queue.Empty:
                    break
        return batch

    def log_stats(self) -> None:
        log.info("hub_listener stats %s", json.dumps({**self.stats, "backlog": self.inbox.qsize()}, sort_keys=True))

    def reject(self, reason: str, topic: str, detail: str = "") -> None:
        self.stats["rejected"] += 1
        self.stats[f"rejected.{reason}"] += 1
        log.warning("hub_listener rejected reason=%s topic=%s detail=%s", reason, topic[:200], detail[:300])

    # --- one batch ------------------------------------------------------------------
    def process_batch(self, batch: list[tuple[str, bytes]]) -> None:
        close_old_connections()
        self.stats["received"] += len(batch)
        parsed: list[tuple[str, str, dict]] = []
        for topic, payload in batch:
            try:
                hub_id, channel = protocol.parse_topic(self.prefix, topic)
                if channel == protocol.COMMANDS:
                    raise protocol.ProtocolError("bad_topic", "commands are downlink only")
                message = protocol.decode(protocol.SCHEMA_OF_CHANNEL[channel], payload, self.max_payload_bytes)
                if message.get("hub_id") != hub_id:
                    raise protocol.ProtocolError("hub_mismatch", f"payload hub_id {message.get('hub_id')!r}")
            except protocol.ProtocolError as exc:
                self.reject(exc.reason, topic, exc.detail)
                continue
            parsed.append((hub_id, channel, message))
        if not parsed:
            return
        for attempt in (1, 2):
            try:
                self._write(parsed)
                return
            except Exception:  # database trouble: retry once on a fresh connection, then drop
                log.exception("hub_listener batch of %s failed (attempt %s)", len(parsed), attempt)
                close_old_connections()
                connection.close()
        self.stats["dropped_on_error"] += len(parsed)

    def _write(self, parsed: list[tuple[str, str, dict]]) -> None:
        hubs = services.hubs_by_id(h for h, _, _ in parsed)
        by_channel: dict[str, list] = {c: [] for c in protocol.UPLINK_CHANNELS}
        for hub_id, channel, message in parsed:
            hub = hubs.get(hub_id)
            if hub is None:
                self.reject("unknown_hub", protocol.topic(self.prefix, hub_id, channel))
                continue
            by_channel[channel].append((hub, message))
        written = Counter()
        for hub, message in by_channel[protocol.STATUS]:
            services.apply_status(hub, message["online"])
            written["status"] += 1
        for hub, message in by_channel[protocol.REGISTRY]:
            unknown = services.apply_registry(hub, message)
            if unknown:
                log.info("hub %s reports devices its home does not have: %s", hub.hub_id, unknown[:10])
            written["registry"] += 1
        for hub, message in by_channel[protocol.CYCLES]:
            try:
                services.apply_cycle_report(hub, message)
                written["cycles"] += 1
            except ValidationError as exc:
                self.reject("invalid_cycle", protocol.topic(self.prefix, hub.hub_id, protocol.CYCLES), str(exc))
        rows = []
        for hub, message in by_channel[protocol.TELEMETRY]:
            try:
                rows.extend(services.telemetry_rows(hub, message))
                written["telemetry_messages"] += 1
            except ValidationError as exc:
                self.reject("invalid_telemetry", protocol.topic(self.prefix, hub.hub_id, protocol.TELEMETRY), str(exc))
        with transaction.atomic():
            written["measurements"] += services.record_telemetry(rows)
            services.touch_hubs(h.pk for h, _ in by_channel[protocol.TELEMETRY])
        acks = by_channel[protocol.ACK]
        if acks:
            services.apply_acknowledgements(acks)
            written["acks"] += len(acks)
        self.stats.update(written)
