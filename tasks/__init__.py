"""Celery tasks. Each module is a queue's worth of work; tasks call services.

Importing this package registers every task with the project's Celery app.
"""
from . import flex  # noqa: E402,F401  grid flexibility (issue 6)
