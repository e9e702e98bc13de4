"""`daedalus bench`: measured microbenchmarks of the MLA, attention and MoE kernels (plus GEMM and
copy) on cpu / cuda / npu, written to results/<run-id>/.

torch is imported only when the command runs, so the other commands work without it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from simulators.errors import ConfigError

from .. import log
from ..args import BENCH_DTYPES, add_device, add_format, add_results, add_resume, add_run_id
from ..columns import add_columns
from ..output import emit
from ..views import BENCH_COLUMNS, bench_rows, blank_not_applicable
from . import COMMAND_HELP

ROOFLINE_SUMMARY = ["bound", "fraction_of_roofline", "fraction_of_peak_flop", "fraction_of_bandwidth"]
TORCH_PIN = "torch==2.13.0"  # the version the tests and results/reference were made with
TORCH_HINT = (f"pip install {TORCH_PIN} --index-url https://download.pytorch.org/whl/cpu "
              "(the CPU wheel is enough; plain `pip install torch` pulls the multi-GB CUDA build)")


def resolve_hardware(name: str | None):
    if not name:
        return None
    from simulators.hardware import resolve_profile

    try:
        return resolve_profile(name)
    except ConfigError as exc:
        raise ConfigError(f"--hardware: {exc}") from None


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError(f"daedalus bench / calibrate / run need torch: {TORCH_HINT}") from None


def pick_run(results: Path, run_id: str | None, resume: bool) -> tuple[str, bool]:
    """(run id, resuming?) from --run-id / --resume (the run named by --run-id, else the newest)."""
    from bench import run_folder as rf

    if resume:
        return rf.find_run(results, run_id or None, need=rf.ENV, flag="--resume").name, True
    if run_id:
        rf.check_run_id(run_id)
        if any((results / run_id / name).exists() for name in (rf.MEASURED, "cases.jsonl")):
            raise ConfigError(f"--run-id: run {run_id!r} already exists under {results}; use --resume {run_id}")
        return run_id, False
    return rf.new_run_id("run", results), False


def stored_sweep(results: Path, run_id: str) -> str | None:
    from bench.run_folder import read_env

    return read_env(results / run_id).get("sweep")


def add_common(p) -> None:
    add_device(p)
    p.add_argument("--dtype", type=str.lower, choices=BENCH_DTYPES, default=None,
                   help="benchmark dtype (default: fp32 on cpu, bf16 on cuda/npu)")
    add_results(p)
    add_run_id(p, "name of the run folder (default: a timestamp)")


def show_progress(args) -> bool:
    return not args.no_progress and getattr(args, "verbosity", 0) >= 0


def run_comm(args) -> int:
    """`daedalus bench --comm`: all-reduce and all-to-all through torch.distributed (gloo between
    local processes on a CPU, NCCL on GPUs; under torchrun each process is one rank)."""
    from bench.comm import launched_by_torchrun, newest_comm_run, run_comm_bench
    from bench.run_folder import check_run_id, check_writable_folder, new_run_id

    if args.world_size < 2:
        raise ConfigError(f"--world-size: a collective needs at least 2 ranks, got {args.world_size}")
    results = check_writable_folder(Path(args.results))
    if args.resume and not args.run_id:
        out_dir = newest_comm_run(results)
    else:
        out_dir = results / (check_run_id(args.run_id) if args.run_id else new_run_id("comm", results))
        if args.resume and not out_dir.is_dir():
            raise ConfigError(f"--resume: no run {out_dir.name!r} in {results}/")
    check_writable_folder(out_dir, "--run-id")
    t0 = time.perf_counter()
    df = run_comm_bench(out_dir, args.world_size, quick=args.quick or not args.full, resume=args.resume)
    if launched_by_torchrun() and int(os.environ.get("RANK", "0")) != 0:
        return 0
    cols = ["collective", "world_size", "backend", "bytes", "median_s", "algbw_bytes_per_s", "busbw_bytes_per_s",
            "correct"]
    emit(df, args.format, columns=args.columns, default_columns=cols)
    log.done(f"{len(df)} collective cases (comm.csv, comm_compare*.csv: measured vs the communication model)",
             time.perf_counter() - t0, where=out_dir)
    return 0 if bool(df["correct"].all()) else 1


def run(args) -> int:
    if args.quick and args.full:
        raise ConfigError("--quick / --full: choose one sweep")
    require_torch()
    if args.comm and args.balancing:
        raise ConfigError("--comm / --balancing: choose one measurement")
    if args.comm:
        return run_comm(args)
    if args.balancing:
        from bench.device import resolve_device
        from bench.run_folder import check_run_id, new_run_id

        from .bench_balancing import run_balancing

        dev = resolve_device(args.device, args.dtype)
        run_id = check_run_id(args.run_id) if args.run_id else new_run_id("balancing", Path(args.results))
        return run_balancing(args, dev, run_id)
    from bench import run_folder as rf
    from bench.device import resolve_device
    from bench.roofline import roofline_frame
    from simulators.hardware import load_profile

    from .. import pipeline

    dev = resolve_device(args.device, args.dtype)
    hw = resolve_hardware(args.hardware)
    if args.max_cases is not None and args.max_cases < 1:
        raise ConfigError(f"--max-cases: expected a positive integer, got {args.max_cases}")
    if args.budget_s is not None and args.budget_s <= 0:
        raise ConfigError(f"--budget-s: expected seconds > 0, got {args.budget_s}")
    from bench.run_lock import RunLock

    results = rf.check_writable_folder(Path(args.results))
    run_id, resuming = pick_run(results, args.run_id, args.resume)
    rf.check_writable_folder(results / run_id, "--run-id")
    stored = stored_sweep(results, run_id) if resuming else None
    if resuming and not (args.quick or args.full) and stored not in ("quick", "full"):
        raise ConfigError(f"--resume: {results / run_id / rf.ENV} does not say which sweep the run measured "
                          "(missing or unreadable); give --quick or --full")
    sweep = "quick" if args.quick else stored if stored in ("quick", "full") else "full"
    with RunLock(results / run_id, "bench"):  # a run in use is refused before the first progress line
        if sweep == "full" and dev.kind == "cpu":
            log.get(__name__).warning("daedalus bench: the full profile is sized for accelerators; "
                                      "on a CPU use --quick")
        m = pipeline.Measure(pipeline.sweep_cases(dev, sweep), dev,
                             args.budget_s or (0.4 if sweep == "quick" else 1.0), probe=not args.no_probe,
                             progress=show_progress(args), max_cases=args.max_cases, sweep=sweep)
        t0 = time.perf_counter()
        df = pipeline.measure(results, run_id, m, resume=resuming)
        wall_s = time.perf_counter() - t0
    out_dir = results / run_id
    profile_path = pipeline.write_measured_profile(out_dir, df, dev.kind, pipeline.ORIGINS["bench"], m.notes)
    if hw is None and profile_path is not None:
        hw = load_profile(profile_path)
    ok = df[df["status"] == "ok"]
    roof = None
    if hw is not None and not ok.empty:
        roof = roofline_frame(df, hw)
        rf.write_atomic(out_dir / rf.ROOFLINE, roof)
    rows = bench_rows(ok, roof)
    emit(blank_not_applicable(rows) if args.format == "table" else rows, args.format, columns=args.columns,
         default_columns=BENCH_COLUMNS)
    n_skip = int((df["status"] == "skipped").sum())
    n_noisy = int(ok["noisy"].fillna(False).astype(bool).sum()) if "noisy" in ok else 0
    where = f"{out_dir}" + (f" (roofline vs {hw.name}: {rf.ROOFLINE})" if hw is not None else "")
    log.done(f"{len(ok) + n_skip} benchmark cases ({len(ok)} ok, {n_skip} skipped)", wall_s, n_noisy, where)
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help=COMMAND_HELP["bench"])
    p.add_argument("--quick", action="store_true", help="small sweep sized for a CPU (~75 s on 2 cores)")
    add_common(p)
    add_resume(p, "continue the run named by --run-id (else the newest), skipping finished cases "
                  "(the older `--resume ID` still works)")
    p.add_argument("--hardware", default=None, metavar="NAME|PATH",
                   help="hardware profile for %% of roofline (default: the run's own measured profile)")
    p.add_argument("--max-cases", type=int, default=None, help="stop after this many new cases")
    p.add_argument("--budget-s", type=float, default=None, help="timing budget per case in seconds")
    p.add_argument("--no-probe", action="store_true", help="skip the noise probe before each case")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (-q implies it)")
    p.add_argument("--comm", action="store_true",
                   help="measure all-reduce / all-to-all with torch.distributed instead of the kernels")
    p.add_argument("--balancing", action="store_true",
                   help="measure DeepSeek-V3's auxiliary-loss-free bias balancing on the bench's MoE router "
                        "(load over steps beside the simulated one) and the layer at skewed vs balanced routing")
    p.add_argument("--routing-skew", type=float, default=1.0,
                   help="--balancing: Zipf-like preference of the skewed token stream (default 1.0)")
    p.add_argument("--world-size", type=int, default=2, help="--comm: local ranks to spawn (ignored under torchrun)")
    p.add_argument("--full", action="store_true",
                   help="the full sweep: the default for kernels (sized for accelerators); with --comm, "
                        "4 KiB ... 64 MiB and longer timing")
    p.add_argument("--full-comm", dest="full", action="store_true", help=argparse.SUPPRESS)  # older spelling
    add_columns(p, BENCH_COLUMNS)
    add_format(p, "summary")
    p.set_defaults(func=run)
