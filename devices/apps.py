from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from energy_manager import lookups

        lookups.register()  # `field__any=[...]`: one array parameter instead of one per value
