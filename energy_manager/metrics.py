"""HEMS metrics for Prometheus, beside django-prometheus' request and database metrics.

- `hems_celery_queue_messages{queue}` and `hems_celery_unacked_messages`: read from the
  broker's Redis when Prometheus scrapes.
- `hems_optimization_solve_seconds{backend,status}`: solver wall time of finished runs.
- `hems_command_ack_latency_seconds{kind}`: from a hub command's creation to its first
  acknowledgement by the hub.

Solve times and command latencies are observed in worker and listener processes, often on
other hosts, while Prometheus scrapes the web role. So observations go into histogram
buckets in the broker's Redis (one hash per label set) and the collector registered by the
web role reads them at scrape time: one scrape of any web process sees every process.
Without a Redis broker (the embedded run, tasks in-process) they stay in this process.
Observing never raises: a metric must not fail a solve or a batch of acknowledgements.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
from typing import Iterable, Optional

from prometheus_client import Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

KEY_PREFIX = "hems:metrics"
# kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in lists named queue + SEP + priority.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)

HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "hems_optimization_solve_seconds": (
        "Solver wall time of finished optimization runs.", ("backend", "status"),
        (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, math.inf)),
    "hems_command_ack_latency_seconds": (
        "Time from a hub command's creation to the hub's first acknowledgement.", ("kind",),
        (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, math.inf)),
}

_local = {name: Histogram(name, text, labels, unit="seconds", buckets=buckets, registry=None)
          for name, (text, labels, buckets) in HISTOGRAMS.items()}
_client: Optional[tuple[str, object]] = None
_client_lock = threading.Lock()


def _broker_url() -> str:
    from energy_manager.celery import app

    url = app.conf.broker_url or ""
    return url if url.startswith(("redis://", "rediss://")) else ""


def _redis(url: str):
    global _client
    with _client_lock:
        if _client is None or _client[0] != url:
            import redis

            _client = (url, redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))
        return _client[1]


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def observe(name: str, observations: Iterable[tuple[float, dict[str, str]]]) -> None:
    """Record observations (seconds, labels) of histogram `name` (one of HISTOGRAMS), one round trip."""
    text, label_names, buckets = HISTOGRAMS[name]
    points = [(seconds, {k: str(labels.get(k, "")) for k in label_names})
              for seconds, labels in observations if math.isfinite(seconds) and seconds >= 0]
    if not points:
        return
    url = _broker_url()
    if not url:
        for seconds, values in points:
            _local[name].labels(**values).observe(seconds)
        return
    try:
        pipe = _redis(url).pipeline(transaction=True)
        for seconds, values in points:
            key = f"{KEY_PREFIX}:{name}:{json.dumps(values, sort_keys=True)}"
            pipe.sadd(f"{KEY_PREFIX}:{name}", key)
            pipe.hincrby(key, _le(next(b for b in buckets if seconds <= b)), 1)
            pipe.hincrby(key, "count", 1)
            pipe.hincrbyfloat(key, "sum", seconds)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001  metrics are best effort
        log.warning("metric %s not recorded: %s", name, exc)


def observe_solve(seconds: float, backend: str, status: str) -> None:
    observe("hems_optimization_solve_seconds", [(seconds, {"backend": backend, "status": status})])


def observe_command_acks(latencies: Iterable[tuple[float, str]]) -> None:
    """(seconds from creation to first acknowledgement, command kind) of a batch of commands."""
    observe("hems_command_ack_latency_seconds", [(seconds, {"kind": kind}) for seconds, kind in latencies])


def celery_queues() -> list[str]:
    from django.conf import settings

    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    return sorted(routed | {settings.CELERY_TASK_DEFAULT_QUEUE})


class HemsCollector(Collector):
    """Reads queue depths and the shared histograms from Redis at scrape time."""

    def collect(self) -> Iterable:
        url = _broker_url()
        if not url:
            if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # there, the multiprocess collector reads them
                for histogram in _local.values():
                    yield from histogram.collect()
            return
        try:
            client = _redis(url)
            yield from self._queues(client)
            for name in HISTOGRAMS:
                yield self._histogram(client, name)
        except Exception as exc:  # noqa: BLE001  a scrape shows what it can; /health/ reports the outage
            log.warning("HEMS metrics not read from Redis: %s", exc)

    @staticmethod
    def _queues(client) -> Iterable:
        queues = celery_queues()
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
            for priority in PRIORITY_STEPS:
                pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{priority}")
        pipe.hlen("unacked")
        lengths = pipe.execute()
        depth = GaugeMetricFamily("hems_celery_queue_messages", "Messages waiting in a Celery queue.",
                                  labels=["queue"])
        step = 1 + len(PRIORITY_STEPS)
        for i, queue in enumerate(queues):
            depth.add_metric([queue], sum(lengths[i * step:(i + 1) * step]))
        yield depth
        yield GaugeMetricFamily("hems_celery_unacked_messages",
                                "Messages taken by a worker and not yet acknowledged.", value=lengths[-1])

    @staticmethod
    def _histogram(client, name: str) -> HistogramMetricFamily:
        text, label_names, buckets = HISTOGRAMS[name]
        family = HistogramMetricFamily(name, text, labels=list(label_names), unit="seconds")
        keys = sorted(k.decode() for k in client.smembers(f"{KEY_PREFIX}:{name}"))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        for key, fields in zip(keys, pipe.execute()):
            fields = {k.decode(): v.decode() for k, v in fields.items()}
            values = json.loads(key.split(":", 3)[3])
            cumulative, points = 0, []
            for bound in buckets:
                cumulative += int(fields.get(_le(bound), 0))
                points.append((_le(bound), cumulative))
            family.add_metric([values[k] for k in label_names], points, float(fields.get("sum", 0.0)))
        return family


_registered = False


def register() -> None:
    """Add the HEMS collector to the default registry (what django-prometheus exports); once."""
    global _registered
    if not _registered:
        REGISTRY.register(HemsCollector())
        _registered = True
