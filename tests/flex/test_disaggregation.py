"""The portfolio split: meets the request, stays inside envelopes, and costs no more than an LP."""
from __future__ import annotations

import pulp
import pytest
from hypothesis import given, settings, strategies as st

from flexibility.grid.disaggregation import BeyondOffer, HomeEnvelope, disaggregate, merit_order


def env(base, lo, hi, up, down) -> HomeEnvelope:
    return HomeEnvelope([base], [lo], [hi], [up], [down])


def lp_cost(request_kw: float, envelopes: dict) -> float:
    prob = pulp.LpProblem("split", pulp.LpMinimize)
    up = {k: pulp.LpVariable(f"u{k}", 0, e.max_kw[0] - e.baseline_kw[0]) for k, e in envelopes.items()}
    dn = {k: pulp.LpVariable(f"d{k}", 0, e.baseline_kw[0] - e.min_kw[0]) for k, e in envelopes.items()}
    prob += pulp.lpSum(e.price_up_eur_per_kw[0] * up[k] + e.price_down_eur_per_kw[0] * dn[k] for k, e in envelopes.items())
    prob += pulp.lpSum(e.baseline_kw[0] + up[k] - dn[k] for k, e in envelopes.items()) == request_kw
    assert prob.solve(pulp.HiGHS(msg=False)) == pulp.LpStatusOptimal
    return pulp.value(prob.objective)


def test_cheapest_homes_move_first():
    envelopes = {"a": env(1.0, 0.0, 3.0, 0.10, 0.05), "b": env(1.0, 0.5, 2.0, 0.02, 0.20)}
    split = disaggregate([3.5], [3.5], envelopes)
    assert split.shares["b"].target_kw == [2.0]  # cheapest upward kW used up first
    assert split.shares["a"].target_kw == pytest.approx([1.5])
    assert split.cost_eur == pytest.approx(0.02 * 1.0 + 0.10 * 0.5)
    down = disaggregate([0.8], [0.8], envelopes)
    assert down.shares["a"].target_kw == pytest.approx([0.0])  # a is cheaper to lower
    assert down.shares["b"].target_kw == pytest.approx([0.8])


def test_free_slots_are_left_alone_and_bounds_keep_the_total():
    envelopes = {
        "a": HomeEnvelope([1, 1], [0, 0], [3, 3], [0.1, 0.1], [0.1, 0.1]),
        "b": HomeEnvelope([2, 2], [1, 1], [2, 2], [0.1, 0.1], [0.3, 0.3]),
    }
    split = disaggregate([None, None], [None, 2.5], envelopes)
    assert split.shares["a"].target_kw[0] is None and split.shares["a"].max_kw[0] is None
    assert split.total_kw[1] == pytest.approx(2.5)
    assert sum(s.max_kw[1] for s in split.shares.values()) <= 2.5 + 1e-9
    assert all(s.min_kw[1] is None for s in split.shares.values())


def test_beyond_offer_names_the_slots_and_the_maximum():
    envelopes = {"a": HomeEnvelope([1, 1], [0, 0], [3, 2], [0, 0], [0, 0])}
    with pytest.raises(BeyondOffer) as err:
        disaggregate([2.5, 2.5], [2.5, 2.5], envelopes)
    assert err.value.slots == [1]
    assert err.value.available_max_kw == [3, 2]


def test_merit_order_curve_is_cumulative_and_sorted():
    envelopes = {"a": env(1.0, 0.0, 3.0, 0.10, 0.05), "b": env(1.0, 0.5, 2.0, 0.02, 0.20)}
    curve = merit_order(envelopes, 0)
    assert curve["up"] == [{"price_eur_per_kw": 0.02, "cumulative_kw": 1.0}, {"price_eur_per_kw": 0.10, "cumulative_kw": 3.0}]
    assert [s["cumulative_kw"] for s in curve["down"]] == [1.0, 1.5]


home = st.tuples(
    st.floats(-3, 5), st.floats(0, 4), st.floats(0, 4), st.floats(0, 1), st.floats(0, 1)
).map(lambda v: env(v[0], v[0] - v[1], v[0] + v[2], v[3], v[4]))


@settings(max_examples=60, deadline=None)
@given(st.lists(home, min_size=1, max_size=6), st.floats(0, 1), st.booleans())
def test_split_meets_request_within_envelopes_at_lp_cost(homes, where, setpoint):
    envelopes = {i: h for i, h in enumerate(homes)}
    lo = sum(h.min_kw[0] for h in homes)
    hi = sum(h.max_kw[0] for h in homes)
    request = lo + where * (hi - lo)
    req_min, req_max = ([request], [request]) if setpoint else ([request], [None])
    split = disaggregate(req_min, req_max, envelopes)
    total = sum(s.target_kw[0] for s in split.shares.values())
    for k, s in split.shares.items():
        assert envelopes[k].min_kw[0] - 1e-9 <= s.target_kw[0] <= envelopes[k].max_kw[0] + 1e-9
        assert envelopes[k].min_kw[0] - 1e-9 <= s.min_kw[0] <= s.target_kw[0] + 1e-9
    assert sum(s.min_kw[0] for s in split.shares.values()) >= request - 1e-6
    if setpoint:
        assert total == pytest.approx(request, abs=1e-6)
        assert split.cost_eur == pytest.approx(lp_cost(request, envelopes), abs=1e-6)
    else:
        assert total >= request - 1e-6
