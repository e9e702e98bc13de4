"""`daedalus report`: one self-contained HTML report of a benchmark run (figures, validation errors,
measured cases, environment, hardware provenance), written into the run's folder. stdout: the
report's headline table (validation error per prediction mode over all scored cases) and its path."""

from __future__ import annotations

import io
import time
from pathlib import Path

from bench.run_folder import DEFAULT_RESULTS, VALIDATION_SUMMARY, find_run
from simulators.errors import ConfigError
from simulators.safe_load import read_regular_text

from .. import log
from ..args import add_format, add_results, add_run_id, str_list
from ..columns import add_columns
from ..output import emit
from . import COMMAND_HELP

HEADLINE_COLUMNS = ["mode", "n", "n_noisy", "mdape_pct", "mape_pct", "within_25_pct", "bias"]


def headline(run_dir: Path) -> list[dict]:
    """The rows of validation_summary.csv over all scored cases (subset all, family all), one per
    mode; empty when the run has not been validated."""
    import csv

    path = run_dir / VALIDATION_SUMMARY
    if not path.exists():
        return []
    try:
        text = read_regular_text(path)
    except (OSError, ValueError, ConfigError):
        return []  # a damaged summary: the report's own reading of the run names the problem
    rows = [r for r in csv.DictReader(io.StringIO(text, newline=""))
            if r.get("family") == "all" and r.get("subset", "all") == "all"]

    def num(v: str):
        try:
            x = float(v)
        except (TypeError, ValueError):
            return v or None
        return int(x) if x.is_integer() and "." not in v else x

    return [{k: (v if k == "mode" else num(v)) for k, v in r.items() if k not in ("subset", "family")} for r in rows]


def run(args) -> int:
    from daedalus.report.report import write_report  # matplotlib only when needed

    t0 = time.perf_counter()
    run_dir = find_run(Path(args.results), args.run_id, flag="--run-id")
    path = write_report(
        run_dir,
        models=str_list(args.model, []) or None,
        hardware=str_list(args.hardware, []) or None,
        breakdown_model=args.breakdown_model,
        breakdown_hardware=args.breakdown_hardware,
        out_dir=args.out,
    )
    rows = headline(run_dir)
    if args.format == "table":
        if rows:
            emit(rows, "table", columns=args.columns, default_columns=HEADLINE_COLUMNS,
                 title=f"{run_dir.name}: validation over all scored cases")
        print(path)
    else:
        emit([{**r, "report": str(path)} for r in rows] or [{"report": str(path)}], args.format, columns=args.columns)
    log.done("report with figures (report.html, figures/)", time.perf_counter() - t0, where=path)
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help=COMMAND_HELP["report"])
    add_run_id(p, "run folder under --results (default: the newest run)")
    add_results(p, str(DEFAULT_RESULTS))
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
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for report.html and figures/ (default: the run folder; with --model, "
                        "--hardware or --breakdown-* the run's own report is kept and the chosen "
                        "selection goes to <run>/custom_report/)")
    add_columns(p, HEADLINE_COLUMNS)
    add_format(p, "headline table")
    p.set_defaults(func=run)
