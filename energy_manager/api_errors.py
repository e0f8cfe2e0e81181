"""One error body shape for the whole API: {"error": {"code", "message", "fields"}}."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from energy_manager import errors

DOMAIN_STATUS = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.Unprocessable: status.HTTP_422_UNPROCESSABLE_ENTITY,
    errors.BrokerUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"a.b[0].c": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # ListSerializer reports {index: errors}
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            out[prefix or "non_field_errors"] = [str(v) for v in detail]
        else:
            for i, value in enumerate(detail):
                if value:
                    out.update(_flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def domain_status(exc: errors.DomainError) -> int:
    """The HTTP status of a domain error raised by a service."""
    return next((code for cls, code in DOMAIN_STATUS.items() if isinstance(exc, cls)), status.HTTP_400_BAD_REQUEST)


def domain_error_response(exc: errors.DomainError) -> Response:
    """The error body of a domain error raised by a service."""
    body = error_body(exc.code, exc.message, exc.fields)
    body["error"].update(exc.extra)
    return Response(body, status=domain_status(exc))


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, errors.DomainError):
        return domain_error_response(exc)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in exc.message_dict.items()}
        else:
            detail = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(fields))
        body = error_body("invalid", f"Invalid input: {names}.", fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if isinstance(code, (dict, list)):
            body = error_body("error", "Request failed.", _flatten(detail))
        else:
            message = detail if isinstance(detail, str) else str(detail)
            body = error_body(str(code), message)
    response.data = body
    return response


class BrokerOutageMiddleware:
    """503 with the standard error body when the task broker (or its Redis) is unreachable.

    A middleware beside the DRF handler: tasks are sent when the request's transaction commits,
    after the view has returned, so these errors surface outside DRF. Raised inside a view, the
    request's transaction is rolled back first; raised on commit, what was committed stays
    (errors.BrokerUnavailable says what happens to it).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if not isinstance(exception, errors.BrokerUnavailable):
            if not isinstance(exception, (KombuOperationalError, RedisConnectionError)):
                return None
            exception = errors.BrokerUnavailable()
        response = domain_error_response(exception)
        return JsonResponse(response.data, status=response.status_code, headers={"Retry-After": "30"})
