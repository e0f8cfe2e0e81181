"""Per-hub MQTT credentials, hashed in Mosquitto's own password-file format.

Mosquitto 2 accepts `$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>` lines, so the
stored hash can be written to the broker's password file as it is: the secret
itself is shown once when the hub is registered and never stored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

ITERATIONS = 101  # Mosquitto's mosquitto_passwd default for $7$
SALT_BYTES = 12


def mosquitto_hash(secret: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt_b64, _ = stored.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    expected = mosquitto_hash(secret, base64.b64decode(salt_b64), int(iterations))
    return hmac.compare_digest(expected, stored)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def hub_username(hub_id: str) -> str:
    return f"hub-{hub_id}"
