"""Model invariants and write services: validation, transactions, signals replacement, bulk telemetry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from devices import services
from devices.signals import home_plan_stale
from devices.models import Cycle, Measurement, SignalSeries, Tariff
from devices.tariffs import DEFAULT_TARIFFS, price_series

pytestmark = pytest.mark.django_db


def test_default_tariffs_exist_and_tile_each_day():
    for t in DEFAULT_TARIFFS:
        tariff = Tariff.objects.get(code=t["code"])
        tariff.full_clean()
        assert "ERSE" in tariff.source


def test_tariff_series_on_a_dst_day_has_92_slots_priced_in_local_time():
    # 2026-03-29: Europe/Lisbon springs forward at 01:00 local -> 23 h day.
    start = datetime(2026, 3, 29, 0, 0, tzinfo=dt_timezone.utc)
    periods = Tariff.objects.get(code="pt-tri-hourly-daily").periods
    prices = price_series(periods, start, 92, 15, "Europe/Lisbon")
    # 08:00 local (WEST, UTC+1) is 07:00 UTC = slot 28: mid price starts there
    assert prices[27] == 0.1044 and prices[28] == 0.1696


def test_naive_times_rejected_by_the_model(washing_machine):
    cycle = Cycle(device=washing_machine, sequence_id="n", earliest_start=datetime(2026, 1, 1, 8),
                  latest_end=datetime(2026, 1, 1, 18), power_profile=[{"duration_min": 10, "max_power_w": 10}])
    with pytest.raises(ValidationError) as exc:
        cycle.full_clean()
    assert "earliest_start" in exc.value.message_dict


def test_profile_longer_than_window(washing_machine, slot_start):
    with pytest.raises(ValidationError) as exc:
        services.cycle_save(Cycle(device=washing_machine), {
            "earliest_start": slot_start, "latest_end": slot_start + timedelta(minutes=30),
            "power_profile": [{"duration_min": 20, "max_power_w": 10}, {"duration_min": 20, "max_power_w": 10}]})
    assert set(exc.value.message_dict) == {"power_profile"}
    assert Cycle.objects.count() == 0


def test_service_failure_inside_outer_transaction_leaves_nothing(home, slot_start):
    with pytest.raises(ValidationError):
        with transaction.atomic():
            services.replace_signal("load_forecast", slot_start, 15, [1.0] * 4, home=home)
            services.replace_signal("load_forecast", slot_start, 15, [-1.0] * 4, home=home)
    assert SignalSeries.objects.count() == 0


def test_replace_signal_replaces_overlap_of_same_scope_only(home, other_home, slot_start):
    first = services.replace_signal("import_price", slot_start, 15, [0.1] * 96, area="PT")
    keep_area = services.replace_signal("import_price", slot_start, 15, [0.2] * 96, area="ES")
    keep_home = services.replace_signal("import_price", slot_start, 15, [0.3] * 96, home=home)
    keep_later = services.replace_signal("import_price", slot_start + timedelta(days=1), 15, [0.4] * 96, area="PT")
    second = services.replace_signal("import_price", slot_start + timedelta(hours=12), 15, [0.5] * 24, area="PT")
    remaining = set(SignalSeries.objects.values_list("pk", flat=True))
    assert first.pk not in remaining
    assert {keep_area.pk, keep_home.pk, keep_later.pk, second.pk} == remaining
    assert second.unit == "EUR/kWh" and second.end == slot_start + timedelta(hours=18)


@pytest.mark.parametrize("kwargs, bad", [
    ({"kind": "load_forecast", "area": "PT"}, "home"),
    ({"kind": "import_price"}, "area"),
    ({"kind": "import_price", "area": "PT", "values": []}, "values"),
    ({"kind": "co2_intensity", "area": "PT", "values": [1, -2]}, "values"),
    ({"kind": "import_price", "area": "PT", "values": [1, "x"]}, "values"),
    ({"kind": "import_price", "area": "PT", "start_shift": timedelta(minutes=7)}, "start"),
    ({"kind": "import_price", "area": "PT", "resolution_minutes": 7}, "resolution_minutes"),
])
def test_replace_signal_validation(slot_start, kwargs, bad):
    kind = kwargs.pop("kind")
    start = slot_start + kwargs.pop("start_shift", timedelta(0))
    values = kwargs.pop("values", [0.1] * 4)
    res = kwargs.pop("resolution_minutes", 15)
    with pytest.raises(ValidationError) as exc:
        services.replace_signal(kind, start, res, values, **kwargs)
    assert bad in exc.value.message_dict


def test_record_measurements_bulk_and_rejects_naive(home, battery, slot_start):
    rows = [{"home_id": home.pk, "device_id": battery.pk, "time": slot_start + timedelta(seconds=i), "soc_pct": 50.0}
            for i in range(5000)]
    assert services.record_measurements(rows) == 5000
    assert Measurement.objects.filter(device=battery).count() == 5000
    with pytest.raises(ValidationError):
        services.record_measurements([{"home": home, "time": datetime(2026, 1, 1), "power_w": 1.0}])
    assert Measurement.objects.count() == 5000


def test_hub_claim_conflict_does_not_move_the_hub(home, other_home, make_hub):
    from energy_manager.errors import Conflict

    hub = make_hub(home=home)
    with pytest.raises(Conflict):
        services.hub_claim(hub_id=hub.hub_id, home=other_home)
    hub.refresh_from_db()
    assert hub.home_id == home.pk


def test_reoptimization_requested_after_commit(washing_machine, slot_start, monkeypatch, django_capture_on_commit_callbacks):
    calls = []

    def record(sender, home_id, reason, **kwargs):
        calls.append((home_id, reason))

    monkeypatch.setattr(home_plan_stale, "receivers", [])  # only this test's receiver
    monkeypatch.setattr(home_plan_stale, "sender_receivers_cache", {})
    home_plan_stale.connect(record, weak=False)
    with django_capture_on_commit_callbacks(execute=True):
        cycle = services.cycle_save(Cycle(device=washing_machine), {
            "earliest_start": slot_start, "latest_end": slot_start + timedelta(hours=4),
            "power_profile": [{"duration_min": 60, "max_power_w": 1000}]})
    assert calls == [(washing_machine.home_id, "cycle_created")]
    with django_capture_on_commit_callbacks(execute=True):
        services.cycle_save(cycle, {"program": "quick"})
    assert calls[-1] == (washing_machine.home_id, "cycle_changed")
