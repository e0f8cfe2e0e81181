"""Messages to a household about its homes: plans, commands that could not be delivered, missing data."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from devices.models import Home


class Notification(models.Model):
    """One message to the owner of a home; dismissed, never deleted by the system."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    home = models.ForeignKey(Home, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flexibility_notification"  # created when this model lived in flexibility
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "dismissed_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user}: {self.message[:60]}"
