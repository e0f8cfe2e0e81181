"""Telemetry storage on PostgreSQL: time partitions and the 15-minute roll-up SQL.

Raw measurements are partitioned by UTC day so that retention drops whole days (a DROP TABLE,
no row-by-row DELETE and no bloat); their 15-minute roll-ups by UTC month, kept for years.
Each table also has a DEFAULT partition: a row whose time has no partition yet (a hub with a
wrong clock, a backfill) is kept there instead of failing its whole batch, and is moved into
its own partition when that partition is created.

Django does not know about any of this: the models keep `id` as their primary key (unique by
its identity sequence); the database's primary key is (id, time column), as PostgreSQL requires
the partition key in every unique constraint. Other databases (the SQLite demo) keep plain tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Iterator

from django.db import connection, transaction

UTC = dt_timezone.utc


@dataclass(frozen=True)
class PartitionedTable:
    table: str
    column: str  # the partition key
    period: str  # "day" or "month"

    def floor(self, when: datetime) -> datetime:
        when = when.astimezone(UTC)
        if self.period == "day":
            return datetime(when.year, when.month, when.day, tzinfo=UTC)
        return datetime(when.year, when.month, 1, tzinfo=UTC)

    def next(self, start: datetime) -> datetime:
        if self.period == "day":
            return start + timedelta(days=1)
        return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)

    def name(self, start: datetime) -> str:
        return f"{self.table}_p{start:%Y%m%d}" if self.period == "day" else f"{self.table}_p{start:%Y%m}"

    @property
    def default(self) -> str:
        return f"{self.table}_default"

    def periods(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Start of every period that overlaps [start, end)."""
        at = self.floor(start)
        while at < end:
            yield at
            at = self.next(at)


MEASUREMENTS = PartitionedTable("devices_measurement", "time", "day")
ROLLUPS = PartitionedTable("devices_measurementrollup", "slot_start", "month")

_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def supported() -> bool:
    return connection.vendor == "postgresql"


def _parse_bound(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace(" ", "T"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def partitions(spec: PartitionedTable) -> dict[str, tuple[datetime, datetime]]:
    """The range partitions of `spec` (name -> [from, to)), without the default partition."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = %s::regclass""", [spec.table])
        rows = cur.fetchall()
    out = {}
    for name, bound in rows:
        m = _BOUND.search(bound or "")
        if m:
            out[name] = (_parse_bound(m.group(1)), _parse_bound(m.group(2)))
    return out


def create_partition(spec: PartitionedTable, start: datetime) -> bool:
    """Create the partition starting at `start` (a period start) unless it exists; True if created.

    Rows already kept in the default partition for that period move into it, in the same
    transaction, so that attaching it does not fail.
    """
    end = spec.next(start)
    name = spec.name(start)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", [name])
        if cur.fetchone()[0] is not None:
            return False
        cur.execute(f'CREATE TABLE "{name}" (LIKE "{spec.table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        cur.execute(
            f'WITH moved AS (DELETE FROM "{spec.default}" WHERE "{spec.column}" >= %s AND "{spec.column}" < %s '
            f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved', [start, end])
        cur.execute(f'ALTER TABLE "{spec.table}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)',
                    [start, end])
    return True


def ensure_partitions(spec: PartitionedTable, start: datetime, end: datetime) -> list[str]:
    """Every partition overlapping [start, end) exists; returns the names created."""
    if not supported():
        return []
    existing = {s for s, _ in partitions(spec).values()}
    return [spec.name(p) for p in spec.periods(start, end) if p not in existing and create_partition(spec, p)]


def drop_partitions_before(spec: PartitionedTable, cutoff: datetime) -> list[str]:
    """Drop whole partitions that end at or before `cutoff`, and older rows of the default partition."""
    if not supported():
        return []
    dropped = []
    for name, (_, end) in sorted(partitions(spec).items(), key=lambda kv: kv[1][0]):
        if end <= cutoff:
            with connection.cursor() as cur:
                # Deferred foreign-key checks of rows written earlier in this transaction block a DROP.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.execute(f'DROP TABLE "{name}"')
            dropped.append(name)
    with connection.cursor() as cur:
        cur.execute(f'DELETE FROM "{spec.default}" WHERE "{spec.column}" < %s', [cutoff])
    return dropped


def period_starts_in_use(spec: PartitionedTable) -> list[datetime]:
    """Period starts of the rows in the table (to create partitions for existing data)."""
    trunc = "day" if spec.period == "day" else "month"
    with connection.cursor() as cur:
        cur.execute(f"""SELECT DISTINCT date_trunc('{trunc}', "{spec.column}" AT TIME ZONE 'UTC')
                          FROM "{spec.table}" """)
        return sorted(d.replace(tzinfo=UTC) for (d,) in cur.fetchall())


# Measurements columns in the order the batch statements bind them.
COLUMNS = ("home_id", "device_id", "time", "power_w", "energy_wh", "soc_pct", "temperature_c")


def rollup_upsert_sql(source: str) -> str:
    """INSERT that adds the measurements of `source` (a subquery or CTE name with COLUMNS) to their slots.

    Counts and sums add; last SoC and last meter reading keep the later measurement. Groups are
    inserted in key order so that two writers touching the same slots lock them in the same order.
    """
    return f"""
    INSERT INTO devices_measurementrollup AS r (
        home_id, device_id, slot_start, samples, power_samples, power_w_sum, power_w_min, power_w_max,
        soc_pct_last, soc_at, meter_wh_last, meter_at, temperature_samples, temperature_c_sum)
    SELECT home_id, device_id, date_bin('15 minutes', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS slot,
           count(*), count(power_w), coalesce(sum(power_w), 0), min(power_w), max(power_w),
           (array_agg(soc_pct ORDER BY time DESC) FILTER (WHERE soc_pct IS NOT NULL))[1],
           max(time) FILTER (WHERE soc_pct IS NOT NULL),
           (array_agg(energy_wh ORDER BY time DESC) FILTER (WHERE energy_wh IS NOT NULL))[1],
           max(time) FILTER (WHERE energy_wh IS NOT NULL),
           count(temperature_c), coalesce(sum(temperature_c), 0)
      FROM {source} AS batch
     GROUP BY home_id, device_id, slot
     ORDER BY home_id, device_id NULLS FIRST, slot
    ON CONFLICT (home_id, device_id, slot_start) DO UPDATE SET
        samples = r.samples + EXCLUDED.samples,
        power_samples = r.power_samples + EXCLUDED.power_samples,
        power_w_sum = r.power_w_sum + EXCLUDED.power_w_sum,
        power_w_min = LEAST(r.power_w_min, EXCLUDED.power_w_min),
        power_w_max = GREATEST(r.power_w_max, EXCLUDED.power_w_max),
        soc_pct_last = CASE WHEN EXCLUDED.soc_at >= r.soc_at OR r.soc_at IS NULL
                            THEN coalesce(EXCLUDED.soc_pct_last, r.soc_pct_last) ELSE r.soc_pct_last END,
        soc_at = GREATEST(r.soc_at, EXCLUDED.soc_at),
        meter_wh_last = CASE WHEN EXCLUDED.meter_at >= r.meter_at OR r.meter_at IS NULL
                             THEN coalesce(EXCLUDED.meter_wh_last, r.meter_wh_last) ELSE r.meter_wh_last END,
        meter_at = GREATEST(r.meter_at, EXCLUDED.meter_at),
        temperature_samples = r.temperature_samples + EXCLUDED.temperature_samples,
        temperature_c_sum = r.temperature_c_sum + EXCLUDED.temperature_c_sum
    """


BATCH_SQL = f"""
WITH batch AS (
    SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[],
                         %s::float8[], %s::float8[]) AS b({", ".join(COLUMNS)})
), raw AS (
    INSERT INTO devices_measurement ({", ".join(COLUMNS)}) SELECT * FROM batch
)
{rollup_upsert_sql("batch")}
"""



def write_batch(rows: list[tuple]) -> None:
    """Insert `rows` (tuples in COLUMNS order) and add them to their roll-up slots: one statement.

    Runs on the Django connection (inside the caller's transaction) with a server-side-binding
    psycopg cursor, so the seven column arrays travel as parameters, not as SQL text.
    """
    if not supported():
        return _write_batch_portable(rows)
    import psycopg

    connection.ensure_connection()
    columns = [list(c) for c in zip(*rows)]
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(BATCH_SQL, columns)


def _write_batch_portable(rows: list[tuple]) -> None:
    """The same on databases without the batch statement (the SQLite demo): ORM, slot by slot."""
    from .models import Measurement, MeasurementRollup, ROLLUP_SLOT_MINUTES

    Measurement.objects.bulk_create([Measurement(**dict(zip(COLUMNS, r))) for r in rows], batch_size=2000)
    slot_s = ROLLUP_SLOT_MINUTES * 60
    for r in sorted(rows, key=lambda r: r[2]):
        row = dict(zip(COLUMNS, r))
        t = row["time"].astimezone(UTC)
        slot = datetime.fromtimestamp(int(t.timestamp()) // slot_s * slot_s, UTC)
        rollup, _ = MeasurementRollup.objects.get_or_create(home_id=row["home_id"], device_id=row["device_id"],
                                                            slot_start=slot)
        rollup.samples += 1
        if row["power_w"] is not None:
            rollup.power_samples += 1
            rollup.power_w_sum += row["power_w"]
            rollup.power_w_min = min(row["power_w"], rollup.power_w_min if rollup.power_w_min is not None else row["power_w"])
            rollup.power_w_max = max(row["power_w"], rollup.power_w_max if rollup.power_w_max is not None else row["power_w"])
        if row["soc_pct"] is not None and (rollup.soc_at is None or t >= rollup.soc_at):
            rollup.soc_pct_last, rollup.soc_at = row["soc_pct"], t
        if row["energy_wh"] is not None and (rollup.meter_at is None or t >= rollup.meter_at):
            rollup.meter_wh_last, rollup.meter_at = row["energy_wh"], t
        if row["temperature_c"] is not None:
            rollup.temperature_samples += 1
            rollup.temperature_c_sum += row["temperature_c"]
        rollup.save()
