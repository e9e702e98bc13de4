"""`daedalus validate`: measured vs predicted per case and per op family, two prediction modes."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml

from bench.cases import COMPARISON_KERNELS
from bench.results import DEFAULT_RESULTS, MEASURED_PROFILE, find_run, write_atomic
from bench.validate import calibration_block, cross_validate, fit_all, roofline_inputs, summarise
from simulators.errors import ConfigError
from simulators.hardware import load_profile, resolve_profile

from ..args import add_format
from ..output import emit

KEEP = ["case_id", "kernel", "family", "model", "phase", "batch", "query_len", "context", "dtype", "flop", "bytes"]


def load_measured(run_dir: Path, all_kernels: bool = False) -> pd.DataFrame:
    path = run_dir / "measured.csv"
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{path}: cannot read measured results ({exc})") from None
    missing = [c for c in KEEP + ["median_s", "status"] if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    ok = df[(df["status"] == "ok") & (df["median_s"] > 0) & (df["bytes"] > 0)]
    if not all_kernels:
        ok = ok[~ok["kernel"].isin(COMPARISON_KERNELS)]
    if len(ok) < 5:
        raise ConfigError(f"{path}: only {len(ok)} measured cases with status ok; need at least 5 to validate")
    return ok.reset_index(drop=True)


def validate_run(run_dir: Path, hardware: str | None = None, folds: int = 5,
                 all_kernels: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Writes validation_cases.csv, validation_summary.csv and, for the run's own measured profile,
    the fitted calibration block into hardware_profile.yaml. Returns (cases, summary)."""
    measured = load_measured(run_dir, all_kernels)
    own_profile = run_dir / MEASURED_PROFILE
    if hardware:
        hw = resolve_profile(hardware)
    elif own_profile.exists():
        hw = load_profile(own_profile)
    else:
        hw = resolve_profile("host-cpu")
    rows = roofline_inputs(measured, hw)
    cases = cross_validate(rows, k=folds)
    summary = summarise(cases)
    cols = KEEP + ["mode", "fold", "measured_s", "predicted_s", "error_pct"]
    write_atomic(run_dir / "validation_cases.csv", cases[cols])
    write_atomic(run_dir / "validation_summary.csv", summary)
    if hardware is None and own_profile.exists():
        doc = yaml.safe_load(own_profile.read_text())
        doc["calibration"] = calibration_block(fit_all(rows), run_dir.name)
        write_atomic(own_profile, yaml.safe_dump(doc, sort_keys=False))
        load_profile(own_profile)  # what we wrote must load
    return cases, summary


def run(args) -> int:
    if args.folds < 2:
        raise ConfigError(f"--folds: expected an integer >= 2, got {args.folds}")
    run_dir = find_run(Path(args.results), args.run, need="measured.csv")
    _, summary = validate_run(run_dir, args.hardware, args.folds, args.all_kernels)
    emit(summary, args.format)
    if args.format == "table":
        sys.stdout.write(f"(cases and summary in {run_dir}/validation_*.csv)\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare measured kernel times with the simulator's predictions")
    p.add_argument("--run", help="run id under --results (default: the newest run with measured.csv)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help="results folder (default: results)")
    p.add_argument("--hardware", help="profile to predict with (default: the run's measured profile)")
    p.add_argument("--all-kernels", action="store_true",
                   help="also score the comparison implementations (einsum MLA, SDPA enable_gqa / repeat_interleave)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds for the calibrated mode")
    add_format(p)
    p.set_defaults(func=run)
