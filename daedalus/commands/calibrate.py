"""`daedalus calibrate`: the reference rows only (GEMM rate curve by rows per dtype, read bandwidth by
working set, dispatch time per op), and results/<run-id>/hardware_profile.yaml (status: measured)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from simulators.errors import ConfigError

from .. import log
from ..args import add_format
from ..columns import add_columns
from ..output import emit
from ..views import BENCH_ALL, CALIBRATE_COLUMNS, bench_rows, blank_not_applicable, calibrate_summary
from . import COMMAND_HELP
from .bench import add_common, pick_run, require_torch, show_progress

ROW_COLUMNS = [c for c in BENCH_ALL if c not in ("model", "phase", "batch", "query_len", "context")] + ["status"]


def reference_view(ref, fmt: str, columns: list[str] | None) -> list[dict]:
    """The table people read: one row per reference kernel and dtype (not every timed size); with
    --columns, or as csv / json, every reference row (all of its fields)."""
    if fmt == "table" and not columns:
        return calibrate_summary(ref)
    rows = bench_rows(ref)
    return blank_not_applicable(rows) if fmt == "table" else rows


def run(args) -> int:
    require_torch()
    from bench import run_folder as rf
    from bench.device import resolve_device
    from simulators.hardware import load_profile

    from .. import pipeline

    dev = resolve_device(args.device, args.dtype)
    results = rf.check_writable_folder(Path(args.results))
    # an existing --run-id (e.g. a bench run) gets the reference rows added and its profile rebuilt
    existing = bool(args.run_id) and (results / args.run_id / rf.ENV).exists()
    run_id, resuming = pick_run(results, args.run_id, existing)
    sweep = "calibrate-full" if args.full else "calibrate"
    m = pipeline.Measure(pipeline.sweep_cases(dev, sweep), dev, args.budget_s or (1.5 if args.full else 0.5),
                         probe=not args.no_probe, progress=show_progress(args), sweep=sweep)
    t0 = time.perf_counter()
    df = pipeline.measure(results, run_id, m, resume=resuming)
    out_dir = results / run_id
    path = pipeline.write_measured_profile(out_dir, df, dev.kind, pipeline.ORIGINS["calibrate"], m.notes)
    if path is None:
        raise ConfigError(f"calibrate: no reference GEMM or read finished (see {out_dir / rf.MEASURED})")
    ref = df[df["role"] == "reference"] if "role" in df else df
    emit(reference_view(ref, args.format, args.columns), args.format, columns=args.columns,
         default_columns=CALIBRATE_COLUMNS)
    hw = load_profile(path)
    if args.format == "table":
        peaks = ", ".join(f"{dt} {v.value / 1e9:.1f} GFLOP/s" for dt, v in hw.peak_flop_per_s.items())
        sys.stdout.write(f"\npeak: {peaks}; memory bandwidth {hw.memory_bandwidth_bytes_per_s.value / 1e9:.1f} GB/s\n")
        sys.stdout.write(f"hardware profile: {path}  (use: daedalus bench --hardware {path}; every timed size: "
                         "--format csv or --columns all)\n")
    n_noisy = int(ref["noisy"].fillna(False).astype(bool).sum()) if "noisy" in ref else 0
    log.done(f"{len(ref)} reference cases, hardware profile {path.name}", time.perf_counter() - t0, n_noisy,
             out_dir)
    return 0


def register(sub) -> None:
    p = sub.add_parser("calibrate", help=COMMAND_HELP["calibrate"])
    add_common(p)
    p.add_argument("--full", action="store_true", help="larger GEMMs and longer timing (default: ~20 s on 2 cores)")
    p.add_argument("--budget-s", type=float, default=None, help="timing budget per case in seconds")
    p.add_argument("--no-probe", action="store_true", help="skip the noise probe before each case")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (-q implies it)")
    add_columns(p, CALIBRATE_COLUMNS)
    add_format(p, "summary")
    p.set_defaults(func=run)
