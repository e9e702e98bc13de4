"""`daedalus validate`: measured vs predicted per case and per op family, in both prediction modes
(speed of light; calibrated, scored leave-one-out); fits the run's calibration block."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import run_folder as rf

from ..args import add_format
from ..output import emit


def run(args) -> int:
    from .. import pipeline

    run_dir = rf.find_run(Path(args.results), args.run, need=rf.MEASURED, flag="--run")
    v = pipeline.validate(run_dir, args.hardware, args.all_kernels)
    emit(v.summary, args.format)
    for note in v.notes:
        sys.stderr.write(f"daedalus validate: {note}\n")
    if args.format == "table":
        sys.stdout.write(f"(cases and summary in {run_dir}/validation_*.csv; calibrated median |error| "
                         f"{v.overall():.1f}%)\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare measured kernel times with the simulator's predictions")
    p.add_argument("--run", help="run id under --results (default: the newest run with measured.csv)")
    p.add_argument("--results", default=str(rf.DEFAULT_RESULTS), help="results folder (default: results)")
    p.add_argument("--hardware", help="profile to predict with (default: the run's measured profile)")
    p.add_argument("--all-kernels", action="store_true",
                   help="also score the comparison implementations (einsum / SDPA MLA, SDPA enable_gqa / "
                        "repeat_interleave)")
    add_format(p)
    p.set_defaults(func=run)
