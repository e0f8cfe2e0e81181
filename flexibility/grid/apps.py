from django.apps import AppConfig


class GridConfig(AppConfig):
    """Grid flexibility: portfolios, service accounts, offers, activations, the FlexiHome-compatible API."""

    name = "flexibility.grid"
    label = "grid"
    verbose_name = "Grid flexibility"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  subscribes to planning's events
