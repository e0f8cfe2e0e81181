"""Admin: the command outbox with state filters, each command's hub online state, and the uplink messages
the listener refused, counted per hub and reason."""
from __future__ import annotations

from django.contrib import admin

from energy_manager.admin_records import ReadOnlyRecordAdmin, pretty_json

from .models import HubCommand, RejectedMessageCount


@admin.register(HubCommand)
class HubCommandAdmin(ReadOnlyRecordAdmin):
    """The outbox is written by the services and the relay: view-only."""

    list_display = ("__str__", "command_id", "kind", "device", "hub", "hub_online", "state", "send_count", "created_at",
                    "sent_at", "acknowledged_at", "finished_at", "expires_at")
    list_filter = ("state", "kind", "hub__online", "created_at", ("device__home", admin.RelatedOnlyFieldListFilter))
    search_fields = ("command_id", "device__serial_number", "hub__hub_id", "message")
    list_select_related = ("device", "hub")
    raw_id_fields = ("hub", "device", "run", "recommendation")
    date_hierarchy = "created_at"
    fields = ("command_id", "hub", "device", "kind", "parameters_json", "not_before", "expires_at", "state", "run",
              "recommendation", "created_at", "send_count", "sent_at", "acknowledged_at", "finished_at", "message")
    readonly_fields = fields

    @admin.display(description="parameters")
    def parameters_json(self, obj: HubCommand) -> str:
        return pretty_json(obj.parameters)

    @admin.display(boolean=True, description="hub online", ordering="hub__online")
    def hub_online(self, obj: HubCommand) -> bool:
        return obj.hub.online


@admin.register(RejectedMessageCount)
class RejectedMessageCountAdmin(ReadOnlyRecordAdmin):
    list_display = ("hub_id", "reason", "count", "first_at", "last_at", "last_topic")
    list_filter = ("reason",)
    search_fields = ("hub_id", "last_topic", "last_detail")
    readonly_fields = ("hub_id", "reason", "count", "first_at", "last_at", "last_topic", "last_detail")
