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
import time
import uuid
from datetime import timedelta
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
