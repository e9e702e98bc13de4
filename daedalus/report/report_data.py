"""The data behind the run report: the files of a run folder (each optional) and the simulator
frames the figures need (`simulators.predict`). No plotting and no HTML here.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile, load_profile
from simulators.safe_load import read_regular, read_regular_text

MEASURED_COLUMNS = ("case_id", "kernel", "family", "flop", "bytes", "median_s", "cv", "status")
EXPERT_LOAD_COLUMNS = ("case_id", "expert", "tokens")
VALIDATION_CASE_COLUMNS = ("case_id", "family", "mode", "measured_s", "predicted_s", "error_pct")
VALIDATION_SUMMARY_COLUMNS = ("mode", "family", "n", "mdape_pct", "mape_pct", "within_25_pct", "bias")

TIME_KEYS = ("time_utc", "timestamp_utc", "timestamp", "started_at", "start_time", "started", "date", "time")


@dataclass
class RunInputs:
    """What a run folder holds; None where a file is missing or unreadable (reason in `problems`)."""

    run_dir: Path
    measured: pd.DataFrame | None = None
    expert_load: pd.DataFrame | None = None
    env: dict[str, Any] | None = None
    host_profile: HardwareProfile | None = None
    validation_cases: pd.DataFrame | None = None
    validation_summary: pd.DataFrame | None = None
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def measured_at(self) -> str:
        """When the run was measured: a time field of env.json, else the newest input file's mtime."""
        for key in TIME_KEYS:
            if self.env and self.env.get(key):
                return str(self.env[key])
        files = [p for p in self.run_dir.iterdir() if p.is_file() and p.suffix in (".csv", ".json", ".yaml")]
        if not files:
            return "unknown"
        newest = max(p.stat().st_mtime for p in files)
        return datetime.fromtimestamp(newest, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC (file time)")


def _read_csv(path: Path, required: tuple[str, ...], problems: dict[str, str]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        df = pd.read_csv(io.BytesIO(read_regular(path)), encoding="utf-8")
    except (OSError, ValueError, ConfigError) as exc:
        problems[path.name] = f"unreadable ({exc})"
        return None
    missing = [c for c in required if c not in df.columns]
    if missing:
        problems[path.name] = f"missing column(s) {', '.join(missing)}"
        return None
    return df


def load_run(run_dir: str | Path) -> RunInputs:
    """Read every known file of `results/<run-id>/`; a missing file is simply None."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    out = RunInputs(run_dir)
    p = out.problems
    out.measured = _read_csv(run_dir / "measured.csv", MEASURED_COLUMNS, p)
    out.expert_load = _read_csv(run_dir / "expert_load.csv", EXPERT_LOAD_COLUMNS, p)
    out.validation_cases = _read_csv(run_dir / "validation_cases.csv", VALIDATION_CASE_COLUMNS, p)
    out.validation_summary = _read_csv(run_dir / "validation_summary.csv", VALIDATION_SUMMARY_COLUMNS, p)
    env_path = run_dir / "env.json"
    if env_path.exists():
        try:
            env = json.loads(read_regular_text(env_path))
            out.env = env if isinstance(env, dict) else {"value": env}
        except (OSError, ValueError, RecursionError, ConfigError) as exc:
            p["env.json"] = f"unreadable ({exc})"
    hw_path = run_dir / "hardware_profile.yaml"
    if hw_path.exists():
        try:
            out.host_profile = load_profile(hw_path)
        except ConfigError as exc:
            p["hardware_profile.yaml"] = str(exc)
    return out
