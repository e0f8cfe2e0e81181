"""The hub protocol (PROTOCOL.md): topics, payload schemas, encoding and validation.

Pure Python (no Django): the cloud (relay, listener) and the hub simulator import
the same module and the same JSON Schemas, so both sides validate identically.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
# Our deepest message (a cycle report's power profile) nests 3 levels; anything far deeper is hostile.
MAX_DEPTH = 8
# RFC 3339 allows any offset below 24 h; real zones span -12:00..+14:00 and PostgreSQL refuses beyond +/-15:59.
MAX_UTC_OFFSET = timedelta(hours=14)
# Instants a hub can plausibly report (an unset clock says 1970; years 1 and 9999 overflow in UTC).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=timezone.utc)

# Channels: the last topic level. Downlink is read by the hub; uplinks are written by it.
COMMANDS = "commands"
ACK = "ack"
TELEMETRY = "telemetry"
CYCLES = "cycles"
REGISTRY = "registry"
STATUS = "status"
UPLINK_CHANNELS = (ACK, TELEMETRY, CYCLES, REGISTRY, STATUS)
SCHEMA_OF_CHANNEL = {
    COMMANDS: "command", ACK: "ack", TELEMETRY: "telemetry", CYCLES: "cycle_report",
    REGISTRY: "registry", STATUS: "status",
}
QOS = {COMMANDS: 1, ACK: 1, TELEMETRY: 0, CYCLES: 1, REGISTRY: 1, STATUS: 1}
RETAINED = {REGISTRY, STATUS}


class ProtocolError(ValueError):
    """A payload that is not a valid message of this protocol; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def topic(prefix: str, hub_id: str, channel: str) -> str:
    return f"{prefix}/hubs/{hub_id}/{channel}"


def uplink_filter(prefix: str, channel: str) -> str:
    """Subscription filter for one uplink channel of every hub."""
    return f"{prefix}/hubs/+/{channel}"


def parse_topic(prefix: str, name: str) -> tuple[str, str]:
    """(hub_id, channel) of a topic under `prefix`; ProtocolError when it is not one of ours."""
    head = f"{prefix}/hubs/"
    if not name.startswith(head):
        raise ProtocolError("bad_topic", name)
    rest = name[len(head):].split("/")
    if len(rest) != 2 or not rest[0] or rest[1] not in SCHEMA_OF_CHANNEL:
        raise ProtocolError("bad_topic", name)
    return rest[0], rest[1]


def hub_id_of_topic(prefix: str, name: str) -> str:
    """The hub a topic belongs to, even when the topic is not one of ours ("" outside `prefix/hubs/`).

    The broker's ACL lets a hub write only under its own id, so this names who sent a message."""
    head = f"{prefix}/hubs/"
    return printable(name[len(head):].split("/", 1)[0], 64) if name.startswith(head) else ""


def _check_date_time(value: object) -> bool:
    """RFC 3339 with an offset within +/-14:00, between 2000 and 2100."""
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        offset = parsed.utcoffset()
        if offset is None or abs(offset) > MAX_UTC_OFFSET:
            return False
        return EARLIEST_TIME <= parsed.astimezone(timezone.utc) < LATEST_TIME
    except (ValueError, OverflowError):
        return False


def _inline_refs(node: Any, local: dict, shared: dict) -> Any:
    """Replace `$ref`s to `_defs.json` and to local `$defs` by their targets (our schemas have no
    recursion): each schema is then one self-contained document, compiled once."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None and len(node) == 1:
            if ref.startswith("_defs.json#/$defs/"):
                return _inline_refs(shared[ref.rsplit("/", 1)[1]], local, shared)
            if ref.startswith("#/$defs/"):
                return _inline_refs(local[ref.rsplit("/", 1)[1]], local, shared)
        return {k: _inline_refs(v, local, shared) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, local, shared) for v in node]
    return node


@lru_cache(maxsize=None)
def validator(schema: str) -> jsonschema_rs.Draft202012Validator:
    """The schema compiled once by `jsonschema_rs` (Rust: about 35x faster than the pure-Python
    `jsonschema` on a telemetry message, which made validation the listener's largest cost).

    The only format checked is our own `date-time` rule (`_check_date_time`); unknown formats are
    annotations, as in JSON Schema 2020-12.
    """
    shared = schema_document("_defs")["$defs"]
    doc = schema_document(schema)
    local = doc.pop("$defs", {})
    doc.pop("$id", None)
    bundled = _inline_refs(doc, local, shared)
    Draft202012Validator.check_schema(bundled)  # a broken schema file fails loudly, naming the keyword
    return jsonschema_rs.Draft202012Validator(bundled, formats={"date-time": _check_date_time},
                                              validate_formats=True, ignore_unknown_formats=True)


def schema_document(schema: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{schema}.json").read_text())


def check_values(message: Any) -> None:
    """What JSON Schema cannot say and PostgreSQL cannot store: nesting at most MAX_DEPTH, finite
    numbers (no NaN or Infinity), text without NUL bytes and encodable as UTF-8 (keys included).

    Iterative, so a deep value cannot exhaust the stack; ProtocolError names the path.
    """
    stack: list[tuple[Any, tuple, int]] = [(message, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise ProtocolError("too_deep", f"{_path(path)}: nested deeper than {MAX_DEPTH}")
            for key, item in value.items():
                _check_text(key, path + (key,))
                stack.append((item, path + (key,), depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise ProtocolError("too_deep", f"{_path(path)}: nested deeper than {MAX_DEPTH}")
            stack.extend((item, path + (i,), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ProtocolError("not_finite", f"{_path(path)}: {value!r} is not a finite number")
        elif isinstance(value, str):
            _check_text(value, path)


def _path(path: tuple) -> str:
    return "/".join(printable(str(p)) for p in path) or "(root)"


def printable(text: str, limit: int = 80) -> str:
    """For error details and logs: NULs and unencodable characters escaped, length bounded."""
    escaped = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return escaped[:limit]


def _check_text(text: str, path: tuple) -> None:
    if "\x00" in text:
        raise ProtocolError("nul_byte", f"{_path(path)}: text contains a NUL byte")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("bad_text", f"{_path(path)}: text is not valid Unicode (lone surrogate)") from None


def validate(schema: str, message: Any) -> None:
    """Raise ProtocolError naming the first problem when `message` breaks the protocol's rules."""
    check_values(message)
    if isinstance(message, dict) and "version" in message and message["version"] != VERSION:
        raise ProtocolError("wrong_version", repr(message.get("version"))[:40])
    v = validator(schema)
    if v.is_valid(message):
        return
    error = next(iter(v.iter_errors(message)), None)
    if error is not None:
        where = _path(tuple(error.instance_path))
        reason = "bad_time" if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Format) else "schema"
        raise ProtocolError(reason, f"{where}: {printable(error.message, 200)}")


def decode(schema: str, payload: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> dict:
    """Bytes off the wire -> a validated message; ProtocolError on anything else."""
    if len(payload) > max_bytes:
        raise ProtocolError("oversized", f"{len(payload)} bytes > {max_bytes}")
    try:
        message = json.loads(payload)
    except RecursionError:  # the C decoder stops at the interpreter's recursion limit, cleanly
        raise ProtocolError("too_deep", f"nested deeper than {MAX_DEPTH}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("malformed", printable(str(exc), 200)) from None
    validate(schema, message)
    return message


def encode(schema: str, message: dict) -> bytes:
    """Validate before sending: a sender never puts an invalid message on the wire."""
    validate(schema, message)
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


def iso(value: datetime) -> str:
    """RFC 3339 with an offset; naive datetimes are refused (slots are absolute instants)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.isoformat()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
