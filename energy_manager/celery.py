"""The one Celery app of the project; tasks live in the `tasks` package."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energy_manager.settings")

app = Celery("energy_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["tasks"], related_name=None, force=True)
