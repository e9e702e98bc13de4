"""`daedalus run`: the main job. Measure this machine (reference curves and the quick kernel sweep),
validate the simulator against it, predict and write the HTML report, all into results/<run-id>/."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import run_folder as rf
from simulators.errors import ConfigError

from .bench import require_torch


def run(args) -> int:
    require_torch()
    from bench.device import resolve_device

    from .. import pipeline

    results = Path(args.results)
    run_id = rf.check_run_id(args.run_id) if args.run_id else rf.new_run_id("run", results)
    if (results / run_id).exists() and not args.resume:
        raise ConfigError(f"--run-id: {results / run_id} already exists (pass --resume to continue it)")
    dev = resolve_device(args.device, None)
    t0 = time.perf_counter()
    path, _ = pipeline.run_all(results, run_id, dev, resume=args.resume, progress=not args.no_progress)
    sys.stdout.write(f"\nDone in {time.perf_counter() - t0:.0f} s. Report: {path}\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="main job: measure + validate + predict + report into results/<run-id>/")
    p.add_argument("--results", default=str(rf.DEFAULT_RESULTS), metavar="DIR", help="results folder (default: results)")
    p.add_argument("--run-id", default=None, metavar="ID", help="name of the run folder (default: a timestamp)")
    p.add_argument("--device", default="auto", help="auto (cuda, then npu, then cpu), cpu, cuda or npu")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run named by --run-id")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
