"""`daedalus report`: one self-contained HTML report of a benchmark run (figures, validation errors,
measured cases, environment, hardware provenance), written into the run's folder."""

from __future__ import annotations

from pathlib import Path

from bench.run_folder import DEFAULT_RESULTS, find_run

from ..args import str_list


def run(args) -> int:
    from daedalus.report.report import write_report  # matplotlib only when needed

    run_dir = find_run(Path(args.results), args.run, flag="--run")
    path = write_report(
        run_dir,
        models=str_list(args.model, []) or None,
        hardware=str_list(args.hardware, []) or None,
        breakdown_model=args.breakdown_model,
        breakdown_hardware=args.breakdown_hardware,
    )
    print(path)
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="self-contained HTML report of a benchmark run (figures, errors, provenance)")
    p.add_argument("--run", metavar="RUN_ID", help="run folder name under --results (default: the newest run)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), metavar="DIR",
                   help=f"folder of run folders (default: {DEFAULT_RESULTS})")
    p.add_argument("--model", action="append", metavar="NAME|PATH",
                   help="models of the memory and roofline figures; repeatable or comma list "
                        "(default: deepseek-v3, llama-3.1-405b, qwen2.5-72b, deepseek-v2, deepseek-llm-67b)")
    p.add_argument("--hardware", action="append", metavar="NAME|PATH",
                   help="hardware profiles to simulate; repeatable or comma list "
                        "(default: h100-sxm, h200, b200, mi300x, ascend-910c, host-cpu)")
    p.add_argument("--breakdown-model", default=None, metavar="NAME|PATH",
                   help="model of the per-op breakdown and hardware comparison (default: deepseek-v3)")
    p.add_argument("--breakdown-hardware", default=None, metavar="NAME|PATH",
                   help="hardware of the per-op breakdown (default: h100-sxm)")
    p.set_defaults(func=run)
