"""Simulated households for the simulator, the demo, the tests and the benchmark.

Creates homes with a hub (own MQTT credentials), a washing machine with one cycle,
an EV charger and a battery, and returns the hub specs the simulator connects with.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from devices.models import Cycle, Device, DeviceType, Home, Hub

from . import protocol
from .services import issue_hub_credentials
from .simulator import HubSpec

WASH_PROFILE = [{"duration_min": 15, "expected_power_w": 2000, "max_power_w": 2200},
                {"duration_min": 60, "expected_power_w": 150, "max_power_w": 300}]


def cycle_body(cycle: Cycle) -> dict:
    return {"program": cycle.program, "state": cycle.state, "earliest_start": protocol.iso(cycle.earliest_start),
            "latest_end": protocol.iso(cycle.latest_end),
            "scheduled_start": protocol.iso(cycle.scheduled_start) if cycle.scheduled_start else None,
            "power_profile": cycle.power_profile}


def spec_for_hub(hub: Hub, secret: str) -> HubSpec:
    """What a simulated hub needs to act as `hub`: its account and its devices with their cycles."""
    devices = []
    for device in hub.devices.order_by("id"):
        spec = {"device_serial": device.serial_number, "device_type": device.device_type, "protocol": "vendor_api"}
        cycles = [{"sequence_id": c.sequence_id, **cycle_body(c)} for c in device.cycles.order_by("id")]
        if cycles:
            spec["cycles"] = cycles
        devices.append(spec)
    return HubSpec(hub_id=hub.hub_id, username=hub.mqtt_username, secret=secret, devices=devices)


@transaction.atomic
def provision_simulated_hubs(count: int, tag: str | None = None, owner=None, with_cycle: bool = True) -> list[HubSpec]:
    tag = tag or uuid.uuid4().hex[:6]
    User = get_user_model()
    if owner is None:
        owner, _ = User.objects.get_or_create(username=f"sim-{tag}", defaults={"email": f"sim-{tag}@example.com"})
    start = (timezone.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    specs = []
    for i in range(count):
        hub_id = f"SIM-{tag}-{i:04d}"
        home = Home.objects.create(owner=owner, name=f"Simulated home {tag}-{i}")
        hub = Hub.objects.create(hub_id=hub_id, home=home, mqtt_username=f"hub-{hub_id}")
        secret = issue_hub_credentials(hub)
        devices = []
        wm = Device.objects.create(home=home, hub=hub, serial_number=f"WM-{tag}-{i}", name="Washing machine",
                                   device_type=DeviceType.WASHING_MACHINE, parameters={})
        ev = Device.objects.create(home=home, hub=hub, serial_number=f"EV-{tag}-{i}", name="EV charger",
                                   device_type=DeviceType.EV_CHARGER, parameters={"max_power_kw": 7.4})
        bat = Device.objects.create(home=home, hub=hub, serial_number=f"BAT-{tag}-{i}", name="Battery",
                                    device_type=DeviceType.BATTERY,
                                    parameters={"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5})
        wm_spec = {"device_serial": wm.serial_number, "device_type": wm.device_type, "protocol": "vendor_api",
                   "cycles": []}
        if with_cycle:
            cycle = Cycle(device=wm, sequence_id=f"wash-{i}", program="Cotton 40", earliest_start=start,
                          latest_end=start + timedelta(hours=10), power_profile=WASH_PROFILE)
            cycle.full_clean()
            cycle.save()
            wm_spec["cycles"].append({"sequence_id": cycle.sequence_id, **cycle_body(cycle)})
        devices += [wm_spec,
                    {"device_serial": ev.serial_number, "device_type": ev.device_type, "protocol": "ocpp"},
                    {"device_serial": bat.serial_number, "device_type": bat.device_type, "protocol": "modbus"}]
        specs.append(HubSpec(hub_id=hub_id, username=hub.mqtt_username, secret=secret, devices=devices))
    return specs
