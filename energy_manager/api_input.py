"""What the API accepts: one place for the rules every request body, query and path value obeys.

- JSON bodies only: a body nested deeper than MAX_JSON_DEPTH, or too deep for Python's parser, is a 400
  parse error (never a RecursionError); a NUL character anywhere in a body (key or value) is a 400 naming it,
  since PostgreSQL cannot store NUL in text or jsonb.
- NUL characters in query parameters and path values are a 400 naming the parameter
  (api_errors.RejectNullCharactersMiddleware).
- Instants (serializer fields and list filters): a UTC offset is required, at most +/-14:00 (the real range of
  time zones), and the date lies in INSTANT_MIN..INSTANT_MAX, so adding the 72 h horizon or a day of slots can
  never overflow and PostgreSQL accepts every value that passes.
- Numbers: `true` is not 1.0 and "1.5" is not 1.5 in a JSON API (StrictFloatField).
"""
from __future__ import annotations

import codecs
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json  # DRF's json: strict_constant refuses NaN and Infinity

MAX_JSON_DEPTH = 32
MAX_UTC_OFFSET = timedelta(hours=14)
INSTANT_MIN = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
INSTANT_MAX = datetime(2200, 1, 1, tzinfo=dt_timezone.utc)
NUL_MESSAGE = "Null characters are not allowed."


# --- NUL characters ---------------------------------------------------------------

def _path_name(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def json_problems(data: Any) -> tuple[int, dict[str, list[str]]]:
    """(depth, {path: [NUL message]}) of parsed JSON; iterative, so any depth json.loads built is safe."""
    errors: dict[str, list[str]] = {}
    depth = 0
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, level = stack.pop()
        depth = max(depth, level)
        if isinstance(value, str):
            if "\x00" in value:
                errors[path or "non_field_errors"] = [NUL_MESSAGE]
        elif isinstance(value, dict):
            for key, item in value.items():
                name = _path_name(path, key)
                if "\x00" in key:
                    errors[name] = [NUL_MESSAGE]
                stack.append((item, name, level + 1))
        elif isinstance(value, list):
            stack.extend((item, _path_name(path, i), level + 1) for i, item in enumerate(value))
    return depth, errors


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, bounded: nesting and recursion are parse errors, NUL characters field errors."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            data = json.load(codecs.getreader(encoding)(stream), parse_constant=json.strict_constant)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.")
        except ValueError as exc:  # includes UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}")
        depth, errors = json_problems(data)
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        if errors:
            raise ValidationError(errors)
        return data


def null_character_fields(path_values: dict, query) -> dict[str, list[str]]:
    """{name: [message]} for path values and query parameters (a QueryDict) holding a NUL character."""
    fields = {name: [NUL_MESSAGE] for name, value in path_values.items() if isinstance(value, str) and "\x00" in value}
    for name, values in query.lists():
        if "\x00" in name or any("\x00" in v for v in values):
            fields[name] = [NUL_MESSAGE]
    return fields


def parse_id(value: str) -> int | None:
    """A database id written in ASCII digits, else None ("²" passes str.isdigit but is no id)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


# --- instants -----------------------------------------------------------------------

def instant_problem(value: datetime) -> str | None:
    """Why `value` is not an acceptable instant, or None."""
    if timezone.is_naive(value):
        return "Must include a time zone offset (e.g. 2026-05-01T08:00:00+01:00)."
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return "The UTC offset must be between -14:00 and +14:00."
    try:
        inside = INSTANT_MIN <= value <= INSTANT_MAX
    except OverflowError:
        inside = False
    if not inside:
        return f"Must be between {INSTANT_MIN:%Y-%m-%d} and {INSTANT_MAX:%Y-%m-%d}."
    return None


class InstantField(serializers.DateTimeField):
    """An instant in an API body: offset required and sane, date in the supported range."""

    def enforce_timezone(self, value: datetime) -> datetime:
        problem = instant_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return super().enforce_timezone(value)


def parse_instant_param(value: str) -> datetime:
    """A query parameter as an instant obeying `instant_problem` (forms.ValidationError otherwise)."""
    try:
        parsed = parse_datetime(value.strip())
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise forms.ValidationError(
            "Enter an ISO 8601 date/time with a UTC offset (in a URL, encode the + of an offset).",
            code="invalid")
    problem = instant_problem(parsed)
    if problem:
        raise forms.ValidationError(problem, code="invalid")
    return parsed


class InstantParamField(forms.Field):
    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        return parse_instant_param(str(value))


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantFilter(django_filters.Filter):
    """?start=2026-05-01T08:00:00%2B01:00 : the filter every list uses for instants."""

    field_class = InstantParamField


# --- serializers ---------------------------------------------------------------------

class StrictSerializerMixin:
    """Reject fields the serializer does not know instead of silently ignoring them, with every other error."""

    def to_internal_value(self, data):
        unknown: dict[str, list[str]] = {}
        if isinstance(data, dict):
            unknown = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}  # type: ignore[attr-defined]
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise ValidationError(unknown)
        return value


# --- numbers -------------------------------------------------------------------------

class StrictFloatField(serializers.FloatField):
    """A JSON number only: booleans and strings are rejected, not coerced."""

    default_error_messages = {"invalid": "A number is required."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)
