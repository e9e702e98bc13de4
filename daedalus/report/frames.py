"""The simulator's answers for a run's report, computed once by the pipeline's predict step and kept in
the run folder (predicted.csv, ops.csv, memory.csv, predicted.json); the report reads them back.

    memory.csv     KV / weight bytes per model x context; column `set`: models | same_dims
    ops.csv        per-op predictions; column `set`: roofline (all models, both phases) | breakdown
    predicted.csv  decode totals of the breakdown model on every profile (hardware comparison)
    predicted.json which models, hardware and breakdown case were simulated, and what could not be
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import run_folder as rf
from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile, load_profile, resolve_profile
from simulators.model_config import ModelConfig
from simulators.predict import memory_table, simulate
from simulators.safe_load import read_regular, read_regular_text
from simulators.variants import resolve_variant, same_dims_variants

MEMORY_CONTEXTS = tuple(2**k for k in range(10, 21))  # 1k .. 1M tokens
CONTEXT = 4096  # context of the roofline, breakdown and comparison cases
ROOFLINE_BATCHES = (1, 16, 256)
BREAKDOWN_DECODE_BATCH = 32
BREAKDOWN_PREFILL_BATCH = 1
COMPARISON_BATCHES = (1, 64)


@dataclass
class SimFrames:
    memory: pd.DataFrame
    same_dims: pd.DataFrame | None
    roofline_ops: pd.DataFrame | None
    breakdown_ops: pd.DataFrame | None
    comparison: pd.DataFrame | None
    models: list[str] = field(default_factory=list)
    hardware: list[str] = field(default_factory=list)
    breakdown_model: str = ""
    breakdown_hardware: str = ""
    problems: dict[str, str] = field(default_factory=dict)
    # the configs simulated here (not stored in the predict files): a profile or model loaded from a
    # file is found by its name only here, so the report keeps it (was dropped without a word)
    configs: list = field(default_factory=list)


def _simulate_each(profiles, problems: dict[str, str], models, **kw) -> list:
    """simulate() per profile, so one profile the models cannot run on does not sink the others."""
    out = []
    for hw in profiles:
        try:
            out.append(simulate(models, [hw], **kw))
        except ConfigError as exc:
            problems[f"hardware {hw.name}"] = str(exc)
    return out


def _concat(frames: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def _profile(name: str | HardwareProfile) -> HardwareProfile:
    return name if isinstance(name, HardwareProfile) else resolve_profile(name)


def _model(name: str | ModelConfig) -> ModelConfig:
    return name if isinstance(name, ModelConfig) else resolve_variant(name)


def run_profile(run_dir: Path) -> HardwareProfile | None:
    path = run_dir / rf.PROFILE
    try:
        return load_profile(path) if path.exists() else None
    except ConfigError:
        return None


def simulate_frames(run_dir: Path | None, models: Sequence[str | ModelConfig], hardware: Sequence[str | HardwareProfile],
                    breakdown_model: str | ModelConfig, breakdown_hardware: str | HardwareProfile) -> SimFrames:
    """Memory curves (1k..1M context), roofline ops (all models, both phases), the per-op breakdown of
    one decode and one prefill step, and the decode comparison across hardware (the run's own
    calibrated profile added when it has one)."""
    cfgs = [_model(m) for m in models]
    bm = _model(breakdown_model)
    profiles = [_profile(h) for h in hardware]
    bh = _profile(breakdown_hardware)
    host = run_profile(run_dir) if run_dir is not None else None
    if host is not None and host.name not in {h.name for h in profiles}:
        profiles.append(host)
    problems: dict[str, str] = {}
    memory = memory_table(cfgs, contexts=MEMORY_CONTEXTS)
    base = next((m for m in [bm, *cfgs] if m.attention == "mla"), None)
    same_dims = memory_table([base, *same_dims_variants(base)], contexts=MEMORY_CONTEXTS) if base else None
    roof = _simulate_each(profiles, problems, cfgs, phases=("decode", "prefill"), batches=ROOFLINE_BATCHES,
                          contexts=(CONTEXT,))
    decode = _simulate_each([bh], problems, [bm], phases=("decode",), batches=(BREAKDOWN_DECODE_BATCH,),
                            contexts=(CONTEXT,))
    prefill = _simulate_each([bh], problems, [bm], phases=("prefill",), batches=(BREAKDOWN_PREFILL_BATCH,),
                             contexts=(CONTEXT,))
    comparison = _simulate_each(profiles, problems, [bm], phases=("decode",), batches=COMPARISON_BATCHES,
                                contexts=(CONTEXT,), per_op=False)
    return SimFrames(memory=memory, same_dims=same_dims, roofline_ops=_concat([r.ops for r in roof]),
                     breakdown_ops=_concat([r.ops for r in decode + prefill]),
                     comparison=_concat([r.totals for r in comparison]), models=[m.name for m in cfgs],
                     hardware=[h.name for h in profiles], breakdown_model=bm.name, breakdown_hardware=bh.name,
                     problems=problems, configs=[*cfgs, bm, *profiles, bh])


def _tagged(parts: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    frames = [df.assign(set=name) for name, df in parts.items() if df is not None and not df.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["set"])


def write_frames(run_dir: Path, f: SimFrames) -> Path:
    rf.write_atomic(run_dir / rf.MEMORY, _tagged({"models": f.memory, "same_dims": f.same_dims}))
    rf.write_atomic(run_dir / rf.OPS, _tagged({"roofline": f.roofline_ops, "breakdown": f.breakdown_ops}))
    rf.write_atomic(run_dir / rf.PREDICTED, f.comparison if f.comparison is not None else pd.DataFrame())
    meta = {"models": f.models, "hardware": f.hardware, "breakdown_model": f.breakdown_model,
            "breakdown_hardware": f.breakdown_hardware, "problems": f.problems}
    return rf.write_atomic(run_dir / rf.PREDICTED_META, json.dumps(meta, indent=1) + "\n")


def _split(df: pd.DataFrame, name: str) -> pd.DataFrame | None:
    if df.empty or "set" not in df.columns:
        return None
    part = df[df["set"] == name].drop(columns="set").reset_index(drop=True)
    return part if len(part) else None


def read_frames(run_dir: Path) -> SimFrames | None:
    """The predict step's files, or None when any is missing or unreadable (predict again)."""
    try:
        meta = json.loads(read_regular_text(run_dir / rf.PREDICTED_META))
        memory = pd.read_csv(io.BytesIO(read_regular(run_dir / rf.MEMORY)))
        ops = pd.read_csv(io.BytesIO(read_regular(run_dir / rf.OPS)))
        try:
            comparison = pd.read_csv(io.BytesIO(read_regular(run_dir / rf.PREDICTED)))
        except pd.errors.EmptyDataError:
            comparison = None
    except (OSError, ValueError, ConfigError):
        return None
    mem = _split(memory, "models")
    if mem is None:
        return None
    return SimFrames(memory=mem, same_dims=_split(memory, "same_dims"), roofline_ops=_split(ops, "roofline"),
                     breakdown_ops=_split(ops, "breakdown"), comparison=comparison,
                     models=list(meta.get("models", [])), hardware=list(meta.get("hardware", [])),
                     breakdown_model=str(meta.get("breakdown_model", "")),
                     breakdown_hardware=str(meta.get("breakdown_hardware", "")),
                     problems=dict(meta.get("problems", {})))
