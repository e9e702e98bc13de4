"""One run folder, `results/<run-id>/`: every file's name is defined here once, and this module is the
only writer of the run's `hardware_profile.yaml` (the measured peaks from the benchmark, the fitted
calibration block from validation, both merged into one document in one YAML style).

    env.json                 environment of the run (device, lscpu, versions, git), resumes appended
    cases.jsonl              the journal: one fsync'd line per finished case (bench/journal.py); the
                             three tables below are views rebuilt from it
    .lock                    the one writer's lock (bench/run_lock.py)
    measured.csv             one row per benchmark case (status ok or skipped)
    samples.csv              case_id, sample, time_s: every raw timing sample
    expert_load.csv          case_id, expert, tokens: routed tokens per expert of MoE cases
    hardware_profile.yaml    this machine's measured profile (+ `calibration:` once validated)
    roofline.csv             measured rows against the profile's speed-of-light roofline
    validation_cases.csv     measured vs predicted per case, per prediction mode
    validation_summary.csv   error statistics per mode and family
    predicted.csv            the simulator's totals for the report's models x hardware (whole models)
    ops.csv                  the same per op
    memory.csv               KV / weight bytes per model x context for the memory figure
    predicted.json           which models / hardware were simulated, and what could not be
    figures/                 PNG + SVG
    report.html              self-contained report
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from simulators.errors import ConfigError, raise_with_path
from simulators.safe_load import read_regular_text

DEFAULT_RESULTS = Path("results")

ENV = "env.json"
MEASURED = "measured.csv"
SAMPLES = "samples.csv"
EXPERT_LOAD = "expert_load.csv"
PROFILE = "hardware_profile.yaml"
ROOFLINE = "roofline.csv"
VALIDATION_CASES = "validation_cases.csv"
VALIDATION_SUMMARY = "validation_summary.csv"
PREDICTED = "predicted.csv"
PREDICTED_META = "predicted.json"
OPS = "ops.csv"
MEMORY = "memory.csv"
FIGURES = "figures"
REPORT = "report.html"
CUSTOM_REPORT = "custom_report"  # report --model/--hardware: a chosen selection, never over the run's own report

# measured.csv, in this order (the sweep runner writes it; cases.jsonl rows rebuild it)
MEASURED_COLUMNS = [
    "run_id", "case_id", "kernel", "family", "variant", "model", "phase", "batch", "query_len", "context", "tokens",
    "dtype", "cache_state", "m", "n", "k", "n_bytes", "role", "device", "flop", "bytes_read", "bytes_written",
    "bytes", "rows", "n_ops",
    "median_s", "iqr_s", "cv", "min_s", "p90_s", "n_samples", "inner_calls", "achieved_flop_per_s",
    "achieved_bytes_per_s", "distinct_experts", "expected_distinct_experts", "probe_compute_ratio",
    "probe_memory_ratio", "probe_parallel_ratio", "probe_retries", "probe_wait_s", "probe_quiet",
    "probe_read_bytes_per_s", "probe_read_after_bytes_per_s", "probe_read_paired_bytes_per_s",
    "other_cpu_cores", "contention_wait_s", "attempts", "passes", "noisy", "status", "skip_reason", "time_utc",
]

_UMASK = os.umask(0)
os.umask(_UMASK)


def new_run_id(prefix: str = "run", results: Path | None = None) -> str:
    """`<prefix>-YYYYmmdd-HHMMSS`, with -2, -3 ... appended when that folder already exists."""
    run_id = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    i = 1
    while results is not None and (results / (run_id if i == 1 else f"{run_id}-{i}")).exists():
        i += 1
    return run_id if i == 1 else f"{run_id}-{i}"


def check_run_id(run_id: str, flag: str = "--run-id") -> str:
    """A run id is one folder name: no separators, no `.`/`..`, not empty."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", "..") or "\0" in run_id:
        raise ConfigError(f"{flag}: expected a single folder name, got {run_id!r}")
    return run_id


def check_writable_folder(path: Path, flag: str = "--results") -> Path:
    """Refuse (ConfigError) before any work starts a run folder that cannot be one: `path`, or the
    nearest part of it that exists, must be a folder (a file on the way fails only at the first
    write otherwise, after the progress lines have begun)."""
    p = Path(path)
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    if os.path.lexists(p) and not p.is_dir():
        raise ConfigError(f"{flag}: {p} is a file, expected a folder (for {path})")
    return Path(path)


def list_runs(results: Path) -> list[Path]:
    """Run folders (holding env.json or measured.csv), oldest first by when they started."""
    if not results.is_dir():
        return []

    def started(run: Path) -> float | None:
        # env.json is written when a run starts and not touched by validate or report
        for marker in (ENV, MEASURED):
            if (run / marker).exists():
                return (run / marker).stat().st_mtime
        return None

    runs = [(t, p.name, p) for p in results.iterdir() if p.is_dir() and (t := started(p)) is not None]
    return [p for _, _, p in sorted(runs)]


def find_run(results: Path, run_id: str | None, *, need: str | None = None, flag: str = "--run-id") -> Path:
    """The named run, or the newest one (that has file `need`, when given)."""
    runs = list_runs(results)
    if need:
        runs = [r for r in runs if (r / need).exists()]
    what = f" with {need}" if need else ""
    if run_id:
        check_run_id(run_id, flag)
        path = results / run_id
        if path in runs:
            return path
        names = ", ".join(r.name for r in runs[-5:]) or "none"
        raise ConfigError(f"{flag}: no run {run_id!r}{what} in {results}/; recent runs: {names}")
    if not runs:
        raise ConfigError(f"{flag}: no run{what} in {results}/ (run `daedalus bench --quick` first, "
                          "or pass --results DIR)")
    return runs[-1]


def _remove(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:  # never there, or the folder went read-only: the first error is the one to tell
        pass


def write_atomic(path: Path, data: str | bytes | pd.DataFrame) -> Path:
    """Write to a temporary file in the same folder, then rename over `path`: readers never see
    a half-written file and an interrupted write leaves the old one intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # a read-only or full folder: named by the file meant, not the temporary one
        raise_with_path(exc, path, exc.filename)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, pd.DataFrame):
                fh.write(data.to_csv(index=False).encode())
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        raise_with_path(exc, path, tmp)
    return path


def read_env(run_dir: Path) -> dict[str, Any]:
    """env.json of a run ({} when absent or unreadable: callers treat the environment as unknown)."""
    try:
        doc = json.loads(read_regular_text(run_dir / ENV))
    except (OSError, ValueError, RecursionError, ConfigError):
        return {}
    return doc if isinstance(doc, dict) else {}


# ---- the measured hardware profile: one writer ---------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the notes) as literal blocks."""


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)


_Dumper.add_representer(str, _str)

_HEADER = ("# Written by daedalus (bench/run_folder.py): measured on this machine; env.json and measured.csv\n"
           "# lie beside it. `calibration:` is fitted by `daedalus validate`.\n")


def read_profile_doc(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / PROFILE
    if not path.exists():
        return None
    doc = yaml.safe_load(read_regular_text(path))
    return doc if isinstance(doc, dict) else None


def write_profile(run_dir: Path, measured: dict[str, Any] | None = None,
                  calibration: dict[str, Any] | None = None) -> Path:
    """Write the run's hardware_profile.yaml: `measured` replaces the measured fields (peaks, bandwidth,
    memory, notes) and drops a calibration fitted on older peaks; `calibration` sets the fitted block.
    The file is loaded back with the simulator's loader before it replaces the old one."""
    from simulators.hardware import parse_profile

    doc = read_profile_doc(run_dir) or {}
    if measured is not None:
        doc = dict(measured)
    if calibration is not None:
        if not doc:
            raise ConfigError(f"{run_dir / PROFILE}: no measured profile to add a calibration to")
        doc["calibration"] = calibration
    path = run_dir / PROFILE
    parse_profile(doc, str(path))  # what we write must load
    return write_atomic(path, _HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120))
