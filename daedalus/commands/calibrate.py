"""`daedalus calibrate`: measure this machine's achievable GEMM FLOP/s (per dtype, square and skinny)
and streaming bandwidth, and write results/<run-id>/hardware_profile.yaml (status: measured)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from simulators.errors import ConfigError

from ..output import emit
from .bench import add_common, pick_run, require_torch

SUMMARY_COLUMNS = ["kernel", "dtype", "m", "n", "k", "n_bytes", "median_s", "cv", "achieved_flop_per_s",
                   "achieved_bytes_per_s", "status"]
SLOW_DTYPE_FRACTION = 0.25  # a CPU dtype below this fraction of fp32 at n=512 is not timed at larger sizes


def run(args) -> int:
    require_torch()
    import json

    from bench.calibration import build_profile, write_profile
    from bench.cases import calibration_cases
    from bench.device import resolve_device, stream_bytes
    from bench.run import FILES, run_cases
    from bench.timing import TimingConfig

    dev = resolve_device(args.device, args.dtype)
    results = Path(args.results)
    # an existing --run-id (e.g. a bench run) gets the calibration rows added and its profile replaced
    existing = bool(args.run_id) and (results / args.run_id / FILES["env"]).exists()
    run_id, resuming = pick_run(results, args.run_id, args.run_id if existing else None)
    cases = calibration_cases(dev.kind, stream_bytes(dev), quick=not args.full)
    timing = TimingConfig(budget_s=args.budget_s or (0.5 if not args.full else 1.5))
    first = [c for c in cases if not (dev.kind == "cpu" and c.dtype != "fp32" and c.m > 512)]
    later = [c for c in cases if c not in first]
    kw = dict(timing=timing, probe=not args.no_probe, progress=not args.no_progress,
              env_extra={} if existing else {"sweep": "calibrate-full" if args.full else "calibrate"})
    t0 = time.perf_counter()
    df = run_cases(first, dev, results, run_id, resume=resuming, **kw)
    notes = []
    if later:  # CPU reduced-precision GEMMs: larger sizes only where the n=512 probe says it is fast
        sq = df[(df["status"] == "ok") & (df["kernel"] == "gemm") & (df["m"] == df["n"]) & (df["n"] == df["k"])]
        fp32 = sq.loc[sq["dtype"] == "fp32", "achieved_flop_per_s"].max()
        for dt in sorted({c.dtype for c in later}):
            rate = sq.loc[sq["dtype"] == dt, "achieved_flop_per_s"].max()
            if rate == rate and rate >= SLOW_DTYPE_FRACTION * fp32:
                df = run_cases([c for c in later if c.dtype == dt], dev, results, run_id, resume=True, **kw)
            else:
                notes.append(f"{dt} GEMM at n=512 ran at {rate / 1e9:.3g} GFLOP/s (< {SLOW_DTYPE_FRACTION:g} x fp32): "
                             "larger sizes not timed")
    wall_s = time.perf_counter() - t0
    out_dir = results / run_id
    env = json.loads((out_dir / FILES["env"]).read_text())
    name = "host-measured" if dev.kind == "cpu" else f"{dev.kind}-measured"
    try:
        prof = build_profile(df, run_id, env, name=name, extra_notes=notes)
    except RuntimeError as exc:
        raise ConfigError(f"calibrate: {exc} (see {out_dir / FILES['measured']})") from None
    path = write_profile(prof, out_dir)
    emit(df[SUMMARY_COLUMNS], args.format)
    bw = prof["memory_bandwidth_bytes_per_s"]["value"]
    peaks = ", ".join(f"{dt} {v['value'] / 1e9:.1f} GFLOP/s" for dt, v in prof["peak_flop_per_s"].items())
    sys.stdout.write(f"\npeak: {peaks}; memory bandwidth {bw / 1e9:.1f} GB/s\n")
    sys.stdout.write(f"hardware profile: {path}  (use: daedalus bench --hardware {path})\n")
    sys.stderr.write(f"daedalus calibrate: {wall_s:.0f} s; results in {out_dir}\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure GEMM FLOP/s and memory bandwidth; write a hardware profile")
    add_common(p)
    p.add_argument("--full", action="store_true", help="larger GEMMs and longer timing (default: ~15 s on 2 cores)")
    p.add_argument("--budget-s", type=float, default=None, help="timing budget per case in seconds")
    p.add_argument("--no-probe", action="store_true", help="skip the noise probe before each case")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="summary format")
    p.set_defaults(func=run)
