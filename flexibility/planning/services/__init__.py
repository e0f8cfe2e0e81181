"""Planning's writing actions, one module per concern.

- runs: record, solve and store a run (the run lifecycle)
- dispatch: a stored schedule -> recommendations, hub commands, a notification; accept / decline
- fleet: the day-ahead fan-out per time zone, in chunks planned inside their task
- reaper: re-send runs a lost message or a killed worker left behind
- replanning: debounced re-planning of a home whose plan went stale
- rolling: the rolling re-planning tick (homes whose measured state left the plan)
"""
from .dispatch import accept_recommendation, decline_recommendation
from .fleet import plan_fleet_chunk, refresh_fleet_summaries, start_day_ahead, start_due_day_ahead
from .reaper import reap_stuck_runs
from .replanning import reoptimize, schedule_reoptimization
from .runs import (
    MAX_TIME_LIMIT_S, describe_exception, enqueue_run, execute_run, fail_run, solve_problem, store_outcomes, store_result,
    submit_run,
)

__all__ = [
    "MAX_TIME_LIMIT_S", "accept_recommendation", "decline_recommendation", "describe_exception", "enqueue_run",
    "execute_run", "fail_run", "plan_fleet_chunk", "reap_stuck_runs", "refresh_fleet_summaries", "reoptimize",
    "schedule_reoptimization", "solve_problem", "start_day_ahead", "start_due_day_ahead", "store_outcomes", "store_result",
    "submit_run",
]
