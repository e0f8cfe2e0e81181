"""A database filled at the schema before the split into parts migrates to the new one with its rows.

The grid and notification models moved out of the `flexibility` app (now flexibility.planning, label
kept) into `grid` and `notifications`; their tables, rows, many-to-many links and content types
(admin permissions) must carry over.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from devices.models import Home
from flexibility.grid.models import Activation, ActivationShare, FlexibilityOffer, Portfolio, ServiceAccount
from flexibility.notifications.models import Notification
from flexibility.planning.models import OptimizationRun, Schedule
from hub_bridge.models import HubCommand

pytestmark = pytest.mark.django_db(transaction=True)

# The leaf migrations of the schema before the split.
OLD_LEAVES = [
    ("devices", "0003_alter_hub_hub_id"),
    ("flexibility", "0006_freeze_offers_beat"),
    ("hub_bridge", "0002_relay_sweep_beat"),
    ("grid", None),
    ("notifications", None),
]
START = datetime(2026, 11, 30, tzinfo=dt_timezone.utc)


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def old_schema():
    """Migrate back to the old leaves; always leave the database at the latest schema."""
    latest = _latest()
    try:
        executor = _migrate(OLD_LEAVES)
        moved = {app for app, _ in OLD_LEAVES}
        old_nodes = [t for t in OLD_LEAVES if t[1]] + [n for n in latest if n[0] not in moved]
        yield executor.loader.project_state(old_nodes).apps, latest
    finally:
        _migrate(latest)


def _fill(apps) -> dict[str, int]:
    """Rows of every moved model (and the ones pointing at them), written with the old models."""
    User = apps.get_model("auth", "User")
    HomeOld = apps.get_model("devices", "Home")
    Device = apps.get_model("devices", "Device")
    Hub = apps.get_model("devices", "Hub")
    Run = apps.get_model("flexibility", "OptimizationRun")
    ScheduleOld = apps.get_model("flexibility", "Schedule")
    NotificationOld = apps.get_model("flexibility", "Notification")
    PortfolioOld = apps.get_model("flexibility", "Portfolio")
    AccountOld = apps.get_model("flexibility", "ServiceAccount")
    OfferOld = apps.get_model("flexibility", "FlexibilityOffer")
    ActivationOld = apps.get_model("flexibility", "Activation")
    ShareOld = apps.get_model("flexibility", "ActivationShare")
    CommandOld = apps.get_model("hub_bridge", "HubCommand")

    user = User.objects.create(username="before-split@example.com", email="before-split@example.com")
    home = HomeOld.objects.create(owner=user, name="Home before the split")
    hub = Hub.objects.create(hub_id="HUB-SPLIT", home=home, mqtt_username="hub-HUB-SPLIT")
    device = Device.objects.create(home=home, hub=hub, serial_number="EVC-S", name="EV charger",
                                   device_type="ev_charger", parameters={"max_power_kw": 7.4})
    run = Run.objects.create(home=home, input_hash="h", problem={}, horizon_start=START,
                             horizon_end=START + timedelta(days=1), status="succeeded")
    schedule = ScheduleOld.objects.create(run=run, home=home, start=START, resolution_minutes=15, slots=2,
                                          cost_eur=1.0, co2_kg=0.5, baseline_cost_eur=2.0, baseline_co2_kg=0.6,
                                          savings_eur=1.0, net_import_kw=[1.0, 2.0], devices={})
    notification = NotificationOld.objects.create(user=user, home=home, kind="plan_changed", message="kept")
    portfolio = PortfolioOld.objects.create(code="split", name="Split portfolio")
    portfolio.homes.add(home)
    account = AccountOld.objects.create(name="split-aggregator", key_prefix="splitkey", key_hash="0" * 64)
    account.portfolios.add(portfolio)
    series = {name: [0.0, 0.0] for name in ("baseline_kw", "min_kw", "max_kw", "price_up_eur_per_kw",
                                             "price_down_eur_per_kw")}
    offer = OfferOld.objects.create(home=home, delivery_day=date(2026, 11, 30), gate_closure=START, start=START,
                                    slots=2, run=run, **series)
    activation = ActivationOld.objects.create(service_account=account, portfolio=portfolio, delivery_day=offer.delivery_day,
                                              mode="range", start=START, slots=2, requested_min_kw=[0.0, 0.0],
                                              requested_max_kw=[1.0, 1.0], external_id="dp-1")
    share = ShareOld.objects.create(activation=activation, home=home, offer=offer, run=run, target_kw=[0.5, 0.5],
                                    min_kw=[0.0, 0.0], max_kw=[1.0, 1.0])
    command = CommandOld.objects.create(hub=hub, device=device, kind="set_ev_power", parameters={"power_w": 1000},
                                        not_before=START, expires_at=START + timedelta(hours=1), run=run)
    return {"home": home.pk, "run": run.pk, "schedule": schedule.pk, "notification": notification.pk,
            "portfolio": portfolio.pk, "account": account.pk, "offer": offer.pk, "activation": activation.pk,
            "share": share.pk, "command": command.pk}


def test_rows_written_before_the_split_are_there_after_it(old_schema):
    old_apps, latest = old_schema
    ids = _fill(old_apps)
    OldContentType = old_apps.get_model("contenttypes", "ContentType")
    offer_type_id = OldContentType.objects.get(app_label="flexibility", model="flexibilityoffer").pk
    notification_type_id = OldContentType.objects.get(app_label="flexibility", model="notification").pk

    _migrate(latest)

    home = Home.objects.get(pk=ids["home"])
    run = OptimizationRun.objects.get(pk=ids["run"])
    assert Schedule.objects.get(pk=ids["schedule"]).run == run
    assert Notification.objects.get(pk=ids["notification"]).message == "kept"
    portfolio = Portfolio.objects.get(pk=ids["portfolio"])
    assert list(portfolio.homes.all()) == [home]
    account = ServiceAccount.objects.get(pk=ids["account"])
    assert list(account.portfolios.all()) == [portfolio]
    offer = FlexibilityOffer.objects.get(pk=ids["offer"])
    assert (offer.home, offer.run, offer.slots) == (home, run, 2)
    activation = Activation.objects.get(pk=ids["activation"])
    assert (activation.service_account, activation.portfolio, activation.external_id) == (account, portfolio, "dp-1")
    share = ActivationShare.objects.get(pk=ids["share"])
    assert (share.activation, share.offer, share.run) == (activation, offer, run)
    assert HubCommand.objects.get(pk=ids["command"]).run == run
    # Content types moved with their models (same rows), so permissions granted on them still apply.
    offer_type = ContentType.objects.get_for_model(FlexibilityOffer)
    assert (offer_type.pk, offer_type.app_label) == (offer_type_id, "grid")
    notification_type = ContentType.objects.get_for_model(Notification)
    assert (notification_type.pk, notification_type.app_label) == (notification_type_id, "notifications")
    assert Permission.objects.filter(content_type=offer_type, codename="view_flexibilityoffer").exists()


def test_the_database_is_back_at_the_latest_schema():
    """Runs after the test above (file order): nothing is left unapplied."""
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
