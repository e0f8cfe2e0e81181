"""seed_demo: creates the documented demo household, and running it twice changes nothing."""
from __future__ import annotations

import zoneinfo
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from demo.management.commands.seed_demo import local_day_slots
from devices.models import ComfortPreference, Cycle, Device, EVSession, Home, Hub, SignalSeries
from devices.hub_credentials import check_secret

pytestmark = pytest.mark.django_db
LISBON = zoneinfo.ZoneInfo("Europe/Lisbon")


def _counts():
    return [m.objects.count() for m in (get_user_model(), Home, Hub, Device, Cycle, EVSession, SignalSeries,
                                        ComfortPreference)]


def test_seed_twice_is_idempotent_and_logins_work(anon_client, capsys):
    call_command("seed_demo")
    first_out = capsys.readouterr().out
    first = _counts()
    call_command("seed_demo")
    assert _counts() == first
    assert "secret" not in capsys.readouterr().out  # the hub secret is shown only when the hub is created
    secret = first_out.split("secret ")[1].split(" ")[0]
    assert check_secret(secret, Hub.objects.get(hub_id="DEMO-HUB-001").mqtt_password_hash)

    home = Home.objects.get(name="Demo household")
    assert home.owner.email == "demo@example.com" and not home.owner.is_staff
    assert home.global_optimizer_opt_in and str(home.tariff.code) == "pt-tri-hourly-daily"
    assert sorted(home.devices.values_list("device_type", flat=True)) == sorted(
        ["dishwasher", "washing_machine", "ev_charger", "battery", "pv", "water_heater"])
    assert get_user_model().objects.get(email="operator@example.com").is_superuser
    kinds = set(SignalSeries.objects.values_list("kind", flat=True))
    assert kinds == {"import_price", "co2_intensity", "load_forecast", "pv_forecast", "heat_demand"}
    for series in SignalSeries.objects.all():
        assert len(series.values) in (92, 96, 100)
        assert series.start.astimezone(LISBON).hour == 0
    cycle = Cycle.objects.get(sequence_id="demo-washing")
    assert cycle.power_profile[0]["max_power_w"] > 0

    tokens = anon_client.post("/api/v1/auth/token/", {"email": "demo@example.com", "password": "demo-password-2026"},
                              format="json").json()
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert anon_client.get("/api/v1/devices/").json()["count"] == 6


@pytest.mark.parametrize("day, slots", [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (date(2026, 6, 1), 96)])
def test_local_days_across_dst(day, slots):
    start, n = local_day_slots(day, LISBON)
    assert n == slots and start.astimezone(LISBON).hour == 0


def test_the_demo_household_can_be_planned_right_after_seeding(django_capture_on_commit_callbacks):
    """`make run` then "optimize" in the app: every device the seed creates has the data the optimizer needs."""
    from devices.models import Home
    from flexibility.planning import services as runs
    from flexibility.planning.models import RunStatus

    call_command("seed_demo")
    home = Home.objects.get(name="Demo household")
    with django_capture_on_commit_callbacks(execute=True):
        run, created = runs.submit_run(home)
    run.refresh_from_db()
    assert created and run.status == RunStatus.SUCCEEDED, (run.status, run.error, run.explanation)
    kinds = {d["kind"] for d in run.schedule.devices.values()}
    assert {"cycle", "ev", "battery", "pv", "thermal"} <= kinds, kinds


@pytest.mark.django_db(transaction=True)  # the seed's plans run after its commits, as under `make run`
def test_seed_builds_the_grid_side_once(settings):
    """Tomorrow's day-ahead plan and its offer, the demo portfolio with an aggregator, one activation at the
    evening peak, and hub commands for the battery under automatic management; seeding again adds none."""
    from flexibility.grid.models import Activation, FlexibilityOffer, Portfolio, ServiceAccount
    from hub_bridge.models import HubCommand
    from tests.factories.homes import restore_default_tariffs

    restore_default_tariffs()

    settings.OPTIMIZER_BACKEND = "cpsat"  # plans the demo household in seconds (auto's HiGHS may need its limit)
    call_command("seed_demo")
    home = Home.objects.get(name="Demo household")
    portfolio = Portfolio.objects.get(code="demo-feeder")
    assert list(portfolio.homes.all()) == [home]
    assert ServiceAccount.objects.get(name="demo-aggregator").portfolios.get() == portfolio
    offer = FlexibilityOffer.objects.get(home=home)
    activation = Activation.objects.get(portfolio=portfolio)
    assert activation.delivery_day == offer.delivery_day and activation.status == "planned"
    assert activation.start.astimezone(LISBON).hour == 19 and activation.slots == 4
    commands = HubCommand.objects.filter(device__home=home)
    assert commands.filter(kind="set_battery_setpoint").exists()
    counts = [m.objects.count() for m in (Portfolio, FlexibilityOffer, Activation, ServiceAccount)]
    call_command("seed_demo")
    assert [m.objects.count() for m in (Portfolio, FlexibilityOffer, Activation, ServiceAccount)] == counts
