"""Household energy scheduler: pure Python (no Django), OR-Tools CP-SAT and HiGHS/PuLP backends.

    from flexibility.optimizer import problem_from_dict, solve, envelope
    result = solve(problem_from_dict(d), backend="auto", time_limit_s=5.0)
    result.to_dict()  # JSON contract, see README.md
"""
from .baseline import baseline, baseline_schedule
from .envelope_solver import envelope
from .evaluate import evaluate
from .problem import (PV, Battery, EVSession, GridRequest, Interval, Objective, Phase, Problem, ProblemError,
                      ShiftableCycle, Site, ThermalStorage, TimeGrid, problem_from_dict, problem_to_dict)
from .result import Envelope, EnvelopeSlot, Evaluation, Schedule, SolveResult, Status, Violation
from .portfolio import BACKENDS, choose_backend
from .solve import solve

__all__ = [
    "BACKENDS", "PV", "Battery", "EVSession", "Envelope", "EnvelopeSlot", "Evaluation", "GridRequest", "Interval",
    "Objective", "Phase", "Problem", "ProblemError", "Schedule", "ShiftableCycle", "Site", "SolveResult", "Status",
    "ThermalStorage", "TimeGrid", "Violation", "baseline", "baseline_schedule", "choose_backend", "envelope",
    "evaluate", "problem_from_dict", "problem_to_dict", "solve",
]
