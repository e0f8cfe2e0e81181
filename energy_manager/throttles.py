"""Request rates (DRF throttles; counters live in the Django cache, Redis outside the embedded demo).

Rates are settings (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], from the environment). The client address is
REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES trusted proxies (DRF's rule).
"""
from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    """Per client address, whoever is logged in: for endpoints used before there is a user."""

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserWriteRateThrottle(SimpleRateThrottle):
    """Per user (per address when anonymous), counting only writes: reading a result is never throttled."""

    def allow_request(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RegistrationThrottle(ClientRateThrottle):
    scope = "registration"


class TokenThrottle(ClientRateThrottle):
    """Obtaining and refreshing tokens: bounds password guessing per address."""

    scope = "token"


class SolveThrottle(UserWriteRateThrottle):
    """Optimization requests: each may hold a worker for its solver time limit."""

    scope = "solve"
