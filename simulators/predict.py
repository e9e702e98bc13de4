"""Sweeps -> tidy DataFrames (one row per case, and one per case x op). Vectorised: each model's
case grid is costed in one numpy pass, and each hardware profile times it in another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import checks as C
from .attention import MLA_MODES
from .errors import ConfigError
from .hardware import HardwareProfile
from .hash_load import DEFAULT_TOKEN_ZIPF_EXPONENT
from .memory import (
    activation_bytes,
    kv_cache_bytes,
    weight_bytes,
)
from .memory_rows import Dtypes, check_axis, memory_rows
from .model_config import ModelConfig
from .model_cost import step_ops
from .params import count_params
from .precision import expert_compute_dtype
from .roofline import calibration_family, op_time

PHASES = ("prefill", "decode")


_check_axis = check_axis


def case_grid(phases: Iterable[str], batches: Sequence[int], contexts: Sequence[int],
              decode_tokens: int = 1) -> pd.DataFrame:
    """Cartesian grid of cases. Prefill: S = L = context (whole prompt in one step).
    Decode: S = decode_tokens (1, or 1 + accepted MTP drafts), L = context."""
    phases = [phases] if isinstance(phases, str) else list(phases)
    bad = [p for p in phases if p not in PHASES]
    if bad or not phases:
        raise ConfigError(f"phase: expected prefill and/or decode, got {phases}")
    b = _check_axis("batch", batches)
    c = _check_axis("context", contexts)
    decode_tokens = C.integer(decode_tokens, "decode_tokens", 1, C.MAX_TOKENS)
    if b.max() * max(c.max() if "prefill" in phases else min(decode_tokens, c.max()), 1) > C.MAX_TOKENS:
        raise ConfigError(f"batch x tokens per step: {b.max():.0f} x up to {c.max():.0f} exceeds 2**53 tokens")
    ph, bb, cc = np.meshgrid(np.arange(len(phases)), b, c, indexing="ij")
    phase = np.asarray(phases)[ph.ravel()]
    context = cc.ravel()
    query = np.where(phase == "prefill", context, np.minimum(decode_tokens, context))
    return pd.DataFrame({"phase": phase, "batch": bb.ravel().astype(np.int64),
                         "query_len": query.astype(np.int64), "context": context.astype(np.int64)})


def _count(name: str, x: np.ndarray) -> np.ndarray:
    """A count as int64, refused (never wrapped) when it is not finite or beyond 2**53."""
    if not np.isfinite(x).all() or (x > C.MAX_TOKENS).any():
        raise ConfigError(f"{name}: beyond 2**53 (a model or context far outside the modelled range)")
    return x.astype(np.int64)


@dataclass
class SimResult:
    totals: pd.DataFrame
    ops: pd.DataFrame | None


def simulate(models: Sequence[ModelConfig], profiles: Sequence[HardwareProfile], phases=("decode",),
             batches=(1,), contexts=(4096,), *, dtypes: Dtypes = Dtypes(), mla_mode: str = "auto",
             routing_skew: float = 0.0, decode_tokens: int = 1, mode: str = "speed_of_light",
             per_op: bool = True, token_zipf_exponent: float = DEFAULT_TOKEN_ZIPF_EXPONENT) -> SimResult:
    """Models x hardware x phase x batch x context. Totals sum per-op roofline times.
    token_zipf_exponent: token-frequency Zipf exponent of hash-routed MoE layers (V4; an estimate by
    default): their expert reads are the ones that frequency hits (op moe_routed_hash)."""
    full = case_grid(phases, batches, contexts, decode_tokens)
    routing_skew = C.number(routing_skew, "routing_skew", 0.0)
    token_zipf_exponent = C.number(token_zipf_exponent, "token_zipf_exponent", 0.0)
    if not isinstance(per_op, bool):
        raise ConfigError(f"per_op: expected true or false, got {per_op!r}")
    totals: list[pd.DataFrame] = []
    op_cols: dict[str, list] = {}
    for m in models:
        p = dtypes.for_model(m)
        pc = count_params(m)
        w_bytes = weight_bytes(m, p)
        for phase in dict.fromkeys(full["phase"]):
            grid = full[full["phase"] == phase].reset_index(drop=True)
            B, S, L = (grid[c].to_numpy(np.float64) for c in ("batch", "query_len", "context"))
            mla = resolve_mla_mode(mla_mode, phase)
            ops = step_ops(m, B, S, L, p, phase=phase, mla_mode=mla, routing_skew=routing_skew,
                           token_zipf_exponent=token_zipf_exponent)
            flop = np.stack([np.broadcast_to(o.flop * o.n_layers, B.shape) for o in ops])
            byt = np.stack([np.broadcast_to(o.bytes * o.n_layers, B.shape) for o in ops])
            kv_b = kv_cache_bytes(m, B, L, p)
            act_b = activation_bytes(m, B, S, p, phase)
            tokens = B * S
            for hw in profiles:
                times = [op_time(flop[i], byt[i], calibration_family(o.family, phase, m.attention, mla),
                                 expert_compute_dtype(p, hw) if o.family == "moe_routed" else o.compute_dtype,
                                 hw, mode, rows=o.rows) for i, o in enumerate(ops)]
                comp = np.stack([t.compute_time_s for t in times])
                mem = np.stack([t.memory_time_s for t in times])
                time = np.stack([t.time_s for t in times])
                compute_bound = comp >= mem
                step_s = time.sum(axis=0)
                compute_share = np.where(compute_bound, time, 0.0).sum(axis=0)
                required = w_bytes + kv_b + act_b
                frame = grid.copy()
                frame.insert(0, "hardware", hw.name)
                frame.insert(0, "model", m.name)
                frame["mode"] = mode
                frame["weight_dtype"], frame["act_dtype"], frame["kv_dtype"] = p.weight, p.act, p.kv
                frame["mla_mode"] = mla if m.attention == "mla" else None
                frame["flop"] = flop.sum(axis=0)
                frame["bytes"] = byt.sum(axis=0)
                frame["compute_time_s"] = comp.sum(axis=0)
                frame["memory_time_s"] = mem.sum(axis=0)
                frame["time_s"] = step_s
                frame["bound"] = np.where(compute_share >= step_s - compute_share, "compute", "memory")
                frame["tokens_per_step"] = tokens.astype(np.int64)
                frame["time_per_token_s"] = step_s / tokens
                frame["tokens_per_s"] = tokens / step_s
                frame["weight_bytes"] = w_bytes
                frame["kv_bytes"] = kv_b
                frame["activation_bytes"] = act_b
                frame["memory_required_bytes"] = required
                frame["devices_for_memory"] = _count("devices_for_memory", np.ceil(required / hw.memory_bytes.value))
                frame["params_total"] = pc.total
                frame["params_active"] = pc.active
                totals.append(frame)
                if per_op:
                    _append_op_rows(op_cols, m.name, hw.name, grid, ops, times, flop, byt, comp, mem, time)
    totals_df = pd.concat(totals, ignore_index=True)
    _check_finite(totals_df)
    ops_df = None
    if per_op:
        ops_df = pd.DataFrame({k: np.concatenate(v) for k, v in op_cols.items()})
        ops_df["arithmetic_intensity_flop_per_byte"] = ops_df["flop"] / ops_df["bytes"]
    return SimResult(totals_df, ops_df)


def _check_finite(df: pd.DataFrame) -> None:
    """No NaN / inf leaves the simulator as a number: a result that overflowed or divided by zero is
    refused with its column named (the inputs passed their checks, so it is a range problem)."""
    num = df.select_dtypes("number")
    bad = [c for c in num.columns if not np.isfinite(num[c].to_numpy(np.float64)).all()]
    if bad:
        raise ConfigError(f"{', '.join(bad)}: not a finite result (inputs far outside the modelled range)")


def resolve_mla_mode(mla_mode: str, phase: str) -> str:
    """`auto` = what DeepSeek's inference does: naive (up-projected) prefill, absorbed decode."""
    if mla_mode == "auto":
        return "naive" if phase == "prefill" else "absorbed"
    if mla_mode not in MLA_MODES:
        raise ConfigError(f"mla_mode: expected auto, {' or '.join(MLA_MODES)}, got {mla_mode!r}")
    return mla_mode


def _append_op_rows(cols: dict[str, list], model: str, hardware: str, grid: pd.DataFrame, ops, times,
                    flop, byt, comp, mem, time) -> None:
    k, n = len(ops), len(grid)
    new = {
        "model": np.full(k * n, model, dtype=object),
        "hardware": np.full(k * n, hardware, dtype=object),
        "phase": np.tile(grid["phase"].to_numpy(), k),
        "batch": np.tile(grid["batch"].to_numpy(), k),
        "query_len": np.tile(grid["query_len"].to_numpy(), k),
        "context": np.tile(grid["context"].to_numpy(), k),
        "op": np.repeat(np.asarray([o.op for o in ops], dtype=object), n),
        "family": np.repeat(np.asarray([o.family for o in ops], dtype=object), n),
        "n_layers": np.repeat([o.n_layers for o in ops], n),
        "compute_dtype": np.repeat(np.asarray([t.compute_dtype for t in times], dtype=object), n),
        "flop": flop.ravel(),
        "bytes": byt.ravel(),
        "compute_time_s": comp.ravel(),
        "memory_time_s": mem.ravel(),
        "time_s": time.ravel(),
        "bound": np.where((comp >= mem).ravel(), "compute", "memory"),
    }
    for key, val in new.items():
        cols.setdefault(key, []).append(val)


def memory_table(models: Sequence[ModelConfig], batches=(1,), contexts=(4096,), *, dtypes: Dtypes = Dtypes(),
                 profiles: Sequence[HardwareProfile] = (), devices: int = 1, tp: int = 1) -> pd.DataFrame:
    """`memory_rows.memory_rows` as a DataFrame: KV (by store, exact: `kv_ledger`) and weight bytes
    per model x batch x context; with profiles, whether it fits on `devices` of each and the largest
    batch / context that would. tp > 1: `kv_per_device_bytes` (MLA / V4 KV replicated by TP)."""
    return pd.DataFrame(memory_rows(models, batches, contexts, dtypes=dtypes, profiles=profiles, devices=devices,
                                    tp=tp))
