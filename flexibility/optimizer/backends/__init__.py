"""Solver backends: `milp` (HiGHS, PuLP/CBC fallback) and `cpsat` (OR-Tools)."""
