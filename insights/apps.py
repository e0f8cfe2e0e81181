from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """Statistics and charts over telemetry, plans and offers (reads only; no models of its own)."""

    name = "insights"
    verbose_name = "Insights"
