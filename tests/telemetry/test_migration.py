"""Migrating to partitioned telemetry keeps every existing row (and backwards again)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("devices", "0004_dynamic_tariffs")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _is_partitioned(table: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = %s", [table])
        return cur.fetchone()[0] == "p"


def test_existing_measurements_survive_the_migration_and_feed_rollups():
    latest = _latest()
    try:
        apps = _migrate(BEFORE)
        assert not _is_partitioned("devices_measurement")
        User = apps.get_model("auth", "User")
        Home = apps.get_model("devices", "Home")
        Measurement = apps.get_model("devices", "Measurement")
        home = Home.objects.create(owner=User.objects.create(username="migrating"), name="old home")
        base = datetime(2025, 3, 30, 0, 7, tzinfo=dt_timezone.utc)
        Measurement.objects.bulk_create([
            Measurement(home=home, time=base + timedelta(hours=7 * i), power_w=float(i), soc_pct=None)
            for i in range(40)  # spread over 12 days
        ])
        before = sorted(Measurement.objects.values_list("id", "time", "power_w"))

        apps = _migrate(latest)
        assert _is_partitioned("devices_measurement")
        Measurement = apps.get_model("devices", "Measurement")
        Rollup = apps.get_model("devices", "MeasurementRollup")
        assert sorted(Measurement.objects.values_list("id", "time", "power_w")) == before
        assert Rollup.objects.filter(home_id=home.pk).count() == 40
        assert sum(Rollup.objects.values_list("power_w_sum", flat=True)) == sum(float(i) for i in range(40))
        with connection.cursor() as cur:  # the rows sit in their days' partitions, none in the default one
            cur.execute("SELECT count(*) FROM devices_measurement_default")
            assert cur.fetchone()[0] == 0
        new = Measurement.objects.create(home_id=home.pk, time=base, power_w=1.0)
        assert new.pk > max(pk for pk, _, _ in before)  # the id sequence continues

        apps = _migrate(BEFORE)  # and back: a plain table with the same rows
        assert not _is_partitioned("devices_measurement")
        assert apps.get_model("devices", "Measurement").objects.count() == 41
    finally:
        _migrate(_latest())
