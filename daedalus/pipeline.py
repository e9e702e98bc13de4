"""The main job as function calls, one run folder (`bench/run_folder.py` names its files):

    measure    reference cases (GEMM rate curve, read bandwidth curve, dispatch) and the scored
               kernel cases, timed into measured.csv / samples.csv with one noise probe
    profile    this machine's measured hardware_profile.yaml from the reference rows
    validate   measured vs predicted per case (leave-one-out), per family; the fitted
               calibration block added to the run's profile
    predict    the simulator's answers for the report's models x hardware: predicted.csv,
               ops.csv, memory.csv (the report reads these; it does not re-simulate)
    report     figures/ and report.html

`daedalus bench`, `calibrate`, `validate`, `report` and `run` are thin wrappers over these.
torch is imported only by `measure` (through bench.run).
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import run_folder as rf
from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile, load_profile, parse_profile, resolve_profile
from simulators.safe_load import read_regular

SLOW_DTYPE_FRACTION = 0.25  # a CPU dtype below this fraction of fp32 at n=512 is not timed at larger sizes
MIN_VALIDATION_CASES = 5
SWEEPS = ("quick", "full", "calibrate", "calibrate-full")
ORIGINS = {"bench": "daedalus bench", "calibrate": "daedalus calibrate", "run": "daedalus run"}


def say(msg: str) -> None:
    """Progress of the main job on stderr (hidden by -q)."""
    from . import log

    log.get(__name__).info(msg)


# ---- measure -------------------------------------------------------------------------------------

@dataclass
class Measure:
    """What to time and how: the sweep's cases, the device, the timing budget."""

    cases: list
    device: object
    budget_s: float
    probe: bool = True
    progress: bool = True
    max_cases: int | None = None
    sweep: str = "quick"
    notes: list[str] = field(default_factory=list)


def sweep_cases(dev, sweep: str) -> list:
    """`calibrate` / `calibrate-full`: reference rows only; `quick` / `full`: reference rows then the
    scored cases."""
    from bench import cases as bc
    from bench.device import stream_bytes

    n_stream = stream_bytes(dev)
    if sweep not in SWEEPS:
        raise ConfigError(f"sweep {sweep!r}: expected one of {', '.join(SWEEPS)}")
    ref = bc.calibration_cases(dev.kind, n_stream, quick=sweep not in ("full", "calibrate-full"))
    if sweep.startswith("calibrate"):
        return ref
    scored = bc.quick_cases(dev.dtype, n_stream) if sweep == "quick" else bc.full_cases(dev.dtype, n_stream)
    seen = {c.case_id for c in ref}
    return ref + [c for c in scored if c.case_id not in seen]


def measure(results: Path, run_id: str, m: Measure, *, resume: bool = False) -> pd.DataFrame:
    """Time m.cases into results/run_id. On a CPU, reduced-precision reference GEMMs larger than
    n = 512 are timed only where n = 512 runs at least SLOW_DTYPE_FRACTION of fp32 (a bf16 GEMM
    emulated without AMX can take minutes at n = 2048 and is not how the device computes)."""
    from bench.run import run_cases
    from bench.timing import TimingConfig

    dev = m.device
    kw = dict(timing=TimingConfig(budget_s=m.budget_s), probe=m.probe, progress=m.progress,
              max_cases=m.max_cases, env_extra={"sweep": m.sweep})
    slow = [c for c in m.cases if dev.kind == "cpu" and c.kernel == "gemm" and c.dtype != "fp32" and c.m > 512]
    first = [c for c in m.cases if c not in slow]
    df = run_cases(first, dev, results, run_id, resume=resume, **kw)
    if slow:
        sq = df[(df["status"] == "ok") & (df["kernel"] == "gemm") & (df["m"] == df["n"]) & (df["n"] == df["k"])]
        fp32 = sq.loc[sq["dtype"] == "fp32", "achieved_flop_per_s"].max()
        for dt in sorted({c.dtype for c in slow}):
            rate = sq.loc[sq["dtype"] == dt, "achieved_flop_per_s"].max()
            if rate == rate and fp32 == fp32 and rate >= SLOW_DTYPE_FRACTION * fp32:
                df = run_cases([c for c in slow if c.dtype == dt], dev, results, run_id, resume=True, **kw)
            else:
                m.notes.append(f"{dt} GEMM at n=512 ran at {rate / 1e9:.3g} GFLOP/s (< {SLOW_DTYPE_FRACTION:g} x "
                               "fp32): larger sizes not timed")
    return df


def write_measured_profile(run_dir: Path, measured: pd.DataFrame, device_kind: str, tool: str,
                           notes: Sequence[str] = ()) -> Path | None:
    """The run's measured profile from its reference rows (None when none finished, e.g. --max-cases)."""
    from bench.calibration import build_profile

    name = "host-measured" if device_kind == "cpu" else f"{device_kind}-measured"
    try:
        prof = build_profile(measured, run_dir.name, rf.read_env(run_dir), name=name, tool=tool,
                             extra_notes=list(notes))
    except RuntimeError:
        return None
    return rf.write_profile(run_dir, measured=prof)


# ---- validate ------------------------------------------------------------------------------------

def _device_kind(row: dict) -> str:
    """The row's device kind (cpu for runs older than the column; a kind without recorded attention
    tiles costs the exact causal pairs, `bench.registry.causal_tiles`)."""
    kind = row.get("device")
    return kind if isinstance(kind, str) and kind else "cpu"


def load_measured(run_dir: Path, all_kernels: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """measured.csv with costs, family and rows recomputed from today's cost functions (one cost model:
    an older run is scored with the same formulas as a new one). Rows of kernels this version no longer
    has are left out and named in the returned notes."""
    from bench.cases import Case, simulator_cost
    from bench.registry import COMPARISON_KERNELS

    path = run_dir / rf.MEASURED
    try:
        df = pd.read_csv(io.BytesIO(read_regular(path)), keep_default_na=False, na_values=[""], encoding="utf-8")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read measured results ({exc})") from None
    missing = [c for c in ("case_id", "kernel", "dtype", "median_s", "status") if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    median = pd.to_numeric(df["median_s"], errors="coerce")
    ok = df["status"] == "ok"
    timed = median.map(lambda t: math.isfinite(t) and t > 0)  # inf / nan / 0 / text: no time to score
    notes = [f"{cid}: left out (median_s {raw!r} is not a positive finite time)"
             for cid, raw in zip(df.loc[ok & ~timed, "case_id"], df.loc[ok & ~timed, "median_s"])]
    df = df[ok & timed].reset_index(drop=True)
    keep, recs = [], []
    for i, row in enumerate(df.to_dict("records")):
        try:
            case = Case.from_row(row)
        except ConfigError as exc:
            notes.append(f"{row['case_id']}: left out ({exc})")
            continue
        keep.append(i)
        recs.append({"family": case.family, "role": case.role, **simulator_cost(case, _device_kind(row))})
    if not recs:  # every row failed, was left out, or has no positive finite median (nan, 0)
        raise ConfigError(f"{path}: no finished case with a positive median_s to validate"
                          + (f" ({len(notes)} left out, e.g. {notes[0]})" if notes else ""))
    out = df.iloc[keep].reset_index(drop=True)
    cost = pd.DataFrame(recs, index=out.index)
    for col in cost.columns:
        out[col] = cost[col]
    out["bytes"] = out["bytes_read"] + out["bytes_written"]
    out["median_s"] = pd.to_numeric(out["median_s"])
    for col, default in (("n_ops", 0.0), ("noisy", False), ("cache_state", "warm")):
        if col not in out.columns:
            out[col] = default
    out["n_ops"] = pd.to_numeric(out["n_ops"], errors="coerce").fillna(0.0)
    out["noisy"] = out["noisy"].map(lambda v: str(v).lower() in ("true", "1"))
    if not all_kernels:
        out = out[~out["kernel"].isin(COMPARISON_KERNELS)].reset_index(drop=True)
    n_scored = int((out["role"] != "reference").sum())
    if n_scored < MIN_VALIDATION_CASES:
        raise ConfigError(f"{path}: only {n_scored} scored cases with status ok; need at least "
                          f"{MIN_VALIDATION_CASES} to validate (run `daedalus bench --quick`)")
    return out, notes


def own_profile(run_dir: Path) -> HardwareProfile | None:
    """The run's measured profile without its calibration block (validation refits it; an older
    block version does not stop a re-validation)."""
    doc = rf.read_profile_doc(run_dir)
    if doc is None:
        return None
    doc.pop("calibration", None)
    return parse_profile(doc, str(run_dir / rf.PROFILE))


def last_level_cache_bytes(run_dir: Path, profile: HardwareProfile | None) -> float:
    """A CPU host's last-level cache (the drift correction's DRAM share beyond it); inf for accelerators
    and unknown caches."""
    env = rf.read_env(run_dir)
    if env.get("device", "cpu") != "cpu":
        return math.inf
    llc = (env.get("cpu_cache_bytes") or {}).get("L3")
    if not llc and profile is not None and profile.vendor == "host" and profile.onchip_cache_bytes is not None:
        llc = profile.onchip_cache_bytes.value
    return float(llc) if llc else math.inf


@dataclass
class Validation:
    cases: pd.DataFrame
    summary: pd.DataFrame
    profile: HardwareProfile
    notes: list[str]

    def overall(self, mode: str = "calibrated") -> float:
        s = self.summary
        row = s[(s["mode"] == mode) & (s["subset"] == "all") & (s["family"] == "all")]
        return float(row["mdape_pct"].iloc[0]) if len(row) else math.nan


CASE_COLUMNS = ["case_id", "kernel", "family", "model", "phase", "batch", "query_len", "context", "dtype",
                "cache_state", "m", "n", "k", "n_bytes", "flop", "bytes", "rows", "n_ops", "noisy", "mode",
                "measured_s", "predicted_s", "error_pct"]


def validate(run_dir: Path, hardware: str | None = None, all_kernels: bool = False,
             write_calibration: bool = True) -> Validation:
    """Leave-one-out validation of the run; writes validation_cases.csv / validation_summary.csv and,
    against the run's own profile, the fitted calibration block (fit on all scored cases)."""
    from bench.run_lock import RunLock

    with RunLock(run_dir, "validate"):  # not while a bench is still writing this run
        refresh_views(run_dir, "validate")
        return _validate(run_dir, hardware, all_kernels, write_calibration)


def refresh_views(run_dir: Path, command: str) -> None:
    """Rebuild measured.csv / samples.csv / expert_load.csv from the run's journal (cases.jsonl), so
    a crash between the journal and the views (or a torn last entry, named on stderr) is repaired
    before the run is read. Call with the run's lock held."""
    from bench.journal import JOURNAL

    if not (run_dir / JOURNAL).exists():
        return
    from bench.journal_store import JournalStore

    JournalStore(run_dir, rf.MEASURED_COLUMNS, say=lambda msg: sys.stderr.write(f"daedalus {command}: {msg}\n")).load()


def _validate(run_dir: Path, hardware: str | None, all_kernels: bool, write_calibration: bool) -> Validation:
    from simulators import fit as F

    measured, notes = load_measured(run_dir, all_kernels)
    mine = own_profile(run_dir)
    if hardware:
        hw = resolve_profile(hardware)
    elif mine is not None:
        hw = mine
    else:
        hw = resolve_profile("host-cpu")
        notes.append(f"{run_dir / rf.PROFILE} not found: speed of light from the shipped host-cpu profile")
    curves = F.measure_curves(measured, last_level_cache_bytes(run_dir, mine))
    rows = F.roofline_inputs(measured, hw, curves)
    cases = F.leave_one_out(rows)
    summary = F.summarise(cases)
    rf.write_atomic(run_dir / rf.VALIDATION_CASES, cases.reindex(columns=CASE_COLUMNS))
    rf.write_atomic(run_dir / rf.VALIDATION_SUMMARY, summary)
    if write_calibration and not hardware and mine is not None:
        scored = F.scored(rows)
        f, _ = F.fit(scored)
        rf.write_profile(run_dir, calibration=F.calibration_block(curves, f, run_dir.name, len(scored)))
        hw = load_profile(run_dir / rf.PROFILE)
    return Validation(cases, summary, hw, notes)


# ---- predict and report --------------------------------------------------------------------------

def predict(run_dir: Path, models: Sequence[str], hardware: Sequence[str], breakdown_model: str,
            breakdown_hardware: str) -> Path:
    """Simulate the report's models x hardware (with this run's calibrated profile added) and write
    predicted.csv, ops.csv, memory.csv and predicted_problems.json."""
    from daedalus.report.frames import simulate_frames, write_frames

    frames = simulate_frames(run_dir, models, hardware, breakdown_model, breakdown_hardware)
    return write_frames(run_dir, frames)


def report(run_dir: Path, **predict_kw) -> Path:
    """predict (when asked for other models / hardware, or not yet done) then the HTML report."""
    from daedalus.report.report import DEFAULT_HARDWARE, DEFAULT_MODELS, write_report

    kw = {"models": list(DEFAULT_MODELS), "hardware": list(DEFAULT_HARDWARE), "breakdown_model": "deepseek-v3",
          "breakdown_hardware": "h100-sxm", **{k: v for k, v in predict_kw.items() if v}}
    predict(run_dir, **kw)
    return write_report(run_dir)


# ---- the main job --------------------------------------------------------------------------------

def _step(title: str, fn: Callable, *args, **kwargs):
    say(f"== {title}")
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    say(f"== {title}: done in {time.perf_counter() - t0:.0f} s")
    return out


def run_all(results: Path, run_id: str, dev, *, resume: bool = False, progress: bool = True,
            probe: bool = True, budget_s: float = 0.4) -> tuple[Path, Validation]:
    """measure (quick sweep with its reference rows) -> measured profile -> validate -> predict -> report."""
    m = Measure(sweep_cases(dev, "quick"), dev, budget_s, probe=probe, progress=progress, sweep="quick")
    run_dir = results / run_id
    measured = _step(f"1/4 measure ({len(m.cases)} cases: reference curves, then the scored kernels)",
                     measure, results, run_id, m, resume=resume)
    if write_measured_profile(run_dir, measured, dev.kind, ORIGINS["run"], m.notes) is None:
        raise ConfigError(f"{run_dir / rf.MEASURED}: no reference GEMM or read finished; cannot build a profile")
    v = _step("2/4 validate (leave-one-out, both modes) and fit the calibration", validate, run_dir)
    path = _step("3/4 predict and 4/4 report", report, run_dir)
    scored = v.cases[v.cases["mode"] == "calibrated"]  # the scored cases only, as in the table below
    n_noisy = int(scored["noisy"].fillna(False).astype(bool).sum()) if "noisy" in scored else 0
    say(f"calibrated median |error| {v.overall():.1f}% over {len(scored)} scored cases "
        f"({n_noisy} flagged noisy); speed of light {v.overall('speed_of_light'):.1f}%")
    return path, v


__all__ = ["Measure", "Validation", "load_measured", "measure", "own_profile", "predict", "report",
           "run_all", "sweep_cases", "validate", "write_measured_profile"]
