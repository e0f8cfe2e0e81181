"""The hub protocol (PROTOCOL.md): topics, payload schemas, encoding and validation.

Pure Python (no Django): the cloud (relay, listener) and the hub simulator import
the same module and the same JSON Schemas, so both sides validate identically.
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024

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


def _check_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_check_date_time)


def _inline_refs(node: Any, local: dict, shared: dict) -> Any:
    """Replace `$ref`s to `_defs.json` and to local `$defs` by their targets (our schemas have no
    recursion): validation then never resolves references, which makes it about 5x faster."""
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
def validator(schema: str) -> Draft202012Validator:
    shared = schema_document("_defs")["$defs"]
    doc = schema_document(schema)
    local = doc.pop("$defs", {})
    doc.pop("$id", None)
    bundled = _inline_refs(doc, local, shared)
    Draft202012Validator.check_schema(bundled)
    return Draft202012Validator(bundled, format_checker=_FORMATS)


def schema_document(schema: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{schema}.json").read_text())


def validate(schema: str, message: Any) -> None:
    """Raise ProtocolError naming the first problem when `message` breaks the schema."""
    if isinstance(message, dict) and "version" in message and message["version"] != VERSION:
        raise ProtocolError("wrong_version", repr(message.get("version"))[:40])
    v = validator(schema)
    if v.is_valid(message):
        return
    error = next(iter(v.iter_errors(message)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ProtocolError("schema", f"{where}: {error.message[:200]}")


def decode(schema: str, payload: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> dict:
    """Bytes off the wire -> a validated message; ProtocolError on anything else."""
    if len(payload) > max_bytes:
        raise ProtocolError("oversized", f"{len(payload)} bytes > {max_bytes}")
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("malformed", str(exc)[:200]) from None
    validate(schema, message)
    return message


def encode(schema: str, message: dict) -> bytes:
    """Validate before sending: a sender never puts an invalid message on the wire."""
    validate(schema, message)
    return json.dumps(message, separators=(",", ":")).encode()


def iso(value: datetime) -> str:
    """RFC 3339 with an offset; naive datetimes are refused (slots are absolute instants)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.isoformat()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
