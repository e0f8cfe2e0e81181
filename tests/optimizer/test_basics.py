"""Package shape, parsing errors, DST grids, evaluator and baseline."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.factories.problems import HOMES, Day, standard_home
from flexibility.optimizer import ProblemError, Status, TimeGrid, baseline, problem_from_dict, solve

from .checker import check

ROOT = Path(__file__).resolve().parents[2]


def test_package_imports_without_django():
    code = ("import sys, flexibility.optimizer as o, flexibility.optimizer.backends.milp, "
            "flexibility.optimizer.backends.milp_search, flexibility.optimizer.backends.cpsat, flexibility.optimizer.envelope_solver, flexibility.optimizer.__main__; "
            "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("start"), "start"),
    (lambda d: d.update(start="2026-11-24T00:00:00"), "start"),
    (lambda d: d.update(resolution_min=7), "resolution_min"),
    (lambda d: d.update(slots=72 * 4 + 1), "slots"),
    (lambda d: d["site"].update(import_price_eur_per_kwh=[0.1] * 3), "site.import_price_eur_per_kwh"),
    (lambda d: d["site"]["base_load_kw"].__setitem__(5, "x"), "site.base_load_kw[5]"),
    (lambda d: d["cycles"][2].update(latest_end=d["cycles"][2]["earliest_start"]), "cycles[2].latest_end"),
    (lambda d: d["cycles"][1]["phases"][0].pop("power_w"), "cycles[1].phases[0].power_w"),
    (lambda d: d["ev_sessions"][0].update(min_power_kw=9.0), "ev_sessions[0].min_power_kw"),
    (lambda d: d["batteries"][0].update(initial_soc_pct=140), "batteries[0].initial_soc_pct"),
    (lambda d: d["cycles"][3].update(id="wm-antistain"), "cycles[3].id"),
    (lambda d: d["objective"].update(kind="cheap"), "objective.kind"),
])
def test_bad_fields_name_the_field(mutate, field):
    d = standard_home()
    mutate(d)
    with pytest.raises(ProblemError) as exc:
        problem_from_dict(d)
    assert str(exc.value).startswith(field + ":"), str(exc.value)


def test_json_roundtrip_and_phase_order():
    from flexibility.optimizer import problem_to_dict

    p = problem_from_dict(standard_home())
    assert problem_from_dict(json.loads(json.dumps(problem_to_dict(p)))) == p
    # reference phases are listed out of order; `order` puts the 4-minute 400 W fill first
    from tests.factories.reference import reference
    ref = reference()["appliance_cycles"]["Hotpoint_FabricCare_WPR4LLLG8NWD4/WashCycleAntiStain-13"]
    raw = {"id": "x", "phases": ref["phases"]}
    d = standard_home()
    d["cycles"][0].update(phases=raw["phases"])
    q = problem_from_dict(d)
    assert [ph.duration_min for ph in q.cycles[0].phases] == [4.0, 47.0, 21.0, 3.0]


@pytest.mark.parametrize("day, slots", [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (date(2026, 11, 24), 96)])
def test_dst_days(day, slots):
    g = TimeGrid.for_local_day(day, "Europe/Lisbon", 15)
    assert g.slots == slots
    d = standard_home(day)
    assert d["slots"] == slots
    p = problem_from_dict(d)
    r = solve(p, backend="milp", time_limit_s=10)
    assert r.status in (Status.OPTIMAL, Status.FEASIBLE)
    cost, errs = check(d, r.to_dict())
    assert not errs, errs[:5]
    assert abs(cost - r.cost_eur) < 1e-3
    # the 07:30 departure is a local wall-clock time: count its slots from local midnight
    dep = p.ev_sessions[0].departure
    assert p.grid.offset_min(dep) == 450 + {92: -60, 96: 0, 100: 60}[slots]
    # prices follow local time: 22:00 local is the cheap tariff on every day
    day_ = Day(day, 15)
    t22 = next(t for t in range(slots) if day_.instant(t).hour == 22)
    assert d["site"]["import_price_eur_per_kwh"][t22] == 0.1044


def test_evaluator_baseline_and_checker_agree():
    for name in ("standard", "thermal", "many_cycles"):
        d = HOMES[name]()
        p = problem_from_dict(d)
        bl = baseline(p)
        assert bl.cost_eur > 0
        r = solve(p, backend="auto", time_limit_s=10)
        cost, errs = check(d, r.to_dict())
        assert not errs, (name, errs[:5])
        assert abs(cost - r.cost_eur) <= 1e-3, name
        assert r.cost_eur <= bl.cost_eur + 1e-6
        assert r.to_dict()["savings_eur"] == pytest.approx(bl.cost_eur - r.cost_eur, abs=1e-5)
