"""Inputs that arrive by themselves: the drop-folder importer and forecast scoring (queue `default`).

Forecasts themselves are made inside the planning tasks, right before the run that needs them
(flexibility.planning.services.runs.ensure_forecasts).
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings

from devices.models import Home
from devices.signal_ingest import import_path
from flexibility.forecasting import services as forecasting
from energy_manager import clock


@shared_task(name="tasks.inputs.import_signal_folder")
def import_signal_folder() -> dict:
    """Import every document in SIGNAL_IMPORT_DIR; each moves to imported/ or rejected/ (with its error)."""
    if not settings.SIGNAL_IMPORT_DIR:
        return {"imported": 0, "rejected": []}
    outcomes = import_path(Path(settings.SIGNAL_IMPORT_DIR), move=True)
    return {"imported": sum(o.error is None for o in outcomes), "rejected": [o.error for o in outcomes if o.error]}


@shared_task(name="tasks.inputs.score_forecasts")
def score_forecasts(day: str | None = None) -> int:
    """Score each home's forecasts for `day` (default: yesterday, UTC date); returns rows written."""
    target = date.fromisoformat(day) if day else clock.now().date() - timedelta(days=1)
    return sum(len(forecasting.score_day(home, target)) for home in Home.objects.order_by("id"))
