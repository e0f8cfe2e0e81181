"""Project-level pages: the site index, the API root and the guarded Prometheus export."""
from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from energy_manager import metrics
from energy_manager.api_errors import error_body

# name in the API root -> URL name: every route of the API that takes no id
API_RESOURCES = {
    "auth/register": "auth-register",
    "auth/token": "auth-token",
    "auth/token/refresh": "auth-token-refresh",
    "auth/logout": "auth-logout",
    "auth/me": "auth-me",
    "homes": "home-list",
    "hubs": "hub-list",
    "hubs/claim": "hub-claim",
    "devices": "device-list",
    "cycles": "cycle-list",
    "ev-sessions": "ev-session-list",
    "circuits": "circuit-list",
    "minimum-states": "minimum-state-list",
    "signals": "signal-list",
    "measurements": "measurement-list",
    "tariffs": "tariff-list",
    "forecast-accuracy": "forecast-accuracy-list",
    "optimizations": "optimization-run-list",
    "recommendations": "recommendation-list",
    "notifications": "notification-list",
    "notifications/dismiss-all": "notification-dismiss-all",
    "commands": "hub-command-list",
    "operator/portfolios": "operator-portfolios",
    "operator/offers": "operator-offers",
    "operator/activations": "operator-activations",
    # FlexiHome-compatible routes (service accounts), under /api/energy_manager_service/
    "flexihome/flexibility/available": "compat-available",
    "flexihome/flexibility/accept": "compat-accept",
    "flexihome/flexibility/recommendations": "compat-recommendations",
    "flexihome/flexibility/recommendations/accept": "compat-recommendations-accept",
}
# Routes under one home, listed as URI templates ({id} is the home's id).
HOME_RESOURCES = {
    "homes/{id}/optimizations": "home-optimizations",
    "homes/{id}/schedules": "home-schedules",
    "homes/{id}/schedules/latest": "home-schedule-latest",
    "homes/{id}/statistics": "home-statistics",
    "homes/{id}/statistics/series": "home-statistics-series",
}
SITE_LINKS = {
    "api": "/api/v1/",
    "docs": "/api/docs/",
    "redoc": "/api/redoc/",
    "app": "/app/",
    "schema": "/api/schema/",
    "admin": "/admin/",
    "health": "/health/",
    "metrics": "/metrics",
}


def _absolute(request: HttpRequest, name: str, **kwargs) -> str | None:
    try:
        return request.build_absolute_uri(reverse(name, kwargs=kwargs or None))
    except NoReverseMatch:  # a part not installed in this deployment
        return None


class APIRootView(APIView):
    """The API's table of contents: every resource of /api/v1/; readable without a token."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    schema = None

    def get(self, request, *args, **kwargs):
        body = {key: url for key, name in API_RESOURCES.items() if (url := _absolute(request, name))}
        for key, name in HOME_RESOURCES.items():
            if url := _absolute(request, name, home_id=0):
                body[key] = url.replace("/0/", "/{id}/")
        body["docs"] = request.build_absolute_uri(SITE_LINKS["docs"])
        body["schema"] = request.build_absolute_uri(SITE_LINKS["schema"])
        return Response(body)


def index(request: HttpRequest) -> HttpResponse:
    """`GET /`: what this server is and where to go (JSON, or a small HTML page for browsers)."""
    links = {key: request.build_absolute_uri(path) for key, path in SITE_LINKS.items()}
    title = "HEMS energy manager"
    if "text/html" in request.headers.get("Accept", ""):
        items = "".join(f'<li><a href="{escape(url)}">{escape(key)}</a></li>' for key, url in links.items())
        return HttpResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                            f"<body><h1>{title}</h1><ul>{items}</ul></body></html>")
    return JsonResponse({"name": title, "links": links})


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    elif not settings.PRODUCTION:
        return True
    return bool(request.user.is_authenticated and request.user.is_staff)


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """`GET /metrics` for Prometheus: with METRICS_TOKEN set, only `Authorization: Bearer <token>`
    (or a staff session); in production without a token, staff sessions only; open in development."""
    if not _metrics_allowed(request):
        response = JsonResponse(error_body("not_authenticated", "Metrics need the bearer token (METRICS_TOKEN) "
                                                                "or a staff session."), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    import prometheus_client
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(metrics.HemsCollector())
    else:
        metrics.register()
        registry = prometheus_client.REGISTRY
    return HttpResponse(prometheus_client.generate_latest(registry), content_type=prometheus_client.CONTENT_TYPE_LATEST)
