from django.apps import AppConfig


class PlanningConfig(AppConfig):
    """Runs, schedules, recommendations, fleet runs, the problem builder and re-planning.

    The label stays "flexibility" (this app's models and migrations were the flexibility app's),
    so tables and migration history carry over unchanged.
    """

    name = "flexibility.planning"
    label = "flexibility"
    verbose_name = "Planning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  subscribes to devices' home_plan_stale
