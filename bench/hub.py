"""Hub bridge benchmark through the real stack (not a test: prints JSON lines).

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/hems_bench_hub \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python -m bench.hub --commands 1000 --hubs 100 --json

Starts a private Mosquitto (password + ACL files from `mqtt_credentials`), one
`celery worker -Q hub -c 1` (the relay), one `manage.py hub_listener` and `--hubs`
simulated hubs, then:

* relay: enqueues `--commands` commands through `enqueue_command` (in chunks of
  `--chunk`, offered at `--rate` per second) and reports throughput and p50/p99
  latency from queued (created_at) to acknowledged (acknowledged_at, written by the
  listener from the hub's ack); also a burst (all commands in one transaction).
* ingestion: `--telemetry-hubs` simulated hubs (a `python -m hub_bridge.simulator`
  subprocess) publish telemetry every `--telemetry-interval` s for `--telemetry-duration`
  s; reports messages and rows per second written and the listener backlog over time.
* step load (`--step-load`): one publisher (the broker's admin account, pre-built payloads, so
  the load generator costs little CPU) offers telemetry of `--telemetry-hubs` hubs at rising
  rates (`--step-rates`, rows/s, `--step-seconds` each) to one and then two listener processes
  sharing the subscription (`--listeners 1,2`). A step is sustained when, over its second half,
  the listeners wrote >= 90 % of the offered rate (the rate is read from their once-a-second stats
  lines) and their inbox backlog at its end is under one second of offered messages; the load stops rising at the first step that is not. Reports, per listener
  count, the highest sustained rate (JSON line "hub.step_load").

    DJANGO_ENV=test DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python -m bench.hub --step-load --telemetry-hubs 1000 --listeners 1,2 --json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")
ROOT = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, min(len(values) - 1, int(round(q * (len(values) - 1)))))]


def _latencies_ms(committed: dict[int, object]) -> list[float]:
    """Queued (its transaction committed: from then on the relay can see it) -> acknowledged."""
    from hub_bridge.models import HubCommand

    rows = HubCommand.objects.filter(pk__in=list(committed)).values_list("pk", "acknowledged_at")
    return [(ack - committed[pk]).total_seconds() * 1000.0 for pk, ack in rows if ack is not None]


def _wait_acknowledged(ids: list[int], timeout_s: float) -> int:
    from hub_bridge.models import HubCommand

    deadline = time.monotonic() + timeout_s
    while True:
        done = HubCommand.objects.filter(pk__in=ids, acknowledged_at__isnull=False).count()
        if done == len(ids) or time.monotonic() > deadline:
            return done
        time.sleep(0.05)


def relay_phase(devices, commands: int, rate: float, chunk: int, burst: bool) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from hub_bridge.models import HubCommand
    from hub_bridge.services import enqueue_command

    ids: list[int] = []
    committed: dict[int, object] = {}
    t0 = time.monotonic()
    sent = 0
    while sent < commands:
        n = commands if burst else min(chunk, commands - sent)
        now = timezone.now()
        chunk_ids = []
        with transaction.atomic():
            for i in range(n):
                device = devices[(sent + i) % len(devices)]
                chunk_ids.append(enqueue_command(device, "set_battery_setpoint", {"power_w": (sent + i) % 5000},
                                                 now, now + timedelta(minutes=10)).pk)
            at = timezone.now()  # just before COMMIT: the commands are queued from here on (conservative)
        committed.update((pk, at) for pk in chunk_ids)
        ids += chunk_ids
        sent += n
        if not burst:
            pause = t0 + sent / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    offered_s = time.monotonic() - t0
    acknowledged = _wait_acknowledged(ids, timeout_s=120)
    lat = _latencies_ms(committed)
    first = min(committed.values())
    last = max(a for a in HubCommand.objects.filter(pk__in=ids).values_list("acknowledged_at", flat=True) if a)
    span_s = (last - first).total_seconds()
    rows = list(HubCommand.objects.filter(pk__in=ids).values_list("pk", "sent_at", "acknowledged_at"))
    to_sent = [(sent - committed[pk]).total_seconds() * 1000.0 for pk, sent, _ in rows if sent]
    sent_to_ack = [(ack - sent).total_seconds() * 1000.0 for _, sent, ack in rows if sent and ack]
    return {
        "mode": "burst" if burst else f"paced {rate:g}/s",
        "queued_to_sent_ms_p50": round(_percentile(to_sent, 0.5), 1) if to_sent else None,
        "sent_to_ack_ms_p50": round(_percentile(sent_to_ack, 0.5), 1) if sent_to_ack else None,
        "commands": commands, "acknowledged": acknowledged,
        "enqueue_s": round(offered_s, 3),
        "first_queued_to_last_ack_s": round(span_s, 3),
        "throughput_per_s": round(acknowledged / span_s, 1) if span_s > 0 else None,
        "latency_ms_p50": round(_percentile(lat, 0.5), 1) if lat else None,
        "latency_ms_p99": round(_percentile(lat, 0.99), 1) if lat else None,
        "latency_ms_max": round(max(lat), 1) if lat else None,
        "mean_send_count": round(statistics.mean(HubCommand.objects.filter(pk__in=ids)
                                                 .values_list("send_count", flat=True)), 3),
    }


def ingestion_phase(broker, specs, interval_s: float, duration_s: float, listener, per_process: int = 250) -> dict:
    """paho's loop uses select(), which cannot watch descriptors above 1024: hubs are spread over
    simulator processes of `per_process` hubs each."""
    from devices.models import Measurement

    rows_per_message = len(specs[0].devices) + 1
    before_rows = Measurement.objects.count()
    log_offset = len(listener.log())
    env = {**os.environ, "MQTT_TOPIC_PREFIX": broker.prefix, "PYTHONUNBUFFERED": "1"}
    procs, files = [], []
    for i in range(0, len(specs), per_process):
        creds = Path(tempfile.mkstemp(prefix="bench-hubs-", suffix=".json")[1])
        creds.write_text(json.dumps([s.to_dict() for s in specs[i:i + per_process]]))
        files.append(creds)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "hub_bridge.simulator", "--hubs", str(per_process), "--credentials", str(creds),
             "--url", broker.url(), "--telemetry-interval", str(interval_s), "--duration", str(duration_s)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(creds.with_suffix(".log"), "w"), text=True))
    samples = []
    t0 = time.monotonic()
    while any(p.poll() is None for p in procs):
        time.sleep(interval_s)
        samples.append((round(time.monotonic() - t0, 1), Measurement.objects.count() - before_rows))
    messages = 0
    for p in procs:
        out = p.stdout.read().strip().splitlines()
        messages += json.loads(out[-1])["telemetry_messages"] if out else 0
    sent_rows = messages * rows_per_message
    t_end = time.monotonic()
    while Measurement.objects.count() - before_rows < sent_rows and time.monotonic() - t_end < 60:
        time.sleep(0.1)
    drain_s = time.monotonic() - t_end
    written = Measurement.objects.count() - before_rows
    backlog = [int(b) for b in re.findall(r'"backlog": (\d+)', listener.log()[log_offset:])]
    for f in files:
        f.unlink()
    return {
        "hubs": len(specs), "simulator_processes": len(procs), "interval_s": interval_s, "duration_s": duration_s,
        "messages_sent": messages, "rows_sent": sent_rows, "rows_written": written,
        "messages_per_s": round(messages / duration_s, 1),
        "rows_per_s": round(written / duration_s, 1),
        "drain_after_stop_s": round(drain_s, 2),
        "listener_backlog_max": max(backlog) if backlog else None,
        "listener_backlog_last": backlog[-1] if backlog else None,
        "rows_written_over_time": samples,
    }


class TelemetryPublisher(threading.Thread):
    """Publishes telemetry for many hubs over one MQTT connection at a settable rate (messages/s)."""

    def __init__(self, url: str, prefix: str, specs):
        super().__init__(daemon=True)
        from hub_bridge import protocol
        from hub_bridge.mqtt import Connection, parse_url

        self.connection = Connection(parse_url(url), client_id=f"bench-load-{uuid.uuid4().hex[:6]}",
                                     max_inflight=65535).start(wait_s=15)
        self.templates = []
        for spec in specs:
            rows = [{"time": "@T@", "device_serial": d["device_serial"], "power_w": 100.0 + i}
                    for i, d in enumerate(spec.devices)]
            rows.append({"time": "@T@", "power_w": 1500.0, "energy_wh": 12345.0})
            message = {"version": protocol.VERSION, "hub_id": spec.hub_id, "measurements": rows}
            protocol.validate("telemetry", {**message, "measurements": [
                {**r, "time": protocol.iso(datetime.now(dt_timezone.utc))} for r in rows]})
            self.templates.append((protocol.topic(prefix, spec.hub_id, protocol.TELEMETRY),
                                   json.dumps(message, separators=(",", ":"))))
        self.rows_per_message = len(specs[0].devices) + 1
        self.rate = 0.0  # messages per second
        self.published = 0
        self._halt = threading.Event()

    def run(self) -> None:
        from hub_bridge import protocol

        i, t0, base = 0, time.monotonic(), 0
        rate = self.rate
        while not self._halt.is_set():
            if self.rate != rate:  # a new step: pace from here
                rate, t0, base = self.rate, time.monotonic(), self.published
            due = base + int(rate * (time.monotonic() - t0))
            if self.published >= due:
                time.sleep(0.005)
                continue
            stamp = '"' + protocol.iso(datetime.now(dt_timezone.utc)) + '"'
            while self.published < due:
                topic, template = self.templates[i % len(self.templates)]
                self.connection.client.publish(topic, template.replace('"@T@"', stamp).encode(), qos=0)
                self.published += 1
                i += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
        self.connection.stop()


def _listener_totals(listeners) -> tuple[int, int]:
    """Rows written and inbox backlog, summed over the listeners' latest stats lines."""
    rows = backlog = 0
    for listener in listeners:
        lines = re.findall(r"hub_listener stats (\{.*\})", listener.log())
        if lines:
            stats = json.loads(lines[-1])
            rows += stats.get("measurements", 0)
            backlog += stats.get("backlog", 0)
    return rows, backlog


def step_load_phase(publisher: TelemetryPublisher, listeners, rates: list[float], step_s: float) -> dict:
    """Raise the offered rows/s step by step until the listeners fall behind; see the module docstring."""
    steps, best = [], None
    per_message = publisher.rows_per_message
    for rows_per_s in rates:
        msgs_per_s = rows_per_s / per_message
        published0 = publisher.published
        publisher.rate = msgs_per_s
        t0 = time.monotonic()
        samples = []  # (seconds into the step, rows written so far, backlog)
        while time.monotonic() - t0 < step_s:
            time.sleep(1.0)
            samples.append((time.monotonic() - t0, *_listener_totals(listeners)))
        elapsed = time.monotonic() - t0
        offered = (publisher.published - published0) * per_message / elapsed
        # Steady state: the second half of the step (the first absorbs the change of rate).
        mid = next(s for s in samples if s[0] >= step_s / 2)
        written = (samples[-1][1] - mid[1]) / max(samples[-1][0] - mid[0], 1e-9)
        backlog_end = samples[-1][2]
        sustained = written >= 0.9 * offered and backlog_end <= msgs_per_s
        step = {"offered_rows_per_s": round(offered, 1), "written_rows_per_s": round(written, 1),
                "backlog_end": backlog_end, "backlog_max": max(s[2] for s in samples), "sustained": sustained,
                "loadavg_1m": round(os.getloadavg()[0], 2)}
        steps.append(step)
        if not sustained:
            break
        best = step
    publisher.rate = 0.0
    deadline = time.monotonic() + 60
    while _listener_totals(listeners)[1] > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    return {"max_sustained_rows_per_s": best["written_rows_per_s"] if best else 0.0, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--hubs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=600.0, help="Offered commands per second (paced run).")
    parser.add_argument("--chunk", type=int, default=20, help="Commands per transaction in the paced run.")
    parser.add_argument("--telemetry-hubs", type=int, default=1000)
    parser.add_argument("--telemetry-interval", type=float, default=10.0)
    parser.add_argument("--telemetry-duration", type=float, default=60.0)
    parser.add_argument("--skip-telemetry", action="store_true")
    parser.add_argument("--step-load", action="store_true",
                        help="only the step-load ingestion phase (no relay, no simulator phase)")
    parser.add_argument("--step-rates", default="1000,2000,3000,4000,5000,6000,8000,10000,12000",
                        help="offered telemetry rows/s, one step each")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--listeners", default="1,2", help="listener processes to measure, e.g. 1,2")
    parser.add_argument("--json", action="store_true", help="JSON lines only")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from devices.models import Device, DeviceType
    from hub_bridge.provision import provision_simulated_hubs
    from tests.plugins.celery_worker import CeleryWorker, purge_queues, use_broker
    from tests.plugins.mqtt import Broker, ListenerProcess, wait_for

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    call_command("migrate", verbosity=0)
    redis_url = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/5"
    prefix = f"bench_hub_{uuid.uuid4().hex[:8]}"
    broker = Broker(Path(tempfile.mkdtemp(prefix="bench-mosquitto-")), prefix).start()
    env = {"MQTT_URL": broker.url("relay"), "MQTT_LISTENER_URL": broker.url("listener"), "MQTT_TOPIC_PREFIX": prefix,
           "MQTT_LISTENER_GROUP": f"{prefix}-l", "CELERY_BROKER_URL": redis_url, "LOG_LEVEL": "WARNING"}
    settings.MQTT_URL, settings.MQTT_TOPIC_PREFIX = env["MQTT_URL"], prefix
    purge_queues(["hub"], redis_url)
    undo = use_broker(redis_url)
    worker = listener = sim = None
    if args.step_load:
        try:
            say(f"provisioning {args.telemetry_hubs} telemetry hubs")
            specs = provision_simulated_hubs(args.telemetry_hubs, tag=uuid.uuid4().hex[:6], with_cycle=False)
            broker.sync_credentials()
            publisher = TelemetryPublisher(broker.url("admin"), prefix, specs)
            publisher.start()
            rates = [float(r) for r in args.step_rates.split(",")]
            for count in [int(n) for n in args.listeners.split(",")]:
                listeners = [ListenerProcess({**env, "LOG_LEVEL": "INFO"}).start() for _ in range(count)]
                try:
                    say(f"step load with {count} listener(s)")
                    result = step_load_phase(publisher, listeners, rates, args.step_seconds)
                finally:
                    for lp in listeners:
                        lp.stop()
                print(json.dumps({"bench": "hub.step_load", "listeners": count, "hubs": len(specs),
                                  "rows_per_message": publisher.rows_per_message, "cpus": os.cpu_count(),
                                  **result}), flush=True)
            publisher.stop()
        finally:
            broker.stop()
            undo()
        return 0
    try:
        tag = uuid.uuid4().hex[:6]
        say(f"provisioning {args.hubs} hubs")
        specs = provision_simulated_hubs(args.hubs, tag=tag, with_cycle=False)
        tele_specs = []
        if not args.skip_telemetry:
            say(f"provisioning {args.telemetry_hubs} telemetry hubs")
            tele_specs = provision_simulated_hubs(args.telemetry_hubs, tag=f"{tag}t", with_cycle=False)
        broker.sync_credentials()
        worker = CeleryWorker(["hub"], 1, env=env, name="bench-hub", broker=redis_url).start()
        listener = ListenerProcess({**env, "LOG_LEVEL": "INFO"}).start()
        # The simulated hubs run in their own process, as real hubs would: not competing for this GIL.
        creds = Path(tempfile.mkstemp(prefix="bench-relay-hubs-", suffix=".json")[1])
        creds.write_text(json.dumps([s.to_dict() for s in specs]))
        sim = subprocess.Popen([sys.executable, "-m", "hub_bridge.simulator", "--hubs", str(len(specs)),
                                "--credentials", str(creds), "--url", broker.url(), "--telemetry-interval", "3600"],
                               cwd=ROOT, env={**os.environ, "MQTT_TOPIC_PREFIX": prefix}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        from devices.models import Hub

        wait_for(lambda: Hub.objects.filter(hub_id__in=[s.hub_id for s in specs], online=True).count() == len(specs),
                 60, "the hubs online")
        batteries = list(Device.objects.filter(device_type=DeviceType.BATTERY,
                                               hub__hub_id__in=[s.hub_id for s in specs]).select_related("hub"))
        relay_phase(batteries, min(100, args.commands), args.rate, args.chunk, burst=False)  # warm-up
        for burst in (False, True):
            say("relay " + ("burst" if burst else "paced"))
            result = relay_phase(batteries, args.commands, args.rate, args.chunk, burst)
            print(json.dumps({"bench": "hub.relay", "hubs": args.hubs, "cpus": os.cpu_count(),
                              "loadavg_1m": round(os.getloadavg()[0], 2), **result}), flush=True)
        if not args.skip_telemetry:
            say(f"telemetry: {args.telemetry_hubs} hubs every {args.telemetry_interval} s")
            result = ingestion_phase(broker, tele_specs, args.telemetry_interval, args.telemetry_duration, listener)
            print(json.dumps({"bench": "hub.ingestion", "cpus": os.cpu_count(), **result}), flush=True)
    finally:
        if sim and sim.poll() is None:
            sim.terminate()
            sim.wait(30)
        if listener:
            listener.stop()
        if worker:
            worker.stop()
        broker.stop()
        undo()
        purge_queues(["hub"], redis_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
