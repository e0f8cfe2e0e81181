from django.apps import AppConfig


class WebappConfig(AppConfig):
    """The household web page at /app/: a thin client of the same services as the API."""

    name = "webapp"
    verbose_name = "Household web page"
