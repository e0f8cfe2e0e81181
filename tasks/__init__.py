"""Celery tasks. Each module is a queue's worth of work; tasks call services.

Importing this package registers every task with the project's Celery app.
"""
from . import flex  # noqa: E402,F401  grid flexibility (issue 6)
from . import optimization  # noqa: E402,F401  optimization runs (issue 4)
from . import periodic  # noqa: E402,F401  day-ahead fan-out, reaper (issue 4)
from . import hub  # noqa: E402,F401  hub relay (issue 5)
from . import inputs  # noqa: E402,F401  importers, forecasts and their scoring
