"""`python manage.py hub_listener`: ingest hub uplinks (run several; they share the load)."""
from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from hub_bridge.listener import Listener


class Command(BaseCommand):
    help = "Subscribe to hub uplink topics (shared subscription) and write what hubs report."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="Broker URL with the listener account (default MQTT_LISTENER_URL or MQTT_URL).")
        parser.add_argument("--group", help="Shared-subscription group (default MQTT_LISTENER_GROUP).")
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument("--batch-wait-ms", type=float, default=20.0)
        parser.add_argument("--stats-interval", type=float, default=10.0, help="Seconds between stats log lines.")

    def handle(self, *args, **options):
        listener = Listener(url=options["url"], group=options["group"], batch_size=options["batch_size"],
                            batch_wait_s=options["batch_wait_ms"] / 1000.0)

        def stop(signum, frame):
            listener.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        listener.run(stats_interval_s=options["stats_interval"])
