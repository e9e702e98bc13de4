"""`daedalus validate`: measured vs predicted per case and per op family, in both prediction modes
(speed of light; calibrated, scored leave-one-out); fits the run's calibration block."""

from __future__ import annotations

import time
from pathlib import Path

from bench import run_folder as rf

from .. import log
from ..args import add_format, add_results, add_run_id
from ..columns import add_columns
from ..output import emit
from . import COMMAND_HELP

SUMMARY_COLUMNS = ["mode", "subset", "family", "n", "n_noisy", "mdape_pct", "mape_pct", "within_25_pct", "bias"]


def run(args) -> int:
    from .. import pipeline

    t0 = time.perf_counter()
    run_dir = rf.find_run(Path(args.results), args.run_id, need=rf.MEASURED, flag="--run-id")
    v = pipeline.validate(run_dir, args.hardware, args.all_kernels)
    emit(v.summary, args.format, columns=args.columns, default_columns=SUMMARY_COLUMNS)
    for note in v.notes:
        log.get(__name__).info(f"daedalus validate: {note}")
    one = v.cases[v.cases["mode"] == "calibrated"] if "mode" in v.cases else v.cases
    n_noisy = int(one["noisy"].fillna(False).astype(bool).sum()) if "noisy" in one else None
    log.done(f"validated {len(one)} scored cases (calibrated median |error| {v.overall():.1f}%; "
             "validation_cases.csv, validation_summary.csv)", time.perf_counter() - t0, n_noisy, run_dir)
    return 0


def register(sub) -> None:
    p = sub.add_parser("validate", help=COMMAND_HELP["validate"])
    add_run_id(p, "run folder under --results (default: the newest run with measured.csv)")
    add_results(p, str(rf.DEFAULT_RESULTS))
    p.add_argument("--hardware", metavar="NAME|PATH",
                   help="profile to predict with (default: the run's measured profile)")
    p.add_argument("--all-kernels", action="store_true",
                   help="also score the comparison implementations (einsum / SDPA MLA, SDPA enable_gqa / "
                        "repeat_interleave)")
    add_columns(p, SUMMARY_COLUMNS)
    add_format(p)
    p.set_defaults(func=run)
