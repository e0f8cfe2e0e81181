from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Messages to households. Sits above hub_bridge (subscribes to its events) and below planning."""

    name = "flexibility.notifications"
    label = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  connects the hub bridge's events
