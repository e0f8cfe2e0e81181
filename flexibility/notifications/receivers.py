"""What the household is told when the hub bridge announces something."""
from __future__ import annotations

from django.dispatch import receiver

from hub_bridge.signals import commands_expired

from .services import notify


@receiver(commands_expired, dispatch_uid="notifications.commands_expired")
def tell_commands_expired(sender, home, commands, **kwargs) -> None:
    """One notification per home for the commands that expired before their hub took them."""
    names = sorted({c.device.name for c in commands})
    notify(
        home, "command_expired",
        f"{len(commands)} command(s) for {', '.join(names)} could not be delivered before they expired: "
        "the hub was offline. The devices follow their own settings.",
        {"command_ids": [str(c.command_id) for c in commands],
         "devices": sorted({c.device.serial_number for c in commands})},
    )
