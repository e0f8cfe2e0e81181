"""Create the beat rows of settings.PERIODIC_TASKS that are missing (also runs after every migrate)."""
from django.core.management.base import BaseCommand

from tasks.periodic import sync_periodic_tasks


class Command(BaseCommand):
    help = "Create the django-celery-beat rows declared in settings.PERIODIC_TASKS that are missing."

    def handle(self, *args, **options) -> None:
        created = sync_periodic_tasks()
        self.stdout.write(f"created {len(created)} periodic task(s)" + (f": {', '.join(created)}" if created else ""))
