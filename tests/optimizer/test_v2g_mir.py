"""The MIR cut on the energy of a V2G car with current steps (milp_model._separate_v2g_step_mir): checked against
every integer plan of small homes (README "V2G cars with steps: the MIR cut")."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flexibility.optimizer import problem_from_dict
from flexibility.optimizer.backends.linear import INF
from flexibility.optimizer.backends.milp_model import MilpModel
from flexibility.optimizer.compile import compile_problem

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def _v2g_home(base_kw: list[float], prices: list[float], energy_kwh: float, steps_a: list[int]) -> dict:
    """A V2G car with current steps plugged in all horizon long (hours), discharging only for the home."""
    iso = lambda m: (START + timedelta(minutes=m)).isoformat()  # noqa: E731
    n = len(base_kw)
    ev = {"id": "ev", "device": "EVC", "name": "Car", "arrival": iso(0), "departure": iso(n * 60), "phases": 1,
          "voltage_v": 230, "efficiency": 0.93, "energy_kwh": energy_kwh, "max_power_kw": 3.7,
          "current_steps_a": steps_a, "capacity_kwh": 20.0, "initial_soc_pct": 30.0, "min_soc_pct": 20.0,
          "max_discharge_kw": 3.68, "discharge_efficiency": 0.9, "export_allowed": False}
    return {"version": 1, "start": START.isoformat(), "resolution_min": 60, "slots": n, "timezone": "UTC",
            "objective": {"kind": "economic"},
            "site": {"import_limit_kw": 11.0, "export_limit_kw": 3.0, "import_price_eur_per_kwh": prices,
                     "base_load_kw": base_kw},
            "ev_sessions": [ev]}


def _least_slack(d: dict, strength: float) -> tuple[int, float]:
    """(number of cuts, least value of cut row - its bound over every integer plan of the home), each cut's bound
    raised by `strength` x |bound|. Every choice of step per slot is fixed in turn and the cut's row minimised
    over the LP of the rest (the cuts themselves left out), so a negative value is a plan the cut removes."""
    cp = compile_problem(problem_from_dict(d))
    mm = MilpModel(cp)
    m = mm.m
    h = m.to_highs(10.0, relax=True)
    h.setOptionValue("output_flag", False)
    for r in mm.v2g_mir_rows:
        h.changeRowBounds(r, -INF, INF)
    slots = mm.ev_steps["ev"]
    least = INF
    for r in mm.v2g_mir_rows:
        a, b = m.row_start[r], m.row_start[r + 1]
        h.changeColsCost(m.num_cols, list(range(m.num_cols)), [0.0] * m.num_cols)
        for j, v in zip(m.row_idx[a:b], m.row_val[a:b]):
            h.changeColCost(j, v)
        lo = m.row_lo[r] + strength * abs(m.row_lo[r])
        for choice in itertools.product(range(len(slots[0][1]) + 1), repeat=len(slots)):
            for (_t, terms), k in zip(slots, choice):
                for i, (j, _kw) in enumerate(terms):
                    on = float(i + 1 == k)
                    h.changeColBounds(j, on, on)
            h.run()
            if h.getModelStatus().name == "kOptimal":
                least = min(least, h.getInfo().objective_function_value - lo)
    return len(mm.v2g_mir_rows), least


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([0.3, 0.7, 1.3, 2.2]), min_size=5, max_size=5),
       st.lists(st.sampled_from([0.08, 0.12, 0.3, 0.45]), min_size=5, max_size=5), st.floats(3.0, 7.0))
@example([0.7, 0.3, 1.3, 0.3, 2.2], [0.45, 0.45, 0.45, 0.12, 0.08], 4.6)
def test_v2g_step_mir_keeps_every_integer_plan(base_kw, prices, energy_kwh):
    """No cut removes an integer plan; raised by 1 % of its bound, one does (the cut is tight, not just valid)."""
    d = _v2g_home(base_kw, prices, energy_kwh, [6, 10, 16])
    cuts, least = _least_slack(d, 0.0)
    assert least >= -1e-6, least
    if cuts:
        assert _least_slack(d, 0.01)[1] < -1e-6


def test_v2g_step_mir_cuts_a_small_home():
    """The example above gets a cut (so the test above checks one)."""
    d = _v2g_home([0.7, 0.3, 1.3, 0.3, 2.2], [0.45, 0.45, 0.45, 0.12, 0.08], 4.6, [6, 10, 16])
    assert _least_slack(d, 0.0)[0] >= 1
