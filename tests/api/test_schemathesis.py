"""Schemathesis against the live test server: every operation of the generated OpenAPI schema, fuzzed.

For each operation, Hypothesis draws valid (positive) and invalid (negative) requests from the schema;
half of them use the id of a real object of the caller instead of a random one, so handlers run past the
404. Each response must pass schemathesis' checks: no server error, a documented status code and content
type, and a body that conforms to the documented schema. Runs twice: as a household (JWT) and as an
operator service account (API key). SCHEMATHESIS_MAX_EXAMPLES bounds the examples per operation and mode.
"""
from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

import pytest
import requests
from django.utils import timezone
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
METHOD_ORDER = {"GET": 0, "HEAD": 0, "OPTIONS": 0, "POST": 1, "PUT": 2, "PATCH": 2, "DELETE": 3}

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@dataclass
class Fuzz:
    base_url: str
    headers: dict[str, str]
    known: dict[str, dict[str, str]] = field(default_factory=dict)  # path template -> real path parameters
    known_query: dict[str, dict[str, str]] = field(default_factory=dict)  # path template -> real query values
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    checks: list = field(default_factory=lambda: list(CHECKS))
    excepted: Callable[[str, Failure, Any], str | None] = lambda label, failure, case: None  # reason, or None
    differences_seen: set[str] = field(default_factory=set)

    def operation(self, operation) -> None:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))
        known, known_query = self.known.get(operation.path), self.known_query.get(operation.path)
        session = requests.Session()

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy, use_known=st.booleans())
        def run(case, use_known: bool) -> None:
            if known and use_known:
                case.path_parameters = {**(case.path_parameters or {}), **known}
            if known_query and use_known:
                case.query = {**(case.query or {}), **known_query}
            response = case.call(base_url=self.base_url, headers=self.headers, session=session, timeout=60)
            self.calls += 1
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=self.checks, headers=self.headers)
            except FailureGroup as group:
                remaining = []
                for failure in group.exceptions:
                    reason = self.excepted(operation.label, failure, case)
                    if reason is None:
                        remaining.append(failure)
                    else:
                        self.differences_seen.add(reason)
                if remaining:
                    raise FailureGroup(remaining, str(group)) from None

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: B036 - failures come as exception groups; report and go on
            self.failures.append(f"{operation.label}: {str(exc)[:1500]}")
        finally:
            session.close()

    def all(self, schema, select: Callable[[str], bool]) -> None:
        operations = [result.ok() for result in schema.get_all_operations()]
        operations = [op for op in operations if select(op.path)]
        assert operations
        for op in sorted(operations, key=lambda op: (METHOD_ORDER.get(op.method.upper(), 1), op.path)):
            self.operation(op)


def load_schema(live_server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")


def api_paths(path: str) -> bool:
    return path.startswith("/api/")


@pytest.fixture
def household_world(make_user, make_home, make_hub, make_device, make_cycle, make_ev_session, client_for):
    from rest_framework_simplejwt.tokens import RefreshToken

    user = make_user("fuzz@example.com")
    home = make_home(user, name="Fuzzed home", timezone="Europe/Lisbon")
    hub = make_hub(home=home)
    washer = make_device(home, "washing_machine")
    charger = make_device(home, "ev_charger")
    battery = make_device(home, "battery")
    cycle = make_cycle(washer)
    session = make_ev_session(charger)
    known = {
        "/api/v1/homes/{id}/": {"id": home.pk},
        "/api/v1/homes/{home_id}/optimizations/": {"home_id": home.pk},
        "/api/v1/homes/{home_id}/schedules/": {"home_id": home.pk},
        "/api/v1/homes/{home_id}/schedules/latest/": {"home_id": home.pk},
        "/api/v1/hubs/{id}/": {"id": hub.pk},
        "/api/v1/hubs/{id}/release/": {"id": hub.pk},
        "/api/v1/hubs/{id}/reset-secret/": {"id": hub.pk},
        "/api/v1/devices/{id}/": {"id": battery.pk},
        "/api/v1/devices/{id}/comfort/": {"id": battery.pk},
        "/api/v1/cycles/{id}/": {"id": cycle.pk},
        "/api/v1/ev-sessions/{id}/": {"id": session.pk},
    }
    token = str(RefreshToken.for_user(user).access_token)
    return {"Authorization": f"Bearer {token}"}, known


def test_household_api_conforms_to_its_schema(live_server, household_world):
    headers, known = household_world
    fuzz = Fuzz(live_server.url, headers, known)
    fuzz.all(load_schema(live_server), api_paths)
    print(f"household: {fuzz.calls} calls, statuses {sorted(fuzz.statuses.items())}")
    assert not fuzz.failures, "\n\n".join(fuzz.failures)


@pytest.fixture
def member_of_portfolio(make_user, make_home, make_device):
    """make(username): a user whose opted-in home (with a battery and tomorrow's offer) is in a portfolio of a
    new service account; returns (user, portfolio, api key)."""
    from django.contrib.auth import get_user_model

    from flexibility.grid import services as flex_services
    from flexibility.grid.models import Portfolio

    def make(username: str):
        user = make_user(f"{username}@example.com")
        get_user_model().objects.filter(pk=user.pk).update(username=username)
        user.refresh_from_db()
        home = make_home(user, name=f"Home of {username}", global_optimizer_opt_in=True)
        make_device(home, "battery")
        portfolio = Portfolio.objects.create(code=f"feeder-{username}", name=f"Feeder of {username}")
        portfolio.homes.set([home])
        day = (timezone.now() + timedelta(days=1)).date()
        _, slots = flex_services.delivery_window(home, day)
        flex_services.save_offer(home, day, {
            "baseline_kw": [0.5] * slots, "min_kw": [-0.5] * slots, "max_kw": [2.5] * slots,
            "cost_min_eur": [0.05] * slots, "cost_max_eur": [0.04] * slots})
        _, key = flex_services.create_service_account(f"aggregator-{username}", portfolios=[portfolio])
        return user, portfolio, key

    return make


def test_operator_api_conforms_to_its_schema_with_a_service_account_key(live_server, member_of_portfolio):
    _, portfolio, key = member_of_portfolio("fuzzmember")
    fuzz = Fuzz(live_server.url, {"X-Api-Key": key}, {"/api/v1/operator/portfolios/{id}/offer/": {"id": portfolio.pk}})
    fuzz.all(load_schema(live_server), api_paths)
    print(f"service account: {fuzz.calls} calls, statuses {sorted(fuzz.statuses.items())}")
    assert not fuzz.failures, "\n\n".join(fuzz.failures)


# --- the FlexiHome-compatible routes against the contract they replace -------------------------------------

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "flexihome-energy-manager-openapi.yaml"
COMPAT_ROOT = "/api/energy_manager_service"
CONTRACT_CHECKS = [*CHECKS, response_headers_conformance]

# Where this API differs from the FlexiHome contract on purpose (see the README's FlexiHome section): a
# response with one of these statuses is accepted although the contract does not list it, and only these.
DOCUMENTED_DIFFERENCES: dict[tuple[str, int], str] = {
    **{("DELETE /flexibility/recommendations", status): "the contract lists only 200 for DELETE; errors answer "
       "400/401/403/404 with the contract's error body, like its other operations" for status in (400, 401, 403, 404)},
    ("POST /flexibility/accept", 422): "setpoints beyond the home's offer are refused (422)",
    ("POST /flexibility/recommendations/accept", 409): "a recommendation no longer pending cannot be accepted (409)",
}


def contract_difference(label: str, failure: Failure, case) -> str | None:
    missing = getattr(failure, "missing_headers", None)
    sent = str((case.headers or {}).get("X-Correlation-ID", "")).strip()
    if missing == ["X-Correlation-ID"] and not sent:
        return "a request without (or with a blank) X-Correlation-ID gets its 400 without one: nothing to echo"
    status = getattr(failure, "status_code", None)
    if "status_code_conformance" in failure.checks and status is not None:
        reason = DOCUMENTED_DIFFERENCES.get((label, status))
        return f"{label} {status}: {reason}" if reason else None
    return None


@pytest.mark.parametrize("caller", ["household", "service account"])
def test_flexihome_routes_conform_to_the_flexihome_contract(live_server, member_of_portfolio, caller):
    from rest_framework_simplejwt.tokens import RefreshToken

    assert REFERENCE.exists(), f"the FlexiHome contract is expected at {REFERENCE}"
    user, _, key = member_of_portfolio("fuzzhome01")  # the contract's user_id has 10 characters
    headers = ({"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"} if caller == "household"
               else {"Authorization": f"Api-Key {key}"})
    known_query = {path: {"user_id": "fuzzhome01"} for path in ("/flexibility/available", "/flexibility/recommendations")}
    known_query["/flexibility/accept"] = {"asset": "fuzzhome01"}
    fuzz = Fuzz(live_server.url + COMPAT_ROOT, headers, known_query=known_query, checks=CONTRACT_CHECKS,
                excepted=contract_difference)
    fuzz.all(schemathesis.openapi.from_path(str(REFERENCE)), lambda path: True)
    print(f"FlexiHome contract, {caller}: {fuzz.calls} calls, statuses {sorted(fuzz.statuses.items())}, "
          f"documented differences seen: {sorted(fuzz.differences_seen)}")
    assert not fuzz.failures, "\n\n".join(fuzz.failures)
