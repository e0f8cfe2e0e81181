"""Domain errors: what services raise when a request cannot be served.

Services stay free of HTTP; `energy_manager.api_errors.exception_handler` is the one place that
maps these to a status code and the API's error body.
"""
from __future__ import annotations

from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError


class DomainError(Exception):
    """Base of the hierarchy; `code` is the machine-readable error code of the body."""

    code = "error"
    default_message = "The request cannot be served."

    def __init__(self, message: str | None = None, fields: dict[str, list[str]] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.fields = fields or {}
        self.extra = extra or {}  # additional top-level keys of the error body
        super().__init__(self.message)


class NotFound(DomainError):
    """The object does not exist or is not the caller's (404)."""

    code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    """The request conflicts with the object's current state (409)."""

    code = "conflict"
    default_message = "The request conflicts with the current state."


class Unprocessable(DomainError):
    """Well formed, but the stored data cannot serve it (422)."""

    code = "unprocessable"
    default_message = "The request cannot be processed with the current data."


class BrokerUnavailable(DomainError, KombuOperationalError):
    """The task broker did not take a message (503); what was committed waits for a re-send.

    Also a kombu OperationalError, so a task that meets it retries as on any broker error.
    """

    code = "service_unavailable"
    default_message = "The task broker is unreachable; part of this request may not have been carried out. Try again later."
