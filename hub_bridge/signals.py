"""Events of the hub bridge, for the layers above to act on.

The bridge does not know about notifications or Celery: it announces what happened and the
subscribers (connected in their AppConfig.ready) act on it.
"""
from __future__ import annotations

from django.dispatch import Signal

# kwargs: home (devices.Home), commands (list[HubCommand]). Sent inside the transaction that expired them.
commands_expired = Signal()

# kwargs: command_ids (list[uuid.UUID]), status ("accepted" | "executed" | "rejected" | "failed"). After the update.
commands_acknowledged = Signal()

# kwargs: countdown_s (float | None). The relay should make a pass (now, or after countdown_s).
relay_requested = Signal()
