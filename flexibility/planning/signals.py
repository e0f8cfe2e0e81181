"""Events of planning, for the layers above (grid, tasks) to act on.

Planning never imports Celery tasks: it announces that work is due and the `tasks` app's
receivers (tasks/receivers.py) send the messages. Signals that ask for a task are sent
after the transaction commits, so a worker always finds the rows.
"""
from __future__ import annotations

from django.dispatch import Signal

# kwargs: run_pk (int), time_limit_s (float). A run was recorded (or re-sent) and needs solving.
run_enqueued = Signal()

# kwargs: home_id (int), reason (str), countdown_s (float). A debounced re-plan of the home is due.
replan_due = Signal()

# kwargs: fleet_pk (int), home_ids (list[int]). One chunk of a day-ahead fan-out is ready to submit.
fleet_chunk_due = Signal()

# kwargs: home_ids (list[int]), now (ISO str). One chunk of a rolling re-planning tick is ready to check.
rolling_chunk_due = Signal()

# kwargs: schedules (list[Schedule], each with its run). Sent inside the transaction that stored them.
schedules_stored = Signal()

# kwargs: home (Home), now (datetime). Asked when a re-plan chooses its horizon: each receiver answers when
# the home's last open request it knows of ends (an aware datetime), or None. Planning itself knows cycles
# and EV sessions; grid answers for its activations.
open_request_end = Signal()

# kwargs: home_ids (list[int]), start (datetime), end (datetime). Asked when plans are built and again when
# they are stored: each receiver answers, per home id, the net-import bounds the home has committed to over
# that span, as a list of {"start", "resolution_minutes", "min_kw", "max_kw"} (null = free slot), or None.
# Grid answers for the activation shares the homes were planned to follow, so no plan silently drops them.
committed_bounds = Signal()
