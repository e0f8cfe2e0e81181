"""Telemetry aggregated per slot: the one place that turns raw measurements into energy per slot.

Everything above (statistics, charts, the APIs) reads telemetry through `slot_energy`, so
pre-computed roll-up tables can later replace its body without touching its callers.

A slot's energy is the mean of the power samples in the slot times the slot length: hubs
sample at a steady rate, so the mean power is the slot's average power. Power follows the
hub protocol: positive = consumption (or import, for the grid meter), negative = production
(or export). Slots without a sample have no data (`reporting` 0), never a made-up zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Avg, Func, IntegerField

from devices.models import Device, Measurement


class SlotIndex(Func):
    """Index of the slot of `origin + i * step_s` that a timestamp falls in (timestamps >= origin)."""

    output_field = IntegerField()

    def __init__(self, expression, origin: datetime, step_s: int):
        super().__init__(expression)
        self.origin = int(origin.timestamp())
        self.step_s = int(step_s)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # date_part gives double precision (EXTRACT gives numeric, several times slower to divide).
        return f"FLOOR((date_part('epoch', {sql}) - %s) / %s)::integer", [*params, self.origin, self.step_s]

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"((CAST(strftime('%%s', {sql}) AS INTEGER) - %s) / %s)", [*params, self.origin, self.step_s]


@dataclass
class SlotEnergy:
    """Per slot, summed over the homes (or devices) asked for."""

    import_kwh: list[float]  # positive part: grid import, or a device's consumption
    export_kwh: list[float]  # negative part: grid export, or a device's production
    reporting: list[int]  # homes (devices) with at least one sample in the slot

    @classmethod
    def empty(cls, slots: int) -> "SlotEnergy":
        return cls([0.0] * slots, [0.0] * slots, [0] * slots)


def _per_slot_means(home_ids: Iterable[int], start: datetime, slots: int, resolution_min: int, *,
                    device_ids: Optional[Iterable[int]] = None, device_type: Optional[str] = None,
                    all_devices: bool = False):
    """Mean power (W) per (home or device, slot): the grid meters unless devices are asked for."""
    end = start + timedelta(minutes=resolution_min * slots)
    home_ids = list(home_ids)
    if device_type is not None:  # ids first: a join would make the planner scan every device's rows
        device_ids = Device.objects.filter(home_id__in=home_ids, device_type=device_type).values_list("id", flat=True)
    qs = Measurement.objects.filter(home_id__in=home_ids, time__gte=start, time__lt=end, power_w__isnull=False)
    if device_ids is not None:
        qs = qs.filter(device_id__in=list(device_ids))
    elif all_devices:
        qs = qs.filter(device__isnull=False)
    else:
        qs = qs.filter(device__isnull=True)
    key = "home_id" if device_ids is None and not all_devices else "device_id"
    return (qs.annotate(slot=SlotIndex("time", start, resolution_min * 60)).order_by()
            .values(key, "slot").annotate(w=Avg("power_w")))


def slot_energy(home_ids: Iterable[int], start: datetime, slots: int, resolution_min: int = 15, *,
                device_ids: Optional[Iterable[int]] = None, device_type: Optional[str] = None) -> SlotEnergy:
    """Energy per slot from `start`, summed over homes: their grid meters by default, or the given
    devices / every device of `device_type` in those homes. Each home (device) is averaged on its own
    first, then the positive and negative parts are summed, so one home's export never hides another's
    import."""
    out = SlotEnergy.empty(slots)
    per = _per_slot_means(home_ids, start, slots, resolution_min, device_ids=device_ids, device_type=device_type)
    try:
        inner, params = per.query.sql_with_params()
    except EmptyResultSet:  # no such devices: nothing reported
        return out
    dt_h = resolution_min / 60.0
    with connection.cursor() as cur:
        cur.execute(
            "SELECT slot, SUM(CASE WHEN w > 0 THEN w ELSE 0 END), SUM(CASE WHEN w < 0 THEN -w ELSE 0 END), COUNT(*) "
            f"FROM ({inner}) per GROUP BY slot", params)
        for slot, pos_w, neg_w, n in cur.fetchall():
            if 0 <= slot < slots:
                out.import_kwh[slot] = float(pos_w) / 1000.0 * dt_h
                out.export_kwh[slot] = float(neg_w) / 1000.0 * dt_h
                out.reporting[slot] = int(n)
    return out


def device_slot_energy(home_id: int, start: datetime, slots: int, resolution_min: int = 15) -> dict[int, SlotEnergy]:
    """Per device of one home that reported in the span: its energy per slot, keyed by device id."""
    dt_h = resolution_min / 60.0
    out: dict[int, SlotEnergy] = {}
    for row in _per_slot_means([home_id], start, slots, resolution_min, all_devices=True):
        t, w = row["slot"], row["w"]
        if not 0 <= t < slots:
            continue
        series = out.setdefault(row["device_id"], SlotEnergy.empty(slots))
        series.import_kwh[t] = max(w, 0.0) / 1000.0 * dt_h
        series.export_kwh[t] = max(-w, 0.0) / 1000.0 * dt_h
        series.reporting[t] = 1
    return out
