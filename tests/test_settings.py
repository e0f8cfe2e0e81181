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


def test_production_refuses_a_simulated_clock():
    """energy_manager.clock reads a simulation's time only outside production."""
    run = _run(["-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='energy_manager.settings'; django.setup()"],
               {**PRODUCTION_ENV, "HEMS_SIMULATED_CLOCK": "redis://127.0.0.1:6379/4"})
    assert run.returncode != 0
    assert "HEMS_SIMULATED_CLOCK" in run.stderr


def test_the_clock_is_the_wall_clock_unless_a_simulation_sets_it():
    from datetime import datetime, timedelta, timezone

    from energy_manager import clock
    from tests.plugins.celery_worker import broker_url

    assert not clock.simulated()
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)
    clock.use(broker_url())
    try:
        when = datetime(2030, 6, 1, 12, 15, tzinfo=timezone.utc)
        clock.set_now(when)
        assert clock.now() == when  # it moves only when the driver moves it
    finally:
        clock.use(None)
    assert not clock.simulated()


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
