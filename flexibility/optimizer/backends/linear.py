"""A minimal sparse linear-model builder that emits to highspy (fast path) or PuLP (portable path).

Why not build with PuLP expressions directly: for a 96-slot home PuLP's
expression objects and its column-by-column hand-over to HiGHS cost more than
the solve itself (see README, "Backends"). Collecting plain arrays and
passing them to HiGHS in one call keeps build time at a few ms; the same
arrays are turned into a PuLP problem when CBC is needed (no highspy) or when
asked for (`via_pulp=True`).
"""
from __future__ import annotations

import math
import os
import sys
import threading
from typing import Sequence

INF = math.inf

_banner_lock = threading.Lock()
_banner_done = False


def new_highs():
    """A silent highspy.Highs (HiGHS prints its banner to fd 1 on the first construction)."""
    global _banner_done
    import highspy

    with _banner_lock:
        if not _banner_done:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _banner_done = True
        else:
            h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


class LinModel:
    """Columns (bounds, cost, integrality) and rows (sparse, two-sided), minimization."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.cost: list[float] = []
        self.integer: list[bool] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []
        self.row_start: list[int] = [0]
        self.row_idx: list[int] = []
        self.row_val: list[float] = []
        self.offset = 0.0

    @property
    def num_cols(self) -> int:
        return len(self.lb)

    @property
    def num_rows(self) -> int:
        return len(self.row_lo)

    def var(self, lb: float = 0.0, ub: float = INF, cost: float = 0.0, integer: bool = False) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.cost.append(cost)
        self.integer.append(integer)
        return len(self.lb) - 1

    def row(self, idx: Sequence[int], val: Sequence[float], lo: float = -INF, hi: float = INF) -> int:
        self.row_idx.extend(idx)
        self.row_val.extend(val)
        self.row_start.append(len(self.row_idx))
        self.row_lo.append(lo)
        self.row_hi.append(hi)
        return len(self.row_lo) - 1

    @property
    def has_integers(self) -> bool:
        return any(self.integer)

    def to_highs(self, time_limit_s: float, threads: int = 1, mip_rel_gap: float = 1e-6, relax: bool = False):
        import highspy
        import numpy as np

        h = new_highs()
        lp = highspy.HighsLp()
        n, m = self.num_cols, self.num_rows
        lp.num_col_ = n
        lp.num_row_ = m
        lp.col_cost_ = np.asarray(self.cost, dtype=float)
        lp.col_lower_ = np.asarray(self.lb, dtype=float)
        lp.col_upper_ = np.asarray(self.ub, dtype=float)
        lp.row_lower_ = np.asarray(self.row_lo, dtype=float)
        lp.row_upper_ = np.asarray(self.row_hi, dtype=float)
        lp.offset_ = self.offset
        a = lp.a_matrix_
        a.format_ = highspy.MatrixFormat.kRowwise
        a.num_col_ = n
        a.num_row_ = m
        a.start_ = np.asarray(self.row_start, dtype=np.int32)
        a.index_ = np.asarray(self.row_idx, dtype=np.int32)
        a.value_ = np.asarray(self.row_val, dtype=float)
        if self.has_integers and not relax:
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                               for i in self.integer]
        h.passModel(lp)
        h.setOptionValue("time_limit", max(0.01, float(time_limit_s)))
        h.setOptionValue("threads", int(threads))
        h.setOptionValue("mip_rel_gap", mip_rel_gap)
        h.setOptionValue("mip_abs_gap", 1e-9)
        h.setOptionValue("random_seed", 0)
        return h

    def to_pulp(self, name: str = "hems"):
        """The same model as a PuLP problem (used for CBC, or for HiGHS via PuLP)."""
        import pulp

        prob = pulp.LpProblem(name, pulp.LpMinimize)
        xs = []
        for j in range(self.num_cols):
            lb = None if self.lb[j] == -INF else self.lb[j]
            ub = None if self.ub[j] == INF else self.ub[j]
            cat = pulp.LpInteger if self.integer[j] else pulp.LpContinuous
            xs.append(pulp.LpVariable(f"x{j}", lowBound=lb, upBound=ub, cat=cat))
        prob += pulp.LpAffineExpression([(xs[j], c) for j, c in enumerate(self.cost) if c != 0.0]) + self.offset
        for i in range(self.num_rows):
            a, b = self.row_start[i], self.row_start[i + 1]
            expr = pulp.LpAffineExpression([(xs[self.row_idx[k]], self.row_val[k]) for k in range(a, b)])
            lo, hi = self.row_lo[i], self.row_hi[i]
            if lo == hi:
                prob += (expr == lo), f"r{i}"
            else:
                if lo != -INF:
                    prob += (expr >= lo), f"r{i}l"
                if hi != INF:
                    prob += (expr <= hi), f"r{i}u"
        return prob, xs


def pulp_solver(time_limit_s: float, threads: int = 1, prefer: str = "highs", gap: float = 1e-6):
    """PuLP's HiGHS (through highspy) if available, else CBC; both silent and time-limited."""
    import pulp

    if prefer == "highs" and pulp.HiGHS().available():
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, threads=threads, gapRel=gap)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, int(math.ceil(time_limit_s))), threads=threads, gapRel=gap)
