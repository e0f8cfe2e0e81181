"""Per-feature solve-time cost of issue 14's physics, from `bench.optimizer --random N --per-home` lines.

For F in off min_state negative_prices battery_wear battery_taper capacity_charge:
    python -m bench.optimizer --random 60 --backends auto --per-home --feature F > DIR/F.jsonl
then `python -m bench.physics_cost DIR 60`: one JSON line per feature, comparing every home the feature
changes with the same home without it (p50 / max wall ms, median per-home ratio, homes not proven optimal).
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from tests.factories.random_homes import random_homes

FEATURES = ("min_state", "negative_prices", "battery_wear", "battery_taper", "capacity_charge")


def _load(path: Path) -> dict[str, dict]:
    rows = {}
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            x = json.loads(line)
            if "home" in x:
                rows[x["home"]] = x
    return rows


def main(argv: list[str]) -> int:
    folder, n = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 60
    off = _load(folder / "off.jsonl")
    base = dict(random_homes(n, force=("off",)))
    for f in FEATURES:
        if not (folder / f"{f}.jsonl").exists():
            continue
        on = _load(folder / f"{f}.jsonl")
        homes = dict(random_homes(n, force=(f,)))
        touched = [h for h in homes if homes[h] != base[h] and h in on and h in off]
        if not touched:
            continue
        a, b = [off[h]["ms"] for h in touched], [on[h]["ms"] for h in touched]
        print(json.dumps({
            "feature": f, "homes_touched": len(touched), "p50_ms_off": round(statistics.median(a), 1),
            "p50_ms_on": round(statistics.median(b), 1),
            "median_ratio_on_off": round(statistics.median([y / x for x, y in zip(a, b)]), 2),
            "max_ms_off": max(a), "max_ms_on": max(b),
            "not_optimal_off": sum(off[h]["status"] != "OPTIMAL" for h in touched),
            "not_optimal_on": sum(on[h]["status"] != "OPTIMAL" for h in touched),
            "rejected_on": sum(on[h]["rejected"] for h in touched)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
