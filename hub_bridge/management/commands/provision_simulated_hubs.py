"""Create simulated homes with hubs and write the hub specs the simulator connects with."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from hub_bridge.provision import provision_simulated_hubs


class Command(BaseCommand):
    help = "Create N simulated homes with a hub each and write their credentials for python -m hub_bridge.simulator."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--hubs", type=int, required=True, help="How many hubs to create.")
        parser.add_argument("--credentials", required=True, help="JSON file to write the hub specs to.")

    def handle(self, *args, hubs: int, credentials: str, **options) -> None:
        specs = provision_simulated_hubs(hubs)
        with open(credentials, "w") as f:
            json.dump([s.to_dict() for s in specs], f, indent=1)
        self.stdout.write(f"provisioned {len(specs)} hubs into {credentials}; now run `manage.py mqtt_credentials` "
                          "and reload the broker")
