"""Run folders under results/: naming, lookup of the newest or a named run, atomic writes."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from simulators.errors import ConfigError

DEFAULT_RESULTS = Path("results")
_UMASK = os.umask(0)
os.umask(_UMASK)
MEASURED_PROFILE = "hardware_profile.yaml"


def new_run_id(prefix: str = "run", results: Path | None = None) -> str:
    """`<prefix>-YYYYmmdd-HHMMSS`, with -2, -3 ... appended when that folder already exists."""
    run_id = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    i = 1
    while results is not None and (results / (run_id if i == 1 else f"{run_id}-{i}")).exists():
        i += 1
    return run_id if i == 1 else f"{run_id}-{i}"


def list_runs(results: Path) -> list[Path]:
    """Run folders (holding env.json or measured.csv), oldest first by when they started."""
    if not results.is_dir():
        return []
    def started(run: Path) -> float | None:
        # env.json is written when a run starts and not touched by validate or report
        for marker in ("env.json", "measured.csv"):
            if (run / marker).exists():
                return (run / marker).stat().st_mtime
        return None

    runs = [(t, p.name, p) for p in results.iterdir() if p.is_dir() and (t := started(p)) is not None]
    return [p for _, _, p in sorted(runs)]


def find_run(results: Path, run_id: str | None, *, need: str | None = None, flag: str = "--run") -> Path:
    """The named run, or the newest one (that has file `need`, when given)."""
    runs = list_runs(results)
    if need:
        runs = [r for r in runs if (r / need).exists()]
    if run_id:
        path = results / run_id
        if path in runs:
            return path
        names = ", ".join(r.name for r in runs[-5:]) or "none"
        what = f" with {need}" if need else ""
        raise ConfigError(f"{flag}: no run {run_id!r}{what} in {results}/; recent runs: {names}")
    if not runs:
        what = f" with {need}" if need else ""
        raise ConfigError(f"{flag}: no run{what} in {results}/ (run `daedalus bench --quick` first, "
                          "or pass --results DIR)")
    return runs[-1]


def write_atomic(path: Path, data: str | bytes | pd.DataFrame) -> Path:
    """Write to a temporary file in the same folder, then rename over `path`: readers never see
    a half-written file and an interrupted write leaves the old one intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, pd.DataFrame):
                fh.write(data.to_csv(index=False).encode())
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
