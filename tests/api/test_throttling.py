"""Throttles: per client address for registration and tokens, per user for solves; counters in Redis; 429 JSON."""
from __future__ import annotations

import os

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def allowed(scope: str) -> int:
    return int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].split("/")[0])


def client_at(address: str) -> APIClient:
    return APIClient(REMOTE_ADDR=address)


def test_registration_is_throttled_per_client_address(django_user_model):
    here, elsewhere = client_at("203.0.113.7"), client_at("203.0.113.8")
    statuses = [here.post("/api/v1/auth/register/", {"email": f"r{i}@example.com", "password": "a-long-enough-pass-77"})
                .status_code for i in range(allowed("registration") + 1)]
    assert statuses == [202] * allowed("registration") + [429]
    r = here.post("/api/v1/auth/register/", {"email": "late@example.com", "password": "a-long-enough-pass-77"})
    assert r.status_code == 429 and int(r["Retry-After"]) > 0
    assert r.json()["error"]["code"] == "throttled" and r.json()["error"]["fields"] == {}
    assert not django_user_model.objects.filter(email="late@example.com").exists()
    assert elsewhere.post("/api/v1/auth/register/", {"email": "other@example.com",
                                                      "password": "a-long-enough-pass-77"}).status_code == 202


def test_token_endpoints_are_throttled_per_client_address(user):
    here = client_at("198.51.100.20")
    body = {"email": user.email, "password": "wrong"}
    statuses = {here.post("/api/v1/auth/token/", body).status_code for _ in range(allowed("token"))}
    assert statuses == {401}
    assert here.post("/api/v1/auth/token/", body).status_code == 429
    assert here.post("/api/v1/auth/token/refresh/", {"refresh": "x"}).status_code == 429  # same budget
    assert client_at("198.51.100.21").post("/api/v1/auth/token/", body).status_code == 401


def test_throttle_counters_live_in_redis():
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    client_at("192.0.2.55").post("/api/v1/auth/token/", {"email": "x@example.com", "password": "y"})
    r = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    keys = [k.decode() for k in r.scan_iter(match=f"{prefix}:*throttle_token_192.0.2.55")]
    assert len(keys) == 1, keys
