from django.apps import AppConfig


class HubBridgeConfig(AppConfig):
    name = "hub_bridge"
    default_auto_field = "django.db.models.BigAutoField"
