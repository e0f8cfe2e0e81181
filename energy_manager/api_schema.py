"""OpenAPI generation (drf-spectacular): every operation documents the error responses it can give.

The statuses follow from what the view is, so they stay true when views change: any request can be malformed
(400); authenticators mean 401, permissions beyond AllowAny 403, path parameters or pagination 404, a request
body 413 and 415, throttles 429. Views document the rest (409, 422, 503) themselves. Routes that answer
another error shape (the FlexiHome-compatible API) name its serializer in `error_serializer`.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import permissions, serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable reason, e.g. invalid, not_found, token_expired.")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text='Messages per offending field, e.g. {"power_profile[0].duration_min": [..]}.')


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input (every offending field named in `error.fields`) or a malformed body.",
    "401": "No, or an invalid or expired, credential (`error.code` says which).",
    "403": "Authenticated, but not allowed.",
    "404": "No such object for this caller (another user's object is a 404 too).",
    "413": "The request body is larger than the server accepts.",
    "415": "The body is not JSON.",
    "429": "Too many requests: retry after the Retry-After header's seconds.",
}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return operation
        error_serializer = getattr(self.view, "error_serializer", ErrorSerializer)
        content = {"application/json": {"schema": self.resolve_serializer(error_serializer, "response").ref}}
        responses = operation.setdefault("responses", {})
        for status in self._error_statuses(operation):
            responses.setdefault(status, {"description": ERROR_DESCRIPTIONS[status]})
        for status, response in responses.items():
            if str(status).startswith(("4", "5")):
                response.setdefault("content", content)
        return operation

    def _error_statuses(self, operation: dict) -> list[str]:
        view = self.view
        statuses = ["400"]
        if view.get_authenticators():
            statuses.append("401")
        if any(not isinstance(p, permissions.AllowAny) for p in view.get_permissions()):
            statuses.append("403")
        has_path_parameters = any(p.get("in") == "path" for p in operation.get("parameters", []))
        paginated = self.method == "GET" and self._is_list_view() and getattr(view, "pagination_class", None)
        if has_path_parameters or paginated:
            statuses.append("404")
        if "requestBody" in operation:
            statuses += ["413", "415"]
        if view.get_throttles():
            statuses.append("429")
        return statuses
