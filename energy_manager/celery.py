"""The one Celery app of the project; tasks live in the `tasks` app."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")

app = Celery("energy_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks register when Django sets up: the `tasks` app imports its modules in TasksConfig.ready
# (Celery's Django fixup runs django.setup() in every worker).
