"""Optimizer benchmark: `python -m bench.optimizer --json` prints one JSON line per (home, backend).

Each line: home, backend, slots, runs, p50_ms / p95_ms of `solve()` wall time
(compile + build + solve + evaluation, problem already parsed), status, cost_eur,
gap, peak_rss_mb (process high-water mark after that line). The envelope of
the standard home is reported as backend "envelope". Homes are documented in
tests/factories/problems.py. Targets (2 cores, one process): standard p50 <= 50 ms,
p95 <= 150 ms; battery_only p50 <= 10 ms; many_cycles <= 1 s; stress <= 0.5 s;
envelope(standard) <= 1 s; peak memory <= 200 MB.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from typing import Any

from tests.factories.problems import HOMES

TARGET_MS = {"standard": 50, "battery_only": 10, "many_cycles": 1000, "thermal": None, "stress": 500}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(homes: list[str], backends: list[str], repeat: int, time_limit_s: float, do_envelope: bool) -> list[dict[str, Any]]:
    from flexibility.optimizer import envelope, problem_from_dict, solve

    # warm up imports (OR-Tools, highspy) outside the timings
    solve(problem_from_dict(HOMES["battery_only"]()), backend="cpsat", time_limit_s=2)
    solve(problem_from_dict(HOMES["battery_only"]()), backend="milp", time_limit_s=2)
    lines = []
    for name in homes:
        p = problem_from_dict(HOMES[name]())
        for backend in backends:
            times, res = [], None
            n = max(3, repeat // 3) if name == "stress" else repeat
            for _ in range(n):
                t = time.perf_counter()
                res = solve(p, backend=backend, time_limit_s=time_limit_s)
                times.append((time.perf_counter() - t) * 1000)
            assert res is not None
            lines.append({
                "home": name, "backend": res.backend, "slots": p.grid.slots, "runs": n,
                "p50_ms": round(statistics.median(times), 1), "p95_ms": round(_pct(times, 0.95), 1),
                "status": res.status.value, "cost_eur": None if res.cost_eur is None else round(res.cost_eur, 6),
                "gap": res.stats.gap, "target_p50_ms": TARGET_MS.get(name), "peak_rss_mb": round(_rss_mb(), 1),
            })
            print(json.dumps(lines[-1]), flush=True)
    if do_envelope:
        p = problem_from_dict(HOMES["standard"]())
        times = []
        env = None
        for _ in range(max(3, repeat // 3)):
            t = time.perf_counter()
            env = envelope(p, time_limit_s=10)
            times.append((time.perf_counter() - t) * 1000)
        assert env is not None
        lines.append({"home": "standard", "backend": "envelope", "slots": p.grid.slots, "runs": len(times),
                      "p50_ms": round(statistics.median(times), 1), "p95_ms": round(_pct(times, 0.95), 1),
                      "status": env.status.value, "cost_eur": env.plan_cost_eur, "lp_solves": env.stats["lp_solves"],
                      "target_p50_ms": 1000, "peak_rss_mb": round(_rss_mb(), 1)})
        print(json.dumps(lines[-1]), flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.optimizer", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per line (default: also a table)")
    ap.add_argument("--homes", nargs="*", default=list(HOMES), choices=list(HOMES))
    ap.add_argument("--backends", nargs="*", default=["milp", "cpsat", "auto"])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--no-envelope", action="store_true")
    args = ap.parse_args(argv)
    lines = run(args.homes, args.backends, args.repeat, args.time_limit, not args.no_envelope)
    if not args.json:
        print(f"\n{'home':<14}{'backend':<12}{'p50 ms':>9}{'p95 ms':>9}  {'status':<10}{'cost EUR':>10}{'RSS MB':>8}",
              file=sys.stderr)
        for x in lines:
            print(f"{x['home']:<14}{x['backend']:<12}{x['p50_ms']:>9}{x['p95_ms']:>9}  {x['status']:<10}"
                  f"{x['cost_eur'] if x['cost_eur'] is not None else '-':>10}{x['peak_rss_mb']:>8}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
