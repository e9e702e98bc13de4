"""`daedalus run`: the main job. Calibrate this machine, run the quick kernel benchmark, validate the
simulator against it and write the HTML report, all into one folder results/<run-id>/."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.results import DEFAULT_RESULTS, new_run_id
from simulators.errors import ConfigError


def _step(title: str, argv: list[str]) -> None:
    from ..cli import main

    sys.stderr.write(f"\n== {title}: daedalus {' '.join(argv)}\n")
    t0 = time.perf_counter()
    code = main(argv)
    if code:
        raise SystemExit(code)
    sys.stderr.write(f"== {title}: done in {time.perf_counter() - t0:.0f} s\n")


def run(args) -> int:
    results = Path(args.results)
    run_id = args.run_id or new_run_id()
    if (results / run_id).exists() and not args.resume:
        raise ConfigError(f"--run-id: {results / run_id} already exists (pass --resume to continue it)")
    common = ["--results", str(results), "--device", args.device]
    t0 = time.perf_counter()
    quiet = ["--no-progress"] if args.no_progress else []
    resume = ["--resume", run_id] if args.resume else ["--run-id", run_id]
    _step("1/4 benchmark (quick sweep)", ["bench", "--quick", *common, *quiet, *resume])
    _step("2/4 calibrate (GEMM and streaming peaks -> measured profile)",
          ["calibrate", *common, *quiet, "--run-id", run_id])
    _step("3/4 validate (measured vs predicted)", ["validate", "--results", str(results), "--run", run_id])
    _step("4/4 report", ["report", "--results", str(results), "--run", run_id])
    report = results / run_id / "report.html"
    sys.stdout.write(f"\nDone in {time.perf_counter() - t0:.0f} s. Report: {report}\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="main job: benchmark + calibrate + validate + report into results/<run-id>/")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), metavar="DIR", help="results folder (default: results)")
    p.add_argument("--run-id", default=None, metavar="ID", help="name of the run folder (default: a timestamp)")
    p.add_argument("--device", default="auto", help="auto (cuda, then npu, then cpu), cpu, cuda or npu")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run named by --run-id")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
