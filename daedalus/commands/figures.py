"""`daedalus figures`: draw any shipped figure kind for chosen models and hardware into a folder,
PNG or SVG, without a benchmark run (the measured kinds read an existing run: --run-id)."""

from __future__ import annotations

import time
from pathlib import Path

from simulators.errors import ConfigError

from .. import log
from ..args import NEWEST_RUN, add_hardware, add_models, add_results, add_run_id, models_from, profiles_from, str_list
from . import COMMAND_HELP

DEFAULT_MODELS = ["deepseek-v3", "kimi-k2", "deepseek-v2", "llama-3.1-405b", "qwen2.5-72b"]
DEFAULT_HARDWARE = ["h100-sxm", "h200", "b200", "mi300x"]
DEFAULT_OUT = "figures"
DEFAULT_TPOT_MS = 50.0  # the pareto kind's target: 20 tokens/s per user, an interactive-chat pace


def run(args) -> int:
    from ..report.figures import KINDS, RUN_KINDS, SIM_KINDS, draw

    t0 = time.perf_counter()
    kinds = str_list(args.kind, [])
    if args.kind is not None and not kinds:  # `--kind ''`: refused like `--batch ''`, not "all kinds"
        raise ConfigError("--kind: expected at least one figure kind")
    for k in kinds:
        if k not in KINDS:
            raise ConfigError(f"--kind: unknown figure kind {k!r} (expected one of: {', '.join(KINDS)})")
    run_dir = None
    if args.run_id is not None:
        from bench.run_folder import find_run

        run_dir = find_run(Path(args.results), None if args.run_id is NEWEST_RUN else args.run_id, flag="--run-id")
    kinds = kinds or list(SIM_KINDS) + (list(RUN_KINDS) if run_dir is not None else [])
    if args.tpot_ms is not None and not args.tpot_ms > 0:
        raise ConfigError(f"--tpot-ms: expected a positive number of milliseconds, got {args.tpot_ms:g}")
    tpot_ms = DEFAULT_TPOT_MS if args.tpot_ms is None else args.tpot_ms
    if args.dpi is not None and not 30 <= args.dpi <= 600:
        raise ConfigError(f"--dpi: expected 30 to 600 dots per inch, got {args.dpi}")
    models = models_from(args, DEFAULT_MODELS)
    profiles = profiles_from(args, DEFAULT_HARDWARE)
    written = draw(kinds, models, profiles, Path(args.out), args.image_format or ["png"], run_dir=run_dir,
                   tpot_s=tpot_ms * 1e-3, dpi=args.dpi)
    for p in written:
        print(p)
    log.done(f"{len(written)} figures ({', '.join(kinds)})", time.perf_counter() - t0, where=args.out)
    return 0


def register(sub) -> None:
    from ..report.figures import IMAGE_FORMATS, KINDS, SIM_KINDS  # matplotlib-free module top

    p = sub.add_parser("figures", help=COMMAND_HELP["figures"])
    p.add_argument("--kind", action="append", metavar="KIND",
                   help=f"figure kinds, comma list or repeatable: {', '.join(KINDS)} "
                        f"(default: {', '.join(SIM_KINDS)}; the measured kinds too with --run-id)")
    add_models(p, "default: " + ", ".join(DEFAULT_MODELS) + "; op-breakdown, hardware-comparison and "
               "pareto use the first")
    add_hardware(p, "default: " + ", ".join(DEFAULT_HARDWARE) + "; op-breakdown uses the first")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT}/)")
    p.add_argument("--image-format", action="append", choices=IMAGE_FORMATS,
                   help="png or svg; repeat for both (default: png)")
    p.add_argument("--dpi", type=int, default=None, help="PNG resolution (default 130; 90 for small files)")
    p.add_argument("--tpot-ms", type=float, default=None,
                   help=f"pareto: TPOT target in ms (default {DEFAULT_TPOT_MS:g}, i.e. 20 tokens/s per user)")
    add_run_id(p, "draw the measured kinds (pred-vs-measured, expert-load) from this run; no value: the newest run",
               nargs="?", const=NEWEST_RUN)
    add_results(p)
    p.set_defaults(func=run)
