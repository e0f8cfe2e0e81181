"""The OpenAPI 3 schema: generated, valid, served with Swagger UI, and free of generator warnings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOUSEHOLD_PATHS = [
    "/api/v1/auth/register/", "/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/auth/logout/",
    "/api/v1/homes/", "/api/v1/homes/{id}/", "/api/v1/hubs/", "/api/v1/hubs/claim/", "/api/v1/hubs/{id}/release/",
    "/api/v1/hubs/{id}/reset-secret/", "/api/v1/devices/", "/api/v1/devices/{id}/", "/api/v1/devices/{id}/comfort/",
    "/api/v1/cycles/", "/api/v1/cycles/{id}/", "/api/v1/ev-sessions/", "/api/v1/signals/", "/api/v1/measurements/",
    "/api/v1/tariffs/",
]


def _spectacular(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "energy_manager.settings"}
    return subprocess.run([sys.executable, "manage.py", "spectacular", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def schema_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("schema") / "schema.yaml"
    run = _spectacular("--validate", "--file", str(out))
    return run, (yaml.safe_load(out.read_text()) if out.exists() else {})


def test_schema_is_valid_openapi_3_with_household_paths(schema_run):
    run, schema = schema_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert schema["openapi"].startswith("3.")
    missing = [p for p in HOUSEHOLD_PATHS if p not in schema["paths"]]
    assert not missing


def test_schema_has_no_generator_warnings(schema_run):
    run, _ = schema_run
    problems = [line for line in run.stderr.splitlines() if "Warning" in line or "Error" in line]
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_schema_and_docs_are_served(anon_client):
    r = anon_client.get("/api/schema/")
    assert r.status_code == 200 and b"openapi: 3" in r.content
    assert anon_client.get("/api/docs/").status_code == 200


def _response_schema(schema: dict, path: str, method: str, status: str) -> dict:
    content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    ref = content.get("$ref", "")
    return schema["components"]["schemas"][ref.split("/")[-1]] if ref else content


def _parameter(schema: dict, path: str, method: str, name: str) -> dict:
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)


def test_schema_declares_what_the_api_answers(schema_run):
    """The disagreements the hardening review found between the schema and the API."""
    _, schema = schema_run
    runs = "/api/v1/homes/{home_id}/optimizations/"
    assert _response_schema(schema, runs, "get", "200")["properties"]["results"]["type"] == "array"
    assert {"200", "202", "422"} <= set(schema["paths"][runs]["post"]["responses"])
    history = _response_schema(schema, "/api/v1/homes/{home_id}/schedules/", "get", "200")
    assert history["properties"]["results"]["type"] == "array"
    assert set(_response_schema(schema, "/api/v1/notifications/dismiss-all/", "post", "200")["properties"]) == \
        {"dismissed"}
    hub = schema["components"]["schemas"]["Hub"]["properties"]["home"]
    comfort = schema["components"]["schemas"]["ComfortPreference"]["properties"]["updated_at"]
    assert hub.get("nullable") and comfort.get("nullable")
    assert _parameter(schema, "/api/v1/operator/offers/", "get", "delivery_day")["required"]
    assert _parameter(schema, "/api/v1/operator/portfolios/{id}/offer/", "get", "delivery_day")["required"]
    compat = "/api/energy_manager_service/flexibility/available"
    assert _parameter(schema, compat, "get", "user_id")["required"]
    assert _parameter(schema, compat, "get", "X-Correlation-ID")["required"]


def test_every_operation_documents_its_error_responses(schema_run):
    _, schema = schema_run
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "400" in responses, (method, path)
            error = _response_schema(schema, path, method, "400")
            assert "error" in error["properties"], (method, path)
            if operation.get("security") and {} not in operation["security"]:
                assert "401" in responses, (method, path)
    throttled = ["/api/v1/auth/register/", "/api/v1/auth/token/", "/api/v1/homes/{home_id}/optimizations/"]
    assert all("429" in schema["paths"][p]["post"]["responses"] for p in throttled)
