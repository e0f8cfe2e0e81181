from django.apps import AppConfig


class ForecastingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "flexibility.forecasting"
    label = "forecasting"
    verbose_name = "Forecasting"
