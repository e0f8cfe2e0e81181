"""Admin for notifications."""
from __future__ import annotations

from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "home", "kind", "created_at", "dismissed_at"]
    list_filter = ["kind"]
    search_fields = ["message", "user__username"]
    raw_id_fields = ["user", "home"]
