"""Events of grid flexibility that ask for work; the `tasks` app's receivers send the messages."""
from __future__ import annotations

from django.dispatch import Signal

# kwargs: home_ids (list[int]), delivery_day (date). After commit: build the homes' offers for the day.
offer_build_due = Signal()

# kwargs: share_pks (list[int]). After commit: re-plan the shares' homes under the activation's bounds.
share_replan_due = Signal()
