"""A stored plan carries its reasons; recommendations and the notification use each device's own saving."""
from __future__ import annotations

import re

import pytest

from flexibility.notifications.models import Notification
from flexibility.planning import services
from flexibility.planning.models import Recommendation, Schedule

pytestmark = pytest.mark.django_db


def test_plan_reasons_are_stored_and_savings_are_per_device(home, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = services.submit_run(home)
    schedule = Schedule.objects.get(run=run)
    by_item = {r["item"]: r for r in schedule.reasons}
    assert set(by_item) == set(schedule.devices)
    assert len(schedule.baseline_net_import_kw) == schedule.slots
    recs = list(Recommendation.objects.filter(schedule=schedule).select_related("device"))
    assert len(recs) >= 2, "the standard home's washer and dishwasher start at peak price"
    for rec in recs:
        reason = by_item[f"cycle-{rec.cycle_id}"]
        assert rec.saving_eur == reason["saving_eur"] > 0
        assert reason["text"].startswith(f"{rec.device.name} moved from ")
        assert rec.saving_eur < schedule.savings_eur - 0.01  # one device's share, not the plan's
    note = Notification.objects.get(home=home, kind="plan_changed")
    for rec in recs:
        assert f"{rec.device.name} (saves {rec.saving_eur:.2f} EUR)" in note.message
    assert f"{schedule.savings_eur:.2f}" not in note.message
    assert note.data["savings_eur"][str(recs[0].device_id)] == pytest.approx(recs[0].saving_eur, abs=0.006)
    assert re.fullmatch(r"A new plan changes .+\.", note.message)
