"""Production settings: refuse to start without SECRET_KEY; `check --deploy` is clean with production variables."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 30 + "-production-secret-for-the-check-0123456789",
    "ALLOWED_HOSTS": "hems.example.com",
    "DATABASE_URL": "postgres://hems:pw@db.example.com:5432/hems",
}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_ENV", "DEBUG", "DATABASE_URL")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
                          timeout=120)


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    run = _run(["-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='energy_manager.settings'; django.setup()"],
               env)
    assert run.returncode != 0
    assert "SECRET_KEY" in run.stderr


def test_check_deploy_is_clean_in_production():
    """Security and configuration checks report nothing.

    drf-spectacular's W001 (schema generator warnings, raised during --deploy) is
    left to tests/api/test_schema.py, so each test fails for one reason.
    """
    run = _run(["manage.py", "check", "--deploy"], PRODUCTION_ENV)
    output = run.stdout + run.stderr
    issues = re.findall(r"\(([\w.]+)\.([EW]\d{3})\)", output)
    assert run.returncode == 0, output
    assert [i for i in issues if i[0] != "drf_spectacular"] == [], output
    assert "System check identified" in output


def test_development_defaults_are_not_production():
    run = _run(["-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='energy_manager.settings'; django.setup();"
                "from django.conf import settings; print(settings.DEBUG, settings.SECURE_SSL_REDIRECT)"], {})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"]
