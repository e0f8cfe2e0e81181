"""A short closed loop on the real stack (bench.closed_loop, small): three simulated homes with physics
from the afternoon before to the end of their first planned day, on the simulated clock, through a real
Celery worker, the relay, Mosquitto and the listener.

The loop must lose no command, cause no comfort miss and save money against the same homes without
the HEMS. The week-long, 50-home figures are the benchmark's (README "Measured figures").
"""
from __future__ import annotations

import pytest

from bench.closed_loop import ClosedLoop, Config, stack_env
from energy_manager import clock
from tests.plugins.celery_worker import broker_url
from tests.plugins.mqtt import ListenerProcess

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def simulated_clock():
    clock.use(broker_url())
    yield broker_url()
    clock.use(None)


def test_a_day_of_three_homes_loses_no_command_misses_no_comfort_and_saves(
        settings, tmp_path, mqtt_broker, hub_env, celery_worker, simulated_clock):
    import_dir = tmp_path / "signals"
    import_dir.mkdir()
    env = stack_env(simulated_clock, import_dir, hub_env)
    settings.SIGNAL_IMPORT_DIR = str(import_dir)
    settings.OPTIMIZATION_REOPTIMIZE_DEBOUNCE_S = 0
    loop = ClosedLoop(Config(homes=3, days=1, history_days=3, start_hour=17.5), mqtt_broker.url(),
                      mqtt_broker.prefix, import_dir, simulated_clock)
    listener = None
    try:
        loop.create_homes()
        mqtt_broker.sync_credentials()
        celery_worker(["optimization", "default"], env=env)
        celery_worker(["hub"], env=env, name="hub")
        listener = ListenerProcess(env).start()
        report = loop.run()
    finally:
        loop.stop()
        if listener:
            listener.stop()
    context = f"report: {report}"
    assert report["commands"]["total"] > 0, context  # the homes were planned and their hubs commanded
    assert report["commands"]["lost"] == 0, context
    assert report["commands"].get("executed", 0) > 0, context
    assert report["comfort_misses_by_system"] == {
        "ev_short_at_departure": 0, "cycle_late": 0, "hot_water_below_band": 0}, context
    assert report["cycle_fallback_starts"] == 0, context  # every cycle started when the plan said
    assert report["savings_eur"]["planned"] > 0, context
    assert report["savings_eur"]["realized"] > 0, context
    assert listener.rejections() == 0, listener.log()[-3000:]
