"""One error body shape for the whole API: {"error": {"code", "message", "fields"}}."""
from __future__ import annotations

from typing import Any, Callable

from django.core.exceptions import (
    NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig, SuspiciousOperation, ValidationError as DjangoValidationError,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from energy_manager import errors
from energy_manager.api_input import null_character_fields

DOMAIN_STATUS = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.Unprocessable: status.HTTP_422_UNPROCESSABLE_ENTITY,
    errors.BrokerUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts."
    default_code = "too_large"


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


def _as_api_exception(exc: Exception) -> Exception:
    """Django's own exceptions as the DRF exception with the right status."""
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in exc.message_dict.items()}
        else:
            detail = {"non_field_errors": exc.messages}
        return exceptions.ValidationError(detail=detail)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ParseError(str(exc) or "Bad request.")
    return exc


def body_for(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        return error_body("invalid", f"Invalid input: {', '.join(sorted(fields))}.", fields)
    detail = exc.detail
    if isinstance(detail, dict) and "code" in detail and "detail" in detail:
        # simplejwt's shape {"detail", "code", "messages"}: the reason is the top-level code
        return error_body(str(detail["code"]), str(detail["detail"]))
    code = exc.get_codes()
    if isinstance(code, (dict, list)):
        return error_body("error", "Request failed.", _flatten(detail))
    return error_body(str(code), detail if isinstance(detail, str) else str(detail))


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, errors.DomainError):
        return domain_error_response(exc)
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = body_for(exc)
    return response


# --- Django's error views: JSON on API paths ---------------------------------------------

def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _json(exc: exceptions.APIException) -> JsonResponse:
    return JsonResponse(body_for(exc), status=exc.status_code)


def bad_request(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception, *args, **kwargs)
    exc = _as_api_exception(exception)
    return _json(exc if isinstance(exc, exceptions.APIException) else exceptions.ParseError("Bad request."))


def page_not_found(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception, *args, **kwargs)
    return _json(exceptions.NotFound("No API resource at this path."))


def permission_denied(request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception, *args, **kwargs)
    return _json(exceptions.PermissionDenied())


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request, *args, **kwargs)
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


class RejectNullCharactersMiddleware:
    """Answers 400 (the standard body, naming the parameter) for NUL in an API query parameter or path value.

    Runs in process_view, after URL resolution, so a path value is named by its URL keyword.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        view_class = getattr(view_func, "cls", None)
        if not request.path.startswith("/api/") or getattr(view_class, "checks_null_characters_itself", False):
            return None
        fields = null_character_fields(view_kwargs, request.GET)
        if not fields:
            return None
        return JsonResponse(error_body("invalid", f"Invalid input: {', '.join(sorted(fields))}.", fields), status=400)


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
