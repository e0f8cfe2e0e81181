"""Django rows for tests and benchmarks: a standard household and area signals.

`bench/` imports these (the benchmarks seed the same homes the tests plan); tests never import `bench/`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from devices.models import (
    Cycle, Device, DeviceType, EVSession, Home, Hub, SignalKind, SignalSeries, Tariff, TariffKind,
)
from devices.tariffs import DEFAULT_TARIFFS, TARIFF_SOURCE, price_at

from .reference import EASY_CARE, reference


# The hourly per-unit household load (x contracted kVA gives kW) and the washing machine's
# "easy care" program come from the FlexiHome reference data (tests/factories/reference.py reads it).
def load_per_unit() -> list[float]:
    return reference()["load_profile_per_unit_hourly"]


def washer_profile() -> list[dict]:
    phases = sorted(reference()["appliance_cycles"][EASY_CARE]["phases"], key=lambda p: p["order"])
    return [{"duration_min": p["duration_min"], "max_power_w": p["max_power_w"]} for p in phases]


# A typical dishwasher eco program (heat, wash, heat-dry).
DISHWASHER_PROFILE = [{"duration_min": 20, "max_power_w": 2000}, {"duration_min": 60, "max_power_w": 150},
                      {"duration_min": 30, "max_power_w": 1800}]
CO2_HOURLY = [58, 54, 56, 72, 56, 65, 64, 63, 52, 57, 54, 53, 49, 54, 67, 73, 80, 95, 110, 120, 105, 90, 75, 62]


def hour_floor(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def seed_area_signals(start: datetime, hours: int = 72, area: str = "PT") -> None:
    """Area CO2 intensity, hourly, from `start` (replaces nothing: newer series win)."""
    start = hour_floor(start)
    SignalSeries.objects.create(
        kind=SignalKind.CO2_INTENSITY, area=area, start=start, resolution_minutes=60,
        values=[float(CO2_HOURLY[(start + timedelta(hours=h)).astimezone(dt_timezone.utc).hour]) for h in range(hours)],
        source="factories: hourly CO2 shape",
    )


def seed_standard_home(owner, name: str, now: datetime, hub: bool = False, automatic: bool = False,
                       ev_energy_kwh: float = 10.0, opt_in: bool = True, with_load: bool = True):
    """One household: 6.9 kVA, tri-hourly tariff, 48 h load forecast, washer + dishwasher cycles, an EV session.

    The user's cycle start is the first peak-price slot at least an hour from `now` (so a plan can always
    save by moving it); the 13-hour windows start there and the EV session lies in the next 12 hours.
    """
    tariff = Tariff.objects.filter(code="pt-tri-hourly-daily").first()
    if tariff is None:  # the data migration's row (gone after a transactional test flushed the tables)
        spec = next(t for t in DEFAULT_TARIFFS if t["code"] == "pt-tri-hourly-daily")
        tariff = Tariff.objects.create(source=TARIFF_SOURCE, **spec)
    home = Home.objects.create(owner=owner, name=name, tariff_kind=TariffKind.TRI_HOURLY, tariff=tariff,
                               contracted_power_kva=Decimal("6.90"), global_optimizer_opt_in=opt_in)
    hub_obj = None
    if hub:
        hub_obj = Hub.objects.create(hub_id=f"hub-{home.pk}", home=home, mqtt_username=f"hub-{home.pk}")
    start = hour_floor(now) - timedelta(hours=1)
    zone = home.tzinfo
    if with_load:
        load = load_per_unit()
        SignalSeries.objects.create(
            kind=SignalKind.LOAD_FORECAST, home=home, start=start, resolution_minutes=60,
            values=[round(load[(start + timedelta(hours=h)).astimezone(zone).hour] * 6900.0, 1)
                    for h in range(72)],
            source="factories: FlexiHome per-unit load x 6.9 kVA",
        )
    slot = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 15)
    window_start = first_peak_slot(tariff.periods, slot + timedelta(hours=1), zone)
    window_end = window_start + timedelta(hours=13)
    devices = {}
    for serial, dtype, profile in (("WM-1", DeviceType.WASHING_MACHINE, washer_profile()),
                                   ("DW-1", DeviceType.DISHWASHER, DISHWASHER_PROFILE)):
        device = Device.objects.create(home=home, hub=hub_obj, serial_number=serial, name=dtype.label,
                                       device_type=dtype, automatic_management=automatic, parameters={})
        cycle = Cycle(device=device, sequence_id=f"{serial}-1", program="standard", earliest_start=window_start,
                      latest_end=window_end, scheduled_start=window_start, power_profile=profile)
        cycle.full_clean()
        cycle.save()
        devices[serial] = device
    ev = Device(home=home, hub=hub_obj, serial_number="EVC-1", name="EV charger", device_type=DeviceType.EV_CHARGER,
                automatic_management=automatic, parameters={"max_power_kw": 7.4})
    ev.full_clean()
    ev.save()
    EVSession.objects.create(device=ev, arrival=slot + timedelta(hours=2), departure=slot + timedelta(hours=12),
                             energy_kwh=ev_energy_kwh, vehicle_name="Car")
    devices["EVC-1"] = ev
    return home


def first_peak_slot(periods: list[dict], after: datetime, zone) -> datetime:
    """The first 15-minute slot from `after` whose tariff price is the day's highest."""
    top = max(float(p["price_eur_per_kwh"]) for p in periods)
    at = after
    while price_at(periods, at.astimezone(zone)) < top:
        at += timedelta(minutes=15)
    return at


def restore_default_tariffs() -> None:
    """The built-in tariffs as their data migration wrote them: a transactional test's flush removes them."""
    from devices.models import Tariff
    from devices.tariffs import DEFAULT_TARIFFS, TARIFF_SOURCE

    for t in DEFAULT_TARIFFS:
        Tariff.objects.update_or_create(code=t["code"], defaults={**t, "source": TARIFF_SOURCE})
