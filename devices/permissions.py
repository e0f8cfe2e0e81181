"""Owner scoping shared by every household-facing API.

Another user's object is a 404 (the queryset never contains it), not a 403:
a household cannot learn that an id exists. Staff see everything.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from rest_framework import permissions, serializers


class IsStaff(permissions.BasePermission):
    """Operators only (Django `is_staff`)."""

    message = "Only operators may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


DATA_PROVIDER_ROLE = "data_provider"


def is_data_provider(user: Any) -> bool:
    """A service account with the data_provider role.

    Service accounts are defined by the grid layer above; this layer only reads their role.
    """
    return getattr(user, "role", None) == DATA_PROVIDER_ROLE and bool(getattr(user, "is_authenticated", False))


def is_person(user: Any) -> bool:
    """A logged-in Django user (household or operator), not a service account."""
    return isinstance(user, AbstractBaseUser) and user.is_authenticated


def writes_any_scope(user: Any) -> bool:
    """Operators and data providers write signals of any area, home or device."""
    return is_data_provider(user) or (is_person(user) and user.is_staff)


class CanUseSignals(permissions.BasePermission):
    """Households and operators (scoped as usual), and data-provider service accounts."""

    message = "Signals are for households, operators and data-provider service accounts."

    def has_permission(self, request, view) -> bool:
        return is_person(request.user) or is_data_provider(request.user)


def scope_to_owner(queryset: QuerySet, user: Any, owner_path: str) -> QuerySet:
    """Rows of `queryset` owned by `user` through `owner_path` (e.g. "home__owner"); staff get all."""
    if user is None or not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(**{owner_path: user})


class OwnedQuerysetMixin:
    """Viewset mixin: `get_queryset` is `queryset` scoped by `owner_path`.

    Set `owner_path` ("owner", "home__owner", "device__home__owner", ...). Detail
    routes then answer 404 for objects of other users because `get_object`
    looks them up in the scoped queryset.
    """

    owner_path: str = "owner"

    def get_queryset(self) -> QuerySet:  # type: ignore[override]
        qs = super().get_queryset()  # type: ignore[misc]
        return scope_to_owner(qs, self.request.user, self.owner_path)  # type: ignore[attr-defined]


class OwnedRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key that must point to an object the requesting user owns.

    Someone else's id gets the same error as an id that does not exist.
    """

    def __init__(self, owner_path: str = "owner", **kwargs: Any) -> None:
        self.owner_path = owner_path
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        return scope_to_owner(super().get_queryset(), getattr(request, "user", None), self.owner_path)


class SignalScopeField(serializers.PrimaryKeyRelatedField):
    """A home or device a signal is written for: any for operators and data providers, else the user's own."""

    def __init__(self, owner_path: str, **kwargs: Any) -> None:
        self.owner_path = owner_path
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        user = getattr(self.context.get("request"), "user", None)
        qs = super().get_queryset()
        return qs if writes_any_scope(user) else scope_to_owner(qs, user, self.owner_path)
