"""Statistics from telemetry and stored plans: energy, cost, CO2, self-consumption, savings."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from devices.models import Measurement
from devices.services import record_measurements
from flexibility.planning.models import RunStatus
from devices.telemetry import slot_energy
from insights.selectors import Period, combine_buckets, home_series, home_statistics, portfolio_statistics

from .conftest import DAY, OFF_PEAK, at, co2_day, meter, price_at_hour, stored_plan

pytestmark = pytest.mark.django_db


def test_slot_energy_averages_each_home_then_sums_import_and_export(winter_home, other_home, pv):
    record_measurements([
        Measurement(home=winter_home, time=at(DAY, 2, 0), power_w=1000.0),
        Measurement(home=winter_home, time=at(DAY, 2, 5), power_w=3000.0),  # slot 8 averages 2 kW: 0.5 kWh
        Measurement(home=other_home, time=at(DAY, 2, 10), power_w=-2000.0),  # exports 0.5 kWh in the same slot
        Measurement(home=winter_home, time=at(DAY, 2, 15), power_w=400.0),  # the boundary belongs to slot 9
        Measurement(home=winter_home, device=pv, time=at(DAY, 2, 0), power_w=-900.0),  # a device, not the meter
        Measurement(home=winter_home, time=at(DAY, 0, 0) - timedelta(seconds=1), power_w=5000.0),  # before start
        Measurement(home=winter_home, time=at(DAY, 3, 0), power_w=None),  # no power: no data
    ])
    got = slot_energy([winter_home.pk, other_home.pk], at(DAY, 0), 96)
    assert got.import_kwh[8] == pytest.approx(0.5) and got.export_kwh[8] == pytest.approx(0.5)
    assert got.reporting[8] == 2
    assert got.import_kwh[9] == pytest.approx(0.1) and got.reporting[9] == 1
    assert sum(got.reporting) == 3 and got.import_kwh[0] == 0.0 and got.reporting[12] == 0
    pv_only = slot_energy([winter_home.pk], at(DAY, 0), 96, device_type="pv")
    assert pv_only.export_kwh[8] == pytest.approx(0.225) and sum(pv_only.reporting) == 1


def test_home_day_energy_cost_co2_and_self_consumption(winter_home, pv):
    co2_day(DAY, 200.0)
    meter(winter_home, at(DAY, 2), 4, 2000.0)  # 2 kWh imported off-peak
    meter(winter_home, at(DAY, 12), 4, -1000.0)  # 1 kWh exported
    meter(winter_home, at(DAY, 12), 4, -3000.0, device=pv)  # 3 kWh of PV
    stats = home_statistics(winter_home, "day", DAY, DAY, with_devices=True)
    (day,) = stats["buckets"]
    assert day["period"] == "2026-11-10"
    assert day["import_kwh"] == pytest.approx(2.0) and day["export_kwh"] == pytest.approx(1.0)
    assert day["pv_kwh"] == pytest.approx(3.0) and day["consumption_kwh"] == pytest.approx(4.0)
    assert day["cost_eur"] == pytest.approx(2 * OFF_PEAK, abs=1e-4)  # the tariff pays nothing for export
    assert day["co2_kg"] == pytest.approx(0.4)
    assert day["self_consumption"] == pytest.approx(2 / 3, abs=1e-4)
    assert day["self_sufficiency"] == pytest.approx(0.5)
    assert day["coverage"] == pytest.approx(8 / 96, abs=1e-4)
    assert stats["totals"]["import_kwh"] == pytest.approx(2.0)
    (pv_stats,) = [d for d in stats["devices"] if d["device"] == pv.pk]
    assert pv_stats["totals"]["produced_kwh"] == pytest.approx(3.0) and pv_stats["totals"]["consumed_kwh"] == 0.0


def test_months_and_days_are_local_and_dst_days_have_92_and_100_slots(winter_home):
    spring = Period.of_days("Europe/Lisbon", date(2026, 3, 29), date(2026, 3, 30))
    assert spring.slots == 92 + 96 and spring.slot_day.count(date(2026, 3, 29)) == 92
    autumn = Period.of_days("Europe/Lisbon", date(2026, 10, 25), date(2026, 10, 25))
    assert autumn.slots == 100
    meter(winter_home, at(DAY, 2), 4, 1000.0)
    meter(winter_home, at(date(2026, 12, 1), 2), 4, 3000.0)
    stats = home_statistics(winter_home, "month", DAY, date(2026, 12, 1))
    assert [b["period"] for b in stats["buckets"]] == ["2026-11", "2026-12"]
    assert [b["import_kwh"] for b in stats["buckets"]] == pytest.approx([1.0, 3.0])
    by_day = home_statistics(winter_home, "day", DAY, date(2026, 12, 1))
    assert combine_buckets(by_day["buckets"]) == by_day["totals"]
    assert combine_buckets(by_day["buckets"][-1:])["import_kwh"] == pytest.approx(3.0)
    # In summer Lisbon is UTC+1: a sample at 23:30 UTC on 31 July is 1 August locally.
    summer = at(date(2026, 7, 31), 23, 30)
    meter(winter_home, summer, 1, 4000.0)
    stats = home_statistics(winter_home, "day", date(2026, 7, 31), date(2026, 8, 1))
    assert [b["import_kwh"] for b in stats["buckets"]] == pytest.approx([0.0, 1.0])


def test_planned_and_realized_savings_follow_the_plan_in_force(winter_home):
    # Day-ahead plan made the evening before for the whole day: 0.10 EUR baseline and 0.01 saving per slot.
    stored_plan(winter_home, at(DAY, 0), 96, made=at(DAY, 0) - timedelta(hours=4), baseline_cost_eur=9.6,
                savings_eur=0.96)
    # Re-plan at noon for the rest of the day: 0.05 baseline and 0.02 saving per slot from then on.
    stored_plan(winter_home, at(DAY, 12), 48, made=at(DAY, 12, 5), baseline_cost_eur=2.4, savings_eur=0.96)
    # A failed run's schedule never counts.
    stored_plan(winter_home, at(DAY, 0), 96, made=at(DAY, 1), baseline_cost_eur=100, savings_eur=50,
                status=RunStatus.FAILED)
    meter(winter_home, at(DAY, 0), 96, 1000.0)  # 0.25 kWh in every slot
    measured_cost = sum(0.25 * price_at_hour(t / 4) for t in range(96))
    (day,) = home_statistics(winter_home, "day", DAY, DAY)["buckets"]
    assert day["planned_savings_eur"] == pytest.approx(48 * 0.01 + 48 * 0.02)
    assert day["cost_eur"] == pytest.approx(measured_cost, abs=1e-4)
    assert day["baseline_cost_eur"] == pytest.approx(48 * 0.1 + 48 * 0.05)
    assert day["realized_savings_eur"] == pytest.approx(48 * 0.1 + 48 * 0.05 - measured_cost, abs=1e-4)
    assert day["realized_slots"] == 96


def test_a_plan_counts_only_from_the_slot_it_was_made_in(winter_home):
    stored_plan(winter_home, at(DAY, 0), 96, made=at(DAY, 6, 10), baseline_cost_eur=9.6, savings_eur=0.96)
    (day,) = home_statistics(winter_home, "day", DAY, DAY)["buckets"]
    assert day["planned_savings_eur"] == pytest.approx((96 - 24) * 0.01)


def test_portfolio_realized_savings_only_where_every_home_reported(winter_home, make_home, user):
    from flexibility.grid.models import Portfolio

    second = make_home(user, name="Second", timezone="Europe/Lisbon", tariff=winter_home.tariff,
                       tariff_kind="tri_hourly")
    portfolio = Portfolio.objects.create(code="p-stats", name="Stats")
    portfolio.homes.set([winter_home, second])
    for h in (winter_home, second):
        stored_plan(h, at(DAY, 0), 96, made=at(DAY, 0) - timedelta(hours=4), baseline_cost_eur=9.6, savings_eur=0.96)
    meter(winter_home, at(DAY, 0), 96, 1000.0)
    meter(second, at(DAY, 0), 48, 2000.0)  # the second home's meter goes quiet at noon
    stats = portfolio_statistics(portfolio, "day", DAY, DAY)
    (day,) = stats["buckets"]
    assert stats["homes"] == 2 and stats["timezone"] == "Europe/Lisbon"
    assert day["import_kwh"] == pytest.approx(24 + 24)
    assert day["planned_savings_eur"] == pytest.approx(2 * 0.96)
    assert day["realized_slots"] == 48
    morning_cost = sum((0.25 + 0.5) * price_at_hour(t / 4) for t in range(48))
    assert day["realized_savings_eur"] == pytest.approx(48 * 0.2 - morning_cost, abs=1e-4)


def test_series_puts_forecast_beside_measured(winter_home):
    co2_day(DAY, 150.0)
    stored_plan(winter_home, at(DAY, 0), 96, made=at(DAY, 0) - timedelta(hours=1), baseline_cost_eur=1,
                savings_eur=0.1, net_import_kw=[round(0.01 * t, 2) for t in range(96)])
    meter(winter_home, at(DAY, 10), 2, 1500.0)
    series = home_series(winter_home, DAY)
    rows = series["slots"]
    assert len(rows) == 96 and rows[0]["start"] == "2026-11-10T00:00:00+00:00"
    assert rows[40]["measured_net_import_kw"] == pytest.approx(1.5) and rows[40]["planned_net_import_kw"] == 0.4
    assert rows[42]["measured_net_import_kw"] is None and rows[42]["planned_net_import_kw"] == 0.42
    assert rows[40]["co2_g_per_kwh"] == 150.0 and rows[8]["import_price_eur_per_kwh"] == OFF_PEAK
