"""Forecast error against what was then measured."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Accuracy:
    mae: float
    rmse: float
    bias: float  # mean(forecast - measured): positive = forecast too high
    slots: int


def accuracy(forecast: Sequence[float | None], measured: Sequence[float | None]) -> Accuracy | None:
    """MAE, RMSE and bias over the slots that have both values (None when none has)."""
    pairs = [(f, m) for f, m in zip(forecast, measured, strict=True)
             if f is not None and m is not None and not (math.isnan(f) or math.isnan(m))]
    if not pairs:
        return None
    errors = [f - m for f, m in pairs]
    n = len(errors)
    return Accuracy(mae=sum(abs(e) for e in errors) / n, rmse=math.sqrt(sum(e * e for e in errors) / n),
                    bias=sum(errors) / n, slots=n)
