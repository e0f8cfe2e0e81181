"""Owner scoping shared by every household-facing API.

Another user's object is a 404 (the queryset never contains it), not a 403:
a household cannot learn that an id exists. Staff see everything.
"""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import permissions, serializers


class IsStaff(permissions.BasePermission):
    """Operators only (Django `is_staff`)."""

    message = "Only operators may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


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
