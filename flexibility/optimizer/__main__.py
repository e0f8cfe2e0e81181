"""Command line: `python -m flexibility.optimizer solve|envelope problem.json [--backend ...] [--time-limit S]`.

Prints the result as JSON on stdout. Bad JSON or an invalid field prints one
line naming the field on stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from .problem import ProblemError, problem_from_dict
from .portfolio import BACKENDS


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flexibility.optimizer", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("solve", "envelope"))
    ap.add_argument("problem", help="problem JSON file, or - for stdin")
    ap.add_argument("--backend", default="auto", choices=[b for b in BACKENDS])
    ap.add_argument("--time-limit", type=float, default=5.0, help="seconds (whole call)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--indent", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        text = sys.stdin.read() if args.problem == "-" else open(args.problem, encoding="utf-8").read()
    except OSError as exc:
        return _fail(f"{args.problem}: {exc.strerror}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _fail(f"{args.problem}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    try:
        problem = problem_from_dict(data)
    except ProblemError as exc:
        return _fail(str(exc))
    if args.time_limit <= 0:
        return _fail("--time-limit: must be > 0")
    if args.command == "solve":
        from .solve import solve

        out = solve(problem, backend=args.backend, time_limit_s=args.time_limit, threads=args.threads).to_dict()
    else:
        from .envelope_solver import envelope

        out = envelope(problem, time_limit_s=args.time_limit, backend=args.backend).to_dict()
    json.dump(out, sys.stdout, indent=args.indent)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
