"""The hub listener: ingests what hubs publish, in batches.

The MQTT network thread only queues raw messages; the main loop drains the queue
into batches (up to `batch_size` messages or `batch_wait_s`), validates each
message alone (schema, finite numbers, text PostgreSQL can store, bounded
nesting) and writes the batch in one transaction with a few bulk queries. If the
database still refuses the batch, it is rolled back whole and written again one
message per transaction, so the one message at fault is rejected alone and the
others are written exactly once. A rejected message is logged and counted by
reason (stats line and `RejectedMessageCount` rows) and leaves nothing behind;
nothing a message holds can stop the listener.
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
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction

from . import protocol, services
from .mqtt import Connection, parse_url

log = logging.getLogger("hub_bridge.listener")

SHARED_CHANNELS = (protocol.ACK, protocol.TELEMETRY, protocol.CYCLES)
# Retained messages are not delivered on shared subscriptions, and status/registry are
# small and idempotent: every listener takes all of them.
BROADCAST_CHANNELS = (protocol.STATUS, protocol.REGISTRY)
# A message whose write lost the database connection is tried again once it answers, this many
# times in all: an outage is waited out, a message that breaks the connection itself is refused.
WRITE_ATTEMPTS = 3


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
        self._pending_rejections: list[services.Rejection] = []
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
        """On paho's network thread: only queue. An exception here would end that thread (and all
        ingestion), so even a topic that is not UTF-8 (Mosquitto refuses those) is only counted."""
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            self.stats["rejected.bad_topic_encoding"] += 1
            return
        self.inbox.put((topic, msg.payload))

    # --- main loop ------------------------------------------------------------------
    def run(self, stats_interval_s: float = 10.0) -> None:
        self.connection.start(wait_s=30)
        next_stats = time.monotonic() + stats_interval_s
        try:
            while not self.stop_event.is_set():
                batch = self._next_batch()
                if batch:
                    try:
                        self.process_batch(batch)
                    except Exception:  # a bug must not stop ingestion for every hub
                        log.exception("hub_listener batch of %s failed", len(batch))
                        self.stats["batch_errors"] += 1
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
        """Count and log one rejected message; the counts reach the database after each batch."""
        self.stats["rejected"] += 1
        self.stats[f"rejected.{reason}"] += 1
        hub_id = protocol.hub_id_of_topic(self.prefix, topic)
        self._pending_rejections.append(services.Rejection(hub_id, reason, topic, detail))
        log.warning("hub_listener rejected reason=%s topic=%s detail=%s", reason, protocol.printable(topic, 200),
                    protocol.printable(detail, 300))

    # --- one batch ------------------------------------------------------------------
    def process_batch(self, batch: list[tuple[str, bytes]]) -> None:
        close_old_connections()
        self.stats["received"] += len(batch)
        parsed: list[tuple[str, str, dict]] = []
        for topic, payload in batch:
            item = self._parse(topic, payload)
            if item is not None:
                parsed.append(item)
        if parsed:
            self._write_exactly_once(parsed)
        self._flush_rejections()

    def _parse(self, topic: str, payload: bytes) -> tuple[str, str, dict] | None:
        """One message off the wire, validated alone; None (rejected and counted) when it is not valid."""
        try:
            hub_id, channel = protocol.parse_topic(self.prefix, topic)
            if channel == protocol.COMMANDS:
                raise protocol.ProtocolError("bad_topic", "commands are downlink only")
            message = protocol.decode(protocol.SCHEMA_OF_CHANNEL[channel], payload, self.max_payload_bytes)
            if message.get("hub_id") != hub_id:
                raise protocol.ProtocolError("hub_mismatch", f"payload hub_id {message.get('hub_id')!r}")
        except protocol.ProtocolError as exc:
            self.reject(exc.reason, topic, exc.detail)
            return None
        except Exception as exc:  # a validator bug or a payload we did not foresee: this message only
            log.exception("hub_listener could not validate a message on %s", protocol.printable(topic, 200))
            self.reject("invalid", topic, f"{type(exc).__name__}: {exc}")
            return None
        return hub_id, channel, message

    def _write_exactly_once(self, parsed: list[tuple[str, str, dict]]) -> None:
        """The batch in one transaction; if the database refuses it, each message in its own.

        The first attempt either commits whole or leaves nothing, and each message of the second
        pass commits alone, so no message is written twice and only the one at fault is lost.
        Counters are taken only from what committed.
        """
        try:
            with transaction.atomic():
                outcome = self._write(parsed)
        except Exception as exc:
            log.warning("hub_listener batch of %s refused by the database (%s: %s); writing its messages one by one",
                        len(parsed), type(exc).__name__, protocol.printable(str(exc), 300))
            self.stats["batches_split"] += 1
            self._wait_for_database()
            for item in parsed:
                self._write_alone(item)
            return
        self._count(outcome)

    def _write_alone(self, item: tuple[str, str, dict]) -> None:
        hub_id, channel, _ = item
        topic = protocol.topic(self.prefix, hub_id, channel)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    outcome = self._write([item])
            except Exception as exc:
                lost_connection = self._wait_for_database() or isinstance(exc, (OperationalError, InterfaceError))
                if lost_connection and attempt < WRITE_ATTEMPTS:
                    self.stats["write_retries"] += 1
                    continue  # the database was away, likely not the message's fault: write it again
                if not isinstance(exc, DatabaseError):
                    log.exception("hub_listener could not write a message on %s", protocol.printable(topic, 200))
                reason = "database" if isinstance(exc, DatabaseError) else "invalid"
                self.reject(reason, topic, f"{type(exc).__name__}: {exc}")
                return
            self._count(outcome)
            return

    def _wait_for_database(self) -> bool:
        """True when the database was unreachable (then wait, backing off, until it answers again)."""
        delay = 0.5
        was_down = False
        while not self.stop_event.is_set():
            try:
                connection.ensure_connection()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                return was_down
            except DatabaseError:
                was_down = True
                log.warning("hub_listener: database unreachable; retrying in %.1f s", delay)
                connection.close()
                self.stop_event.wait(delay)
                delay = min(30.0, delay * 2)
        return was_down

    def _count(self, outcome: tuple[Counter, list[tuple[str, str, str]]]) -> None:
        written, rejections = outcome
        self.stats.update(written)
        for reason, topic, detail in rejections:
            self.reject(reason, topic, detail)

    def _flush_rejections(self) -> None:
        """Add this batch's rejections to the per-hub counters an operator reads in the admin."""
        pending, self._pending_rejections = self._pending_rejections, []
        if not pending:
            return
        try:
            services.count_rejections(pending)
        except Exception:
            log.exception("hub_listener could not store %s rejection counts", len(pending))
            self._wait_for_database()

    def _write(self, parsed: list[tuple[str, str, dict]]) -> tuple[Counter, list[tuple[str, str, str]]]:
        """Write validated messages inside the caller's transaction; returns what was written and the
        messages refused by a domain rule (reason, topic, detail), both to be counted after commit."""
        hubs = services.hubs_by_id(h for h, _, _ in parsed)
        by_channel: dict[str, list] = {c: [] for c in protocol.UPLINK_CHANNELS}
        written: Counter = Counter()
        rejections: list[tuple[str, str, str]] = []
        for hub_id, channel, message in parsed:
            hub = hubs.get(hub_id)
            if hub is None:
                rejections.append(("unknown_hub", protocol.topic(self.prefix, hub_id, channel), ""))
                continue
            by_channel[channel].append((hub, message))
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
                rejections.append(("invalid_cycle", protocol.topic(self.prefix, hub.hub_id, protocol.CYCLES), str(exc)))
        # One query resolves the device serials of the whole batch; one COPY writes its rows.
        rows, refused = services.telemetry_rows_of(by_channel[protocol.TELEMETRY])
        written["telemetry_messages"] += len(by_channel[protocol.TELEMETRY]) - len(refused)
        for hub, _, exc in refused:
            rejections.append(("invalid_telemetry", protocol.topic(self.prefix, hub.hub_id, protocol.TELEMETRY),
                               str(exc)))
        written["measurements"] += services.record_telemetry(rows)
        services.touch_hubs(h.pk for h, _ in by_channel[protocol.TELEMETRY])
        acks = by_channel[protocol.ACK]
        if acks:
            services.apply_acknowledgements(acks)
            written["acks"] += len(acks)
        return written, rejections
