"""The random household generator, and both backends and the portfolio on the homes it draws."""
from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from flexibility.optimizer import Status, problem_from_dict, solve
from flexibility.optimizer.compile import compile_problem
from flexibility.optimizer.explain import precheck
from tests.factories.random_homes import CLASSES, random_home, random_homes, strip_meta

from .checker import check
from .test_backends import agree


def test_generator_is_seeded_and_covers_its_classes():
    assert random_home(7) == random_home(7)
    assert random_home(7) != random_home(8)
    homes = random_homes(300)
    assert Counter(name.rsplit("-", 1)[0] for name, _ in homes) == {c: 50 for c in CLASSES}
    many = [d for name, d in homes if name.startswith("many_cycles_4k6")]
    assert all(len(d["cycles"]) == 8 and d["site"]["import_limit_kw"] == 4.6 for d in many)
    res = Counter(d["resolution_min"] for _, d in homes)
    assert set(res) == {5, 15, 60}
    assert {92, 100} <= {d["slots"] for _, d in homes if d["resolution_min"] == 15}  # DST days
    assert any(min(d["site"]["import_price_eur_per_kwh"]) < 0 for _, d in homes)
    assert {d["objective"]["kind"] for _, d in homes} == {"economic", "ecologic", "mixed"}
    evs = [e for _, d in homes for e in d["ev_sessions"]]
    assert {e.get("phases") for e in evs} == {1, 3}
    assert any(e.get("current_steps_a") for e in evs) and any(e.get("min_power_kw", 0) > 0 for e in evs)
    assert any(not e.get("current_steps_a") and not e.get("min_power_kw") for e in evs)
    assert any("co2_g_per_kwh" not in d["site"] for _, d in homes)


def test_generated_homes_parse_and_pass_the_prechecks():
    for name, d in random_homes(300):
        cp = compile_problem(problem_from_dict(d))
        assert not precheck(cp), (name, [v.message for v in precheck(cp)])


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.integers(0, 10 ** 6), st.sampled_from(CLASSES))
def test_backends_and_portfolio_agree_on_generated_homes(seed, kind):
    d = strip_meta(random_home(seed, kind))
    assume(d["slots"] <= 100)  # keeps the suite's optimizer part within minutes
    p = problem_from_dict(d)
    out = {b: solve(p, backend=b, time_limit_s=10) for b in ("milp", "cpsat", "auto")}
    assume(all(r.status != Status.INFEASIBLE for r in out.values()))
    for b, r in out.items():
        if r.schedule is None:  # a single backend may find nothing in 10 s on a hard home
            assert b != "auto" or all(x.schedule is None for x in out.values()), r.stats.detail.get("portfolio")
            continue
        cost, errs = check(d, r.to_dict())
        assert not errs, (b, errs[:5])
        assert abs(cost - r.cost_eur) <= 1e-3 * max(1.0, abs(cost)), (b, cost, r.cost_eur)
    m, c, a = (out[b] for b in ("milp", "cpsat", "auto"))
    if m.status == c.status == Status.OPTIMAL:
        assert agree(m.objective_value, c.objective_value), (m.objective_value, c.objective_value)
    singles = [r.objective_value for r in (m, c) if r.status == Status.OPTIMAL]
    if a.status == Status.OPTIMAL and singles:
        assert agree(a.objective_value, min(singles)) or a.objective_value < min(singles)
    elif a.schedule is not None:  # out of time: the best plan either backend found in its share, with its gap
        assert a.stats.gap is not None and a.stats.gap >= 0
        assert a.objective_value <= min(x["objective"] for x in a.stats.detail["portfolio"]
                                        if x["objective"] is not None) + 1e-5 * max(1.0, abs(a.objective_value))


def test_an_appliances_cycles_fit_one_after_another():
    """Two cycles of one appliance never overlap: the generator leaves room for all of them on the slot
    grid (`many_cycles_4k6-281` had two 3-slot washes in a 5-slot window and was infeasible)."""
    from tests.factories.random_homes import _one_after_another

    for name, d in random_homes(300):
        cp = compile_problem(problem_from_dict(d))
        by_device: dict[str, list[tuple[list[int], int]]] = {}
        for m in cp.cycles:
            if not m.fixed:
                by_device.setdefault(m.cycle.device, []).append((
                    [o.first_slot for o in m.options], m.options[0].occupied[1] - m.options[0].occupied[0]))
        for dev, windows in by_device.items():
            assert _one_after_another(windows), (name, dev)
    d = strip_meta(random_home(281, "many_cycles_4k6"))
    assert solve(problem_from_dict(d), backend="milp", time_limit_s=10).status == Status.OPTIMAL


def test_bench_solves_held_out_homes_from_a_first_seed(capsys):
    """`--first-seed` measures on homes no backend rule was tuned on: their names carry their seeds, and they have
    no best known plan to compare with."""
    import json

    from bench.optimizer import main

    assert main(["--random", "2", "--first-seed", "300", "--per-home", "--json", "--time-limit", "5"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    homes = [x for x in lines if "home" in x]
    assert [x["home"] for x in homes] == [f"{CLASSES[300 % len(CLASSES)]}-300", f"{CLASSES[301 % len(CLASSES)]}-301"]
    assert all(x["gap_to_best"] is None and x["status"] == "OPTIMAL" for x in homes)
    total = next(x for x in lines if x.get("class") == "all")
    assert total["first_seed"] == 300 and total["homes"] == 2 and total["without_best_known"] == 2
    # the machine's speed around the run, so that runs on other machines (or at other loads) can be compared
    assert 0 < total["reference_ms_before"] < 5000 and 0 < total["reference_ms_after"] < 5000
