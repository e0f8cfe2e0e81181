"""API shape of a notification."""
from __future__ import annotations

from rest_framework import serializers

from .models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "home", "kind", "message", "data", "created_at", "dismissed_at"]
        read_only_fields = fields
