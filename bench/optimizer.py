"""Optimizer benchmark: `python -m bench.optimizer --json` prints one JSON line per (home, backend).

`--random N` solves N seeded random households (tests/factories/random_homes.py, classes in turn; `--classes`
keeps those of some classes only; `--keep-better` records a served plan that beats a home's best known;
`--first-seed S` takes the homes of seeds S .. S+N-1 instead of 0 .. N-1: homes no backend rule was tuned on) once
each and prints one line per (class, backend): p50 / p95 / max wall ms, how many were not proven OPTIMAL,
the machine's speed before and after the homes (`reference_ms_before` / `_after`: `speed_reference_ms`),
how many were proven INFEASIBLE with an explanation (`infeasible_explained`: the relaxed plan's violations
are the explanation, not a rejected plan), how many plans the evaluator rejected, and the objective gap of the served plan to the best plan known
for that home (bench/results/best_known.json). `--best-known N` recomputes that file: both backends, first
with `--quick-limit` (2 s), then what that did not prove again with the long `--time-limit` (60 s); the better
plan is the best known; it also records where both backends proved optimality and whether they agree within
1e-4, and where both proved the home infeasible.

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

from pathlib import Path

from tests.factories.problems import HOMES

BEST_KNOWN = Path(__file__).resolve().parent / "results" / "best_known.json"

PHYSICS_FEATURES = ("min_state", "negative_prices", "battery_wear", "battery_taper", "capacity_charge")  # issue 14
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


def _gap(value: float, best: float) -> float:
    """Relative excess of `value` over `best`, floored at 1 objective unit (see tests' `agree`)."""
    return (value - best) / max(abs(best), abs(value), 1.0)


def _solve_random(backend: str, time_limit_s: float, homes: list[tuple[str, dict]]):
    from flexibility.optimizer import problem_from_dict, solve

    for name, d in homes:
        p = problem_from_dict(d)
        t = time.perf_counter()
        res = solve(p, backend=backend, time_limit_s=time_limit_s, relaxed=False)
        ms = (time.perf_counter() - t) * 1000
        yield name, res, ms


def run_random(n: int, backends: list[str], time_limit_s: float, per_home: bool,
               feature: str | None = None, classes: tuple[str, ...] = (), keep_better: bool = False,
               first_seed: int = 0) -> list[dict[str, Any]]:
    """`classes`: only the homes of those classes among the first `n` (the same homes as in the full run).
    `keep_better`: a plan the evaluator accepts that beats a home's best known becomes its best known
    (recorded beside the backends' long runs as `<backend>@random`), so later gaps are measured against it."""
    from tests.factories.random_homes import CLASSES, random_homes

    homes = [(name, d) for name, d in random_homes(n, first_seed, force=(feature,) if feature else ())
             if not classes or name.rsplit("-", 1)[0] in classes]
    best = json.loads(BEST_KNOWN.read_text())["homes"] if BEST_KNOWN.exists() else {}
    list(_solve_random("milp", 2, homes[:1])) and list(_solve_random("cpsat", 2, homes[:1]))  # warm imports
    reference = {"reference_ms_before": speed_reference_ms()}
    lines = []
    for backend in backends:
        rows: dict[str, list[dict[str, Any]]] = {c: [] for c in CLASSES}
        for name, res, ms in _solve_random(backend, time_limit_s, homes):
            b = best.get(name)
            obj = res.objective_value
            # an infeasible home comes back with the violations of its relaxed plan and an explanation: that is
            # the explanation working, not a plan the evaluator rejected
            infeasible = res.status.value == "INFEASIBLE"
            row = {"home": name, "backend": res.backend, "ms": round(ms, 1), "status": res.status.value,
                   "objective": obj, "gap": res.stats.gap, "rejected": bool(res.violations) and not infeasible,
                   "infeasible_explained": infeasible and bool(res.explanation),
                   "gap_to_best": None if b is None or obj is None else _gap(obj, b["objective"])}
            rows[name.rsplit("-", 1)[0]].append(row)
            if keep_better and not feature and b is not None and obj is not None and not row["rejected"] \
                    and not infeasible and _gap(obj, b["objective"]) < -1e-9:
                _keep(name, f"{backend}@random", row, time_limit_s)
            if per_home:
                print(json.dumps(row), flush=True)
        everything = [r for c in CLASSES for r in rows[c]]
        reference["reference_ms_after"] = speed_reference_ms()
        for cls, rs in [*rows.items(), ("all", everything)]:
            if not rs:
                continue
            ms = [r["ms"] for r in rs]
            gaps = [r["gap_to_best"] for r in rs if r["gap_to_best"] is not None]
            lines.append({
                "random": n, **({"first_seed": first_seed} if first_seed else {}),
                **({"feature": feature} if feature else {}), "class": cls, "backend": backend, "homes": len(rs),
                "time_limit_s": time_limit_s,
                "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(_pct(ms, 0.95), 1), "max_ms": round(max(ms), 1),
                "not_optimal": sum(r["status"] not in ("OPTIMAL", "INFEASIBLE") for r in rs),
                "infeasible_explained": sum(r["infeasible_explained"] for r in rs),
                "infeasible_unexplained": sum(r["status"] == "INFEASIBLE" and not r["infeasible_explained"] for r in rs),
                "rejected_by_evaluator": sum(r["rejected"] for r in rs),
                "above_best_1e-4": sum(g > 1e-4 for g in gaps),
                "max_gap_to_best": None if not gaps else float(f"{max(gaps):.3g}"),
                "without_best_known": len(rs) - len(gaps), "peak_rss_mb": round(_rss_mb(), 1), **reference,
            })
            print(json.dumps(lines[-1]), flush=True)
    return lines


def speed_reference_ms(runs: int = 9) -> float:
    """Median wall ms of HiGHS on the standard benchmark home (a fixed amount of work, far from any time limit):
    the machine's speed while the random homes ran, measured before and after them. Wall times of two runs compare
    only as far as their references agree (one machine of this kind was twice as fast as another, and a machine
    drifted by 17 % between two runs of the same code; optimizer README, ninth round)."""
    from flexibility.optimizer import problem_from_dict, solve

    p = problem_from_dict(HOMES["standard"]())
    times = []
    for _ in range(runs + 1):  # the first one warms up
        t = time.perf_counter()
        solve(p, backend="milp", time_limit_s=10, explain=False)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times[1:]), 2)


def best_known(n: int, time_limit_s: float, quick_s: float = 2.0) -> dict[str, Any]:
    """Both backends on every random home; the better evaluated plan is the best known.

    Two passes so that 300 homes fit in ~20 min: every (home, backend) first gets `quick_s`; a home that
    neither backend proved OPTIMAL (or INFEASIBLE) in it gets both backends again with the long `time_limit_s`
    (the quick result is kept beside as `<backend>@quick`; its plan counts for the best known too). A home
    one backend proved quickly has its optimum: the other backend's long run would only add an agreement
    check, which `both_optimal_agree` records where both proved. Resumable: the file is rewritten after
    every solve, and a (home, backend) already recorded with the same limits is not solved again."""
    from flexibility.optimizer.backends import cpsat, milp  # noqa: F401  import every solver module up front
    from tests.factories.random_homes import random_homes

    old = json.loads(BEST_KNOWN.read_text()) if BEST_KNOWN.exists() else {}
    same = old.get("time_limit_s") == time_limit_s and old.get("quick_limit_s") == quick_s
    homes_out: dict[str, Any] = old.get("homes", {}) if same else {}
    doc = {"command": f"python -m bench.optimizer --best-known {n} --time-limit {time_limit_s:g} --quick-limit {quick_s:g}",
           "generated": old.get("generated") if same else None,  # when, which code, at what load: by hand
           "time_limit_s": time_limit_s, "quick_limit_s": quick_s, "homes": homes_out}
    homes = random_homes(n)

    def record(name: str, key: str, res: Any, ms: float, limit_s: float) -> None:
        entry = homes_out.setdefault(name, {"backends": {}})
        entry["backends"][key] = {"status": res.status.value, "objective": res.objective_value, "gap": res.stats.gap,
                                  "ms": round(ms), "limit_s": limit_s,
                                  "rejected": bool(res.violations) and res.status.value != "INFEASIBLE"}
        _best_of(entry)
        print(json.dumps({"home": name, "backend": key, **entry["backends"][key]}), flush=True)
        doc["homes"] = dict(sorted(homes_out.items()))
        BEST_KNOWN.parent.mkdir(parents=True, exist_ok=True)
        BEST_KNOWN.write_text(json.dumps(doc, indent=1) + "\n")

    def done(name: str, backend: str) -> bool:
        by = homes_out.get(name, {}).get("backends", {})
        r = by.get(backend)
        proved = any(by.get(b, {}).get("status") in ("OPTIMAL", "INFEASIBLE") for b in ("milp", "cpsat"))
        return r is not None and (proved or r["limit_s"] >= time_limit_s)

    for backend in ("milp", "cpsat"):
        todo = [(name, d) for name, d in homes if backend not in homes_out.get(name, {}).get("backends", {})]
        for name, res, ms in _solve_random(backend, quick_s, todo):
            record(name, backend, res, ms, quick_s)
    for backend in ("milp", "cpsat"):
        todo = [(name, d) for name, d in homes if not done(name, backend)]
        for name, res, ms in _solve_random(backend, time_limit_s, todo):
            homes_out[name]["backends"][f"{backend}@quick"] = homes_out[name]["backends"][backend]
            record(name, backend, res, ms, time_limit_s)
    return doc


def _keep(name: str, key: str, row: dict[str, Any], limit_s: float) -> None:
    """Record a plan better than the best known of home `name` in the results file."""
    doc = json.loads(BEST_KNOWN.read_text())
    entry = doc["homes"][name]
    entry["backends"][key] = {"status": row["status"], "objective": row["objective"], "gap": row["gap"],
                              "ms": round(row["ms"]), "limit_s": limit_s, "rejected": False}
    _best_of(entry)
    BEST_KNOWN.write_text(json.dumps(doc, indent=1) + "\n")


def _best_of(entry: dict[str, Any]) -> None:
    """The best known objective of a home from its per-backend results (an evaluator-clean plan only)."""
    by = entry["backends"]
    ok = {b: r for b, r in by.items() if r["objective"] is not None and not r["rejected"]}
    entry["objective"] = min((r["objective"] for r in ok.values()), default=None)
    entry["by"] = min(ok, key=lambda b: ok[b]["objective"]) if ok else None
    entry["both_infeasible"] = all(by.get(b, {}).get("status") == "INFEASIBLE" for b in ("milp", "cpsat"))
    both = all(b in ok and ok[b]["status"] == "OPTIMAL" for b in ("milp", "cpsat"))
    entry["both_optimal_agree"] = None if not both else abs(_gap(ok["milp"]["objective"], ok["cpsat"]["objective"])) <= 1e-4


def _without(feature: str, d: dict[str, Any]) -> dict[str, Any]:
    """The home with one issue-14 feature switched off (circuits, v2g or heat_pumps)."""
    d = json.loads(json.dumps(d))
    if feature == "circuits":
        d.pop("circuits", None)
    elif feature == "v2g":
        for e in d["ev_sessions"]:
            for k in ("max_discharge_kw", "discharge_efficiency", "min_soc_pct", "export_allowed"):
                e.pop(k, None)
    else:
        gone = {hp["device"] for hp in d.pop("heat_pumps", [])}
        d["circuits"] = [c for c in ({**c, "devices": [x for x in c["devices"] if x not in gone]}
                                     for c in d.get("circuits", [])) if c["devices"]]
    return d


FEATURE_USED = {"circuits": lambda d: bool(d.get("circuits")),
                "v2g": lambda d: any(e.get("max_discharge_kw") for e in d["ev_sessions"]),
                "heat_pumps": lambda d: bool(d.get("heat_pumps"))}


def feature_cost(n: int, backend: str, time_limit_s: float) -> list[dict[str, Any]]:
    """Issue 14 items 3-5: per feature, the random homes (of the first `n`) that use it, solved with the feature
    and with it switched off: wall-time percentiles and how many were not proven, both ways."""
    from tests.factories.random_homes import random_homes

    homes = random_homes(n)
    list(_solve_random("milp", 2, homes[:1])) and list(_solve_random("cpsat", 2, homes[:1]))  # warm imports
    lines = []
    for feature, used in FEATURE_USED.items():
        chosen = [(name, d) for name, d in homes if used(d)]
        if not chosen:
            continue
        line: dict[str, Any] = {"feature": feature, "random": n, "homes": len(chosen), "backend": backend,
                                "time_limit_s": time_limit_s}
        for label, todo in (("with", chosen), ("without", [(nm, _without(feature, d)) for nm, d in chosen])):
            ms, not_optimal, rejected = [], 0, 0
            for _name, res, t in _solve_random(backend, time_limit_s, todo):
                ms.append(t)
                not_optimal += res.status.value != "OPTIMAL"
                rejected += bool(res.violations)
            line.update({f"{label}_p50_ms": round(statistics.median(ms), 1),
                         f"{label}_p95_ms": round(_pct(ms, 0.95), 1), f"{label}_max_ms": round(max(ms), 1),
                         f"{label}_not_optimal": not_optimal, f"{label}_rejected": rejected})
        lines.append(line)
        print(json.dumps(line), flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.optimizer", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per line (default: also a table)")
    ap.add_argument("--homes", nargs="*", default=list(HOMES), choices=list(HOMES))
    ap.add_argument("--backends", nargs="*", default=["milp", "cpsat", "auto"])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--no-envelope", action="store_true")
    ap.add_argument("--random", type=int, metavar="N", help="N random households (per-class summary lines)")
    ap.add_argument("--per-home", action="store_true", help="with --random: also one line per home")
    ap.add_argument("--first-seed", type=int, default=0, metavar="S",
                    help="with --random: the homes of seeds S .. S+N-1 (best known exists for seeds below 300 only)")
    ap.add_argument("--classes", nargs="*", default=[], metavar="CLASS",
                    help="with --random: only the homes of these classes (tests/factories/random_homes.py CLASSES)")
    ap.add_argument("--feature", choices=["off", *PHYSICS_FEATURES],
                    help="with --random: issue 14's feature switched on wherever the home has the device, or 'off' "
                         "for none (the reference its solve-time cost is measured against)")
    ap.add_argument("--best-known", type=int, metavar="N", help=f"recompute {BEST_KNOWN.name} for N random homes")
    ap.add_argument("--keep-better", action="store_true",
                    help=f"with --random: a served plan better than a home's best known goes into {BEST_KNOWN.name}")
    ap.add_argument("--quick-limit", type=float, default=2.0,
                    help="with --best-known: first pass limit; only what it does not prove gets --time-limit")
    ap.add_argument("--feature-cost", type=int, metavar="N",
                    help="issue 14: solve-time cost of V2G, shared circuits and space heating on the first N homes")
    args = ap.parse_args(argv)
    if args.feature_cost:
        feature_cost(args.feature_cost, args.backends[0] if args.backends != ["milp", "cpsat", "auto"] else "auto",
                     args.time_limit)
        return 0
    if args.best_known:
        best_known(args.best_known, args.time_limit if args.time_limit != 10.0 else 60.0, args.quick_limit)
        return 0
    if args.random:
        backends = args.backends if args.backends != ["milp", "cpsat", "auto"] else ["auto"]
        if args.first_seed < 0:
            ap.error("--first-seed: must be 0 or more")
        run_random(args.random, backends, args.time_limit, args.per_home, args.feature, tuple(args.classes),
                   args.keep_better, args.first_seed)
        return 0
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
