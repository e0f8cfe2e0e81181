"""Fail fast (not skip) when a service the suite needs is not reachable."""
from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    if not settings.configured:  # pure-library runs (-p no:django) need no services
        return
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            "The suite runs on PostgreSQL: run `make test` (it sets DATABASE_URL=postgres://...), "
            f"not {engine}."
        )
    needed = {
        "PostgreSQL": (settings.DATABASES["default"].get("HOST") or "127.0.0.1", int(settings.DATABASES["default"].get("PORT") or 5432)),
        "Redis": _host_port(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), 6379),
        "Mosquitto": _host_port(os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883"), 1883),
    }
    missing = [f"{name} at {h}:{p}" for name, (h, p) in needed.items() if not _reachable(h, p)]
    if missing:
        raise pytest.UsageError("Required services are not reachable: " + ", ".join(missing)
                                + ". Run `make test`, which starts installed services (scripts/ensure_services.sh).")


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    u = urlparse(url)
    return u.hostname or "127.0.0.1", u.port or default_port
