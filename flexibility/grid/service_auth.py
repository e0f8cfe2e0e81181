"""Authentication and permissions for operator / aggregator service accounts.

A service account sends `Authorization: Api-Key <key>` or `X-Api-Key: <key>`.
Household JWTs authenticate Django users, which never pass IsServiceAccount.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import GRID_ROLES, ServiceAccount

KEY_PREFIX_BYTES = 6


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """Return (prefix, full key). The prefix finds the account, the hash proves the key."""
    prefix = secrets.token_hex(KEY_PREFIX_BYTES)
    return prefix, f"{prefix}.{secrets.token_urlsafe(32)}"


def account_for_key(key: str) -> ServiceAccount | None:
    prefix, _, secret = key.partition(".")
    if not prefix or not secret:
        return None
    account = ServiceAccount.objects.filter(key_prefix=prefix, is_active=True).first()
    if account is None or not hmac.compare_digest(account.key_hash, hash_key(key)):
        return None
    return account


class ServiceAccountAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        key = None
        if header.startswith(self.keyword + " "):
            key = header[len(self.keyword) + 1:].strip()
        elif request.META.get("HTTP_X_API_KEY"):
            key = request.META["HTTP_X_API_KEY"].strip()
        if key is None:
            return None
        account = account_for_key(key)
        if account is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if account.last_used_at is None or (now - account.last_used_at).total_seconds() > 60:
            ServiceAccount.objects.filter(pk=account.pk).update(last_used_at=now)
        return account, None

    def authenticate_header(self, request) -> str:
        return self.keyword


def is_service_account(user) -> bool:
    """An operator or aggregator account (data providers only write signals, through devices' API)."""
    return isinstance(user, ServiceAccount) and user.role in GRID_ROLES


class IsServiceAccount(permissions.BasePermission):
    """Only service accounts (never household users, whatever their token)."""

    message = "This endpoint is for operator and aggregator service accounts."

    def has_permission(self, request, view) -> bool:
        return is_service_account(request.user)


class IsOperator(permissions.BasePermission):
    """Service accounts, or staff users (who see every portfolio)."""

    message = "This endpoint is for operator and aggregator service accounts."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return is_service_account(user) or bool(getattr(user, "is_staff", False) and user.is_authenticated)


class ServiceAccountScheme(OpenApiAuthenticationExtension):
    """Describes the API-key scheme in the OpenAPI schema."""

    target_class = "flexibility.grid.service_auth.ServiceAccountAuthentication"
    name = "ServiceAccountApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                "description": "Service account key (also accepted as `Authorization: Api-Key <key>`)."}
