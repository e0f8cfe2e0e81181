"""Input checks of the JSON contract: unknown keys, optional fields, units."""
from __future__ import annotations

import json

import pytest

from flexibility.optimizer import ProblemError, Status, problem_from_dict, problem_to_dict, solve
from tests.factories.problems import battery_only_home, standard_home
from tests.factories.random_homes import random_home, strip_meta


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(batterys=d.pop("batteries")), "batterys: unknown field, did you mean batteries"),
    (lambda d: d["cycles"][0]["phases"][1].update(power_kw=d["cycles"][0]["phases"][1].pop("power_w") / 1000),
     "cycles[0].phases[1].power_kw: unknown field, did you mean power_w"),
    (lambda d: d["site"].update(import_limit=6.9), "site.import_limit: unknown field, did you mean import_limit_kw"),
    (lambda d: d["ev_sessions"][0].update(comment="x"), "ev_sessions[0].comment: unknown field"),
    (lambda d: d["objective"].update(weight=0.5), "objective.weight: unknown field"),
    (lambda d: d.update(grid_request={"min_net_import": [None] * 96}), "grid_request.min_net_import: unknown field"),
])
def test_unknown_keys_are_rejected_with_their_path(mutate, message):
    d = standard_home()
    mutate(d)
    with pytest.raises(ProblemError) as exc:
        problem_from_dict(d)
    assert str(exc.value) == message if "did you mean" in message else str(exc.value).startswith(message)


def test_misspelt_battery_no_longer_drops_the_battery_silently():
    d = battery_only_home()
    d["batterys"] = d.pop("batteries")
    with pytest.raises(ProblemError, match="^batterys: unknown field"):
        problem_from_dict(d)


@pytest.mark.parametrize("key", ["co2_g_per_kwh", "export_price_eur_per_kwh", "base_load_kw"])
def test_optional_series_may_be_left_out_or_null(key):
    for how in ("omit", "null"):
        d = standard_home()
        if how == "omit":
            del d["site"][key]
        else:
            d["site"][key] = None
        p = problem_from_dict(d)
        assert getattr(p.site, key) == (0.0,) * 96


def test_a_home_without_co2_series_is_planned():
    d = standard_home()
    del d["site"]["co2_g_per_kwh"]
    r = solve(problem_from_dict(d), time_limit_s=20)
    assert r.status == Status.OPTIMAL and r.evaluation.co2_kg == 0.0


@pytest.mark.parametrize("key", ["power_w", "expected_power_w", "max_power_w"])
def test_a_kilowatt_value_in_a_watt_field_is_rejected(key):
    d = standard_home()
    ph = d["cycles"][0]["phases"][1]
    ph.pop("power_w")
    ph[key] = 2.6
    with pytest.raises(ProblemError) as exc:
        problem_from_dict(d)
    msg = str(exc.value)
    assert msg.startswith(f"cycles[0].phases[1].{key}: 2.6 W")
    assert "watts (W)" in msg and "kilowatts (kW)" in msg and "2600 W" in msg


def test_zero_and_ten_watt_phases_are_fine():
    d = standard_home()
    d["cycles"][0]["phases"][0]["power_w"] = 0
    d["cycles"][0]["phases"][1]["power_w"] = 10
    problem_from_dict(d)


def test_reference_program_phases_with_order_and_expected_power_are_accepted():
    from tests.factories.reference import reference

    d = standard_home()
    ref = reference()["appliance_cycles"]["Hotpoint_FabricCare_WPR4LLLG8NWD4/easy_care"]
    d["cycles"][2]["phases"] = ref["phases"]  # {order, duration_min, max_power_w, expected_power_w: null}
    p = problem_from_dict(d)
    assert [ph.power_w for ph in p.cycles[2].phases] == [200.0, 1000.0, 100.0]


@pytest.mark.parametrize("seed", range(12))
def test_generated_homes_round_trip(seed):
    d = strip_meta(random_home(seed))
    p = problem_from_dict(d)
    assert problem_from_dict(json.loads(json.dumps(problem_to_dict(p)))) == p


def test_generator_meta_is_an_unknown_field():
    with pytest.raises(ProblemError, match="^_meta: unknown field"):
        problem_from_dict(random_home(0))
