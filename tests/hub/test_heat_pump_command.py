"""Space heating's plan reaches the heat pump (issue 14 item 5): dispatch turns the stored plan into
`set_heat_pump_setpoint` commands (a room setpoint, with the planned power as a limit while the plan heats),
the relay sends them over Mosquitto, the simulated hub executes them and its telemetry shows the room's
setpoint; the closed loop's physics heats a first-order house to that setpoint within that power."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as dj_timezone

from devices.models import Device, DeviceType, Measurement
from flexibility.planning.models import OptimizationRun, RunStatus, Schedule
from flexibility.planning.services.runs import solve_problem, store_result
from hub_bridge.models import CommandState, HubCommand
from hub_bridge.physics import HomePhysics, SpaceHeater, Truth
from hub_bridge.provision import provision_simulated_hubs
from tests.factories.problems import Day
from tests.plugins.mqtt import wait_for

T0 = datetime(2026, 12, 15, 6, tzinfo=timezone.utc)
SLOT = timedelta(minutes=15)


def _house(indoor_c: float = 18.0) -> SpaceHeater:
    return SpaceHeater("HP-1", max_power_kw=3.0, heat_capacity_kwh_per_k=3.0, heat_loss_kw_per_k=0.2,
                       indoor_c=indoor_c)


def test_the_simulated_heat_pump_heats_to_its_setpoint_within_the_power_it_was_allowed():
    outdoor = [2.0] * 8
    home = HomePhysics(Truth(T0, [0.0] * 8, [0.0] * 8, [0.0] * 8, outdoor), managed=True, heating=_house())
    home.command("HP-1", T0, T0 + 2 * SLOT, {"indoor_temperature_c": 21.0, "power_w": 1500}, issued_at=T0)
    home.command("HP-1", T0 + 2 * SLOT, T0 + 8 * SLOT, {"indoor_temperature_c": 19.0}, issued_at=T0)
    first = home.advance(T0).device_w["HP-1"]
    assert first == pytest.approx(1500)  # 18 C under a 21 C setpoint: the limit, not the pump's 3 kW
    home.advance(T0 + SLOT)
    warmed = home.heating.indoor_c
    assert 18.0 < warmed < 21.0
    for k in range(2, 8):  # 19 C at its own pace: it gets there, then holds it with a fraction of its power
        last = home.advance(T0 + k * SLOT)
    assert home.heating.indoor_c == pytest.approx(19.0, abs=0.05)
    assert 0 < last.device_w["HP-1"] < 1500
    # without a command (the baseline, or managed=False) it holds its own setpoint
    own = HomePhysics(Truth(T0, [0.0] * 8, [0.0] * 8, [0.0] * 8, outdoor), managed=False, heating=_house(20.0))
    own.advance(T0)
    assert own.heating.indoor_c == pytest.approx(20.0, abs=0.01)


@pytest.fixture
def heated_home(sync_broker_credentials):
    spec = provision_simulated_hubs(1, with_cycle=False)[0]
    some = Device.objects.get(serial_number=spec.devices[0]["device_serial"])
    heat_pump = Device.objects.create(
        home=some.home, hub=some.hub, serial_number=f"HP-{spec.hub_id}", name="Heat pump",
        device_type=DeviceType.SPACE_HEATING, automatic_management=True,
        parameters={"max_power_kw": 3.0, "heat_capacity_kwh_per_k": 10.0, "heat_loss_kw_per_k": 0.2})
    spec.devices.append({"device_serial": heat_pump.serial_number, "device_type": "space_heating",
                         "protocol": "modbus"})
    sync_broker_credentials()
    return spec, heat_pump


def _space_heating_plan(heat_pump: Device) -> OptimizationRun:
    """Today (local) with a cold day outside, planned by the real optimizer and stored as a worker would."""
    day = Day(dj_timezone.localdate(timezone=Day().zone))
    problem = day.problem()
    lo = [17.0 if day.hour_of(t) < 6 else 20.0 for t in range(day.slots)]  # a night setback until 06:00
    problem["heat_pumps"] = [{
        "id": f"space_heating-{heat_pump.pk}", "device": heat_pump.serial_number, "name": heat_pump.name,
        "max_power_kw": 3.0, "heat_capacity_kwh_per_k": 10.0, "heat_loss_kw_per_k": 0.2, "initial_indoor_c": 20.0,
        "outdoor_temperature_c": [2.0] * day.slots, "comfort_min_c": lo, "comfort_max_c": [23.0] * day.slots,
        "cop_curve": [[-10.0, 2.0], [7.0, 3.4]], "modulating": True}]
    run = OptimizationRun.objects.create(
        home=heat_pump.home, input_hash="heat-pump", problem=problem, horizon_start=day.start_utc,
        horizon_end=day.start_utc + day.slots * SLOT, status=RunStatus.RUNNING)
    assert store_result(run.pk, solve_problem(run)) == RunStatus.SUCCEEDED
    return run


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_space_heating_plan_reaches_the_heat_pump_as_a_room_setpoint(heated_home, hub_listener, hub_relay,
                                                                        simulated_hub):
    spec, heat_pump = heated_home
    hub = simulated_hub(spec)
    run = _space_heating_plan(heat_pump)
    planned = Schedule.objects.get(run=run).devices[f"space_heating-{heat_pump.pk}"]
    commands = list(HubCommand.objects.filter(device=heat_pump).order_by("not_before"))
    assert commands and {c.kind for c in commands} == {"set_heat_pump_setpoint"}
    heating = [c for c in commands if "power_w" in c.parameters]
    assert heating, "2 C outside: the plan heats, and says with how much power"
    for c in heating:  # the room setpoint is the plan's indoor temperature where the block ends, in the band
        slot = int((c.expires_at - run.horizon_start) / SLOT)
        assert c.parameters["indoor_temperature_c"] == pytest.approx(
            max(planned["indoor_temperature_c"][slot], planned["comfort_min_c"][slot - 1]), abs=0.1)
        assert c.parameters["power_w"] == pytest.approx(planned["power_kw"][slot - 1] * 1000, abs=1)
    for c in commands:
        assert c.parameters["indoor_temperature_c"] >= planned["comfort_min_c"][
            int((c.expires_at - run.horizon_start) / SLOT) - 1]
    now_command = commands[0]  # the current block: executed at once; later blocks wait at the hub
    wait_for(lambda: HubCommand.objects.get(pk=now_command.pk).state == CommandState.EXECUTED,
             message="the current heat pump setpoint executed")
    wait_for(lambda: all(s in (CommandState.ACKNOWLEDGED, CommandState.EXECUTED) for s in HubCommand.objects.filter(
        device=heat_pump).values_list("state", flat=True)), message="every heat pump setpoint accepted")
    held = {k: v for k, v in now_command.parameters.items() if k != "until"}
    assert hub.setpoints[heat_pump.serial_number] == held
    hub.publish_telemetry()
    wait_for(lambda: Measurement.objects.filter(device=heat_pump,
                                                temperature_c=held["indoor_temperature_c"]).exists(),
             message="the heat pump's telemetry at its setpoint")
