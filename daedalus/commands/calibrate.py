"""`daedalus calibrate`: the reference rows only (GEMM rate curve by rows per dtype, read bandwidth by
working set, dispatch time per op), and results/<run-id>/hardware_profile.yaml (status: measured)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from simulators.errors import ConfigError

from ..output import emit
from .bench import add_common, pick_run, require_torch

SUMMARY_COLUMNS = ["kernel", "dtype", "m", "n", "k", "n_bytes", "median_s", "cv", "achieved_flop_per_s",
                   "achieved_bytes_per_s", "status"]


def run(args) -> int:
    require_torch()
    from bench import run_folder as rf
    from bench.device import resolve_device
    from simulators.hardware import load_profile

    from .. import pipeline

    dev = resolve_device(args.device, args.dtype)
    results = Path(args.results)
    # an existing --run-id (e.g. a bench run) gets the reference rows added and its profile rebuilt
    existing = bool(args.run_id) and (results / args.run_id / rf.ENV).exists()
    run_id, resuming = pick_run(results, args.run_id, args.run_id if existing else None)
    sweep = "calibrate-full" if args.full else "calibrate"
    m = pipeline.Measure(pipeline.sweep_cases(dev, sweep), dev, args.budget_s or (1.5 if args.full else 0.5),
                         probe=not args.no_probe, progress=not args.no_progress, sweep=sweep)
    t0 = time.perf_counter()
    df = pipeline.measure(results, run_id, m, resume=resuming)
    out_dir = results / run_id
    path = pipeline.write_measured_profile(out_dir, df, dev.kind, pipeline.ORIGINS["calibrate"], m.notes)
    if path is None:
        raise ConfigError(f"calibrate: no reference GEMM or read finished (see {out_dir / rf.MEASURED})")
    ref = df[df["role"] == "reference"] if "role" in df else df
    emit(ref[SUMMARY_COLUMNS], args.format)
    hw = load_profile(path)
    peaks = ", ".join(f"{dt} {v.value / 1e9:.1f} GFLOP/s" for dt, v in hw.peak_flop_per_s.items())
    sys.stdout.write(f"\npeak: {peaks}; memory bandwidth {hw.memory_bandwidth_bytes_per_s.value / 1e9:.1f} GB/s\n")
    sys.stdout.write(f"hardware profile: {path}  (use: daedalus bench --hardware {path})\n")
    sys.stderr.write(f"daedalus calibrate: {time.perf_counter() - t0:.0f} s; results in {out_dir}\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure GEMM FLOP/s and memory bandwidth; write a hardware profile")
    add_common(p)
    p.add_argument("--full", action="store_true", help="larger GEMMs and longer timing (default: ~20 s on 2 cores)")
    p.add_argument("--budget-s", type=float, default=None, help="timing budget per case in seconds")
    p.add_argument("--no-probe", action="store_true", help="skip the noise probe before each case")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="summary format")
    p.set_defaults(func=run)
