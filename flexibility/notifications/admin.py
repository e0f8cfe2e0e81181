"""Admin for notifications."""
from __future__ import annotations

from django.contrib import admin

from energy_manager.admin_records import ReadOnlyRecordAdmin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyRecordAdmin):
    list_display = ["__str__", "user", "home", "kind", "created_at", "dismissed_at"]
    list_filter = ["kind"]
    search_fields = ["message", "user__username"]
    raw_id_fields = ["user", "home"]
