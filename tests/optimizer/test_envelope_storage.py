"""The envelope's dynamic-programming path (lossless one-battery homes) against the LP re-solves it replaces."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from flexibility.optimizer import Status, envelope, problem_from_dict, solve
from tests.factories.random_homes import random_home, strip_meta

from tests.factories.problems import battery_only_home


def _lossless_battery_home(seed: int, keep_extras: bool) -> dict:
    """A random battery home reduced to the DP path's class: no cycles, no curtailable PV, efficiency 1
    (with `keep_extras`, the generator's taper, cycle cap and capacity tariff stay: the LP path's class)."""
    d = strip_meta(random_home(seed, "battery"))
    d["cycles"] = []
    d.pop("circuits", None)  # they may name the cycles' appliances
    for pv in d["pv"]:
        pv["curtailable"] = False
    for b in d["batteries"]:
        b["charge_efficiency"] = b["discharge_efficiency"] = 1.0
        if not keep_extras:
            for k in ("charge_taper_above_soc_pct", "charge_kw_at_full", "discharge_taper_below_soc_pct",
                      "discharge_kw_at_empty", "max_cycles_per_day"):
                b.pop(k, None)
    if not keep_extras:
        d.pop("capacity_charges", None)
    return d


def _same(fast, ref) -> None:
    """Equal limits within 1 W and holding costs within 1e-6 EUR."""
    assert len(fast.slots) == len(ref.slots)
    for t, (f, r) in enumerate(zip(fast.slots, ref.slots)):
        assert f.baseline_kw == r.baseline_kw
        assert abs(f.max_kw - r.max_kw) <= 1e-3 + 1e-9 and abs(f.min_kw - r.min_kw) <= 1e-3 + 1e-9, (t, f, r)
        assert abs(f.cost_max_eur - r.cost_max_eur) <= 1e-6 and abs(f.cost_min_eur - r.cost_min_eur) <= 1e-6, (t, f, r)
    assert fast.status == ref.status and fast.plan_cost_eur == ref.plan_cost_eur


def _same_or_better(d: dict, plan, fast, ref) -> int:
    """Each slot's limits as the LP path's (within 1 W) or wider, and its holding costs equal (within 1e-6 EUR).
    With an ecologic objective the energy cost is not what either path minimises: each reports the energy
    cost of one of many equally green solutions (the LP path whichever HiGHS lands on, the DP path the
    cheapest), so only the limits are compared. A limit the LP path did not reach is pinned by a grid
    request and solved: reachable, at the cost the DP path says.
    Returns how many limits were wider."""
    assert len(fast.slots) == len(ref.slots)
    assert fast.status == ref.status and fast.plan_cost_eur == ref.plan_cost_eur
    ecologic = d["objective"]["kind"] == "ecologic"
    wider = 0
    for t, (f, r) in enumerate(zip(fast.slots, ref.slots)):
        assert f.baseline_kw == r.baseline_kw
        for side, fk, rk, fc, rc in (("max", f.max_kw, r.max_kw, f.cost_max_eur, r.cost_max_eur),
                                     ("min", f.min_kw, r.min_kw, f.cost_min_eur, r.cost_min_eur)):
            if abs(fk - rk) <= 1e-3 + 1e-9:
                assert ecologic or abs(fc - rc) <= 1e-6, (t, side, f, r)
                continue
            wider += 1
            assert (fk > rk) if side == "max" else (fk < rk), (t, side, f, r)
            q = json.loads(json.dumps(d))
            pin = [None] * d["slots"]
            pin[t] = fk
            q["grid_request"] = {"min_net_import_kw": pin, "max_net_import_kw": list(pin)}
            held = solve(problem_from_dict(q), backend="milp", time_limit_s=20)
            assert held.status == Status.OPTIMAL, (t, side, fk, held.explanation)
            assert abs(held.evaluation.net_import_kw[t] - fk) < 2e-3
            if not ecologic:
                assert abs(held.cost_eur - plan.cost_eur - fc) <= 1e-5, (t, side, held.cost_eur - plan.cost_eur, fc)
    return wider


@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.integers(0, 10 ** 6), st.booleans())
@example(187, False)  # a DST day where one LP re-solve misses a slot's upper limit (4.69 kW, reachable)
@example(31, False)  # ecologic: the LP path's energy costs depend on which equally green solution HiGHS finds
def test_storage_path_equals_the_lp_path_on_random_battery_homes(seed, keep_extras):
    d = _lossless_battery_home(seed, keep_extras)
    assume(d["slots"] <= 100)  # the LP reference re-solves twice per slot
    p = problem_from_dict(d)
    plan = solve(p, backend="milp", time_limit_s=20)
    assume(plan.status == Status.OPTIMAL)
    fast = envelope(p, plan=plan)
    ref = envelope(p, plan=plan, method="lp")
    assert ref.stats["method"] == "lp" and ref.stats["lp_solves"] >= 2 * len(ref.slots)
    _same_or_better(d, plan, fast, ref)
    if fast.stats["method"] == "storage_dp":
        assert fast.stats["lp_solves"] == 0


def test_storage_path_is_taken_for_a_lossless_battery_and_not_for_a_lossy_one():
    d = battery_only_home()
    d["batteries"][0]["charge_efficiency"] = d["batteries"][0]["discharge_efficiency"] = 1.0
    p = problem_from_dict(d)
    plan = solve(p, backend="milp", time_limit_s=20)
    fast = envelope(p, plan=plan)
    assert fast.stats["method"] == "storage_dp" and fast.stats["lp_solves"] == 0
    _same(fast, envelope(p, plan=plan, method="lp"))
    d["batteries"][0]["charge_efficiency"] = 0.95
    lossy = envelope(problem_from_dict(d))
    assert lossy.stats["method"] == "lp" and lossy.stats["lp_solves"] > 0
