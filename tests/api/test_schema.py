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
