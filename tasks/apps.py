from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TasksConfig(AppConfig):
    """Registers the tasks, connects the parts' "work is due" signals to them, keeps the beat rows."""

    name = "tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import grid, hub, inputs, planning, receivers, telemetry  # noqa: F401  register the tasks, connect the receivers
        from .periodic import sync_after_migrate

        post_migrate.connect(sync_after_migrate, dispatch_uid="tasks.sync_periodic_tasks")
