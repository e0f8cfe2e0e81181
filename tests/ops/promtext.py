"""Reading Prometheus text pages in tests."""
from __future__ import annotations

import re


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples `name` in a Prometheus text page whose labels include `labels`; None if none."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(got.get(k) == v for k, v in labels.items()):
            total, found = total + float(line.rsplit(" ", 1)[1]), True
    return total if found else None
