"""Actions on the command outbox. The relay worker (issue 5) sends what is queued here."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction

from devices.models import Device

from .models import CommandKind, HubCommand


def enqueue_command(
    device: Device,
    kind: str,
    parameters: dict,
    not_before: datetime,
    expires_at: datetime,
    run=None,
    recommendation=None,
) -> HubCommand:
    """Record a command for the device's hub; it is relayed after the transaction commits."""
    if kind not in CommandKind.values:
        raise ValueError(f"Unknown command kind '{kind}'")
    if device.hub_id is None:
        raise ValueError(f"Device {device.serial_number} has no hub")
    command = HubCommand.objects.create(
        hub_id=device.hub_id, device=device, kind=kind, parameters=parameters,
        not_before=not_before, expires_at=expires_at, run=run, recommendation=recommendation,
    )
    transaction.on_commit(lambda: _relay(command.pk))
    return command


def _relay(command_pk: int) -> None:
    """Hand the command to the relay worker (issue 5 wires the `hub` queue task here)."""
    return None
