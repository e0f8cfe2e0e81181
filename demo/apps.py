from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data of `make run`: a household with its devices and a month of telemetry, its plans, and the
    grid side (a portfolio, an offer, an activation). It sits above every part, so it may use them all."""

    name = "demo"
    verbose_name = "Demo data"
