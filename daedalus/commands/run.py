"""`daedalus run`: the main job. Measure this machine (reference curves and the quick kernel sweep),
validate the simulator against it, predict and write the HTML report, all into results/<run-id>/.
stdout: the headline table (validation error per prediction mode, as `daedalus report` prints it)."""

from __future__ import annotations

import time
from pathlib import Path

from bench import run_folder as rf
from simulators.errors import ConfigError

from .. import log
from ..args import add_device, add_format, add_results, add_resume, add_run_id
from ..columns import add_columns
from ..output import emit
from . import COMMAND_HELP
from .bench import require_torch
from .report import HEADLINE_COLUMNS, headline


def run(args) -> int:
    require_torch()
    from bench.device import resolve_device

    from .. import pipeline

    from bench.run_lock import RunLock

    # every input is checked, and the run folder locked, before the first progress line
    results = rf.check_writable_folder(Path(args.results))
    if args.resume:  # the named run (else the newest) must be one that started: never a fresh run
        run_id = rf.find_run(results, args.run_id or None, need=rf.ENV, flag="--resume").name
    else:
        run_id = rf.check_run_id(args.run_id) if args.run_id else rf.new_run_id("run", results)
    if (results / run_id).exists() and not args.resume:
        raise ConfigError(f"--run-id: {results / run_id} already exists (pass --resume to continue it)")
    rf.check_writable_folder(results / run_id, "--run-id")
    dev = resolve_device(args.device, None)
    t0 = time.perf_counter()
    progress = not args.no_progress and getattr(args, "verbosity", 0) >= 0
    with RunLock(results / run_id, "run"):  # held for the whole pipeline (its steps take it again)
        path, v = pipeline.run_all(results, run_id, dev, resume=args.resume, progress=progress)
    rows = headline(results / run_id)
    emit(rows, args.format, columns=args.columns, default_columns=HEADLINE_COLUMNS,
         title=f"{run_id}: validation over all scored cases" if args.format == "table" else None)
    one = v.cases[v.cases["mode"] == "calibrated"] if "mode" in v.cases else v.cases
    n_noisy = int(one["noisy"].fillna(False).astype(bool).sum()) if "noisy" in one else None
    log.done(f"measured, validated and reported {len(one)} scored cases (report: {path.name})",
             time.perf_counter() - t0, n_noisy, results / run_id)
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help=COMMAND_HELP["run"])
    add_results(p, str(rf.DEFAULT_RESULTS))
    add_run_id(p, "name of the run folder (default: a timestamp)")
    add_device(p)
    add_resume(p, "continue the interrupted run named by --run-id (else the newest)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (-q implies it)")
    add_columns(p, HEADLINE_COLUMNS)
    add_format(p, "summary table")
    p.set_defaults(func=run)
