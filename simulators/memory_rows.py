"""The memory sweep as plain rows (numpy, no pandas): KV (by store, exact: `kv_ledger`) and weight
bytes per model x batch x context, and with profiles whether it fits. `predict.memory_table` wraps
these rows in a DataFrame; `daedalus memory` prints them directly and so starts without pandas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from . import checks as C
from .attention import kv_bytes_per_token
from .errors import ConfigError
from .hardware import HardwareProfile
from .kv_ledger import COMPONENTS, kv_bytes_per_device
from .memory import DEFAULT_MEMORY_UTILIZATION, activation_bytes, kv_cache_ledger, max_batch, max_context, weight_bytes
from .model_config import ModelConfig
from .params import count_params
from .precision import Precision, indexer_dtype_for


@dataclass(frozen=True)
class Dtypes:
    """Requested dtypes; weight None = the model's checkpoint dtype."""

    weight: str | None = None
    act: str = "bf16"
    kv: str = "bf16"

    def for_model(self, m: ModelConfig, indexer: str = "fp4") -> Precision:
        return Precision.for_model(m, self.weight, self.act, self.kv, indexer)


def check_axis(name: str, values: Sequence, minimum: int = 1) -> np.ndarray:
    """Whole numbers >= minimum and <= 2**53 (exact in float64), one clear line otherwise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"{name}: expected a list of integers, got {values!r}")
    values = list(values)
    if not values:
        raise ConfigError(f"{name}: expected at least one value")
    return np.asarray([C.integer(v, f"{name}[{i}]", minimum, C.MAX_TOKENS) for i, v in enumerate(values)],
                      dtype=np.float64)


def _py(v):
    return v.item() if hasattr(v, "item") else v


def memory_rows(models: Sequence[ModelConfig], batches=(1,), contexts=(4096,), *, dtypes: Dtypes = Dtypes(),
                profiles: Sequence[HardwareProfile] = (), devices: int = 1, tp: int = 1) -> list[dict]:
    """One record per model x profile x batch x context (batch-major within a model), raw SI.
    tp > 1: `kv_per_device_bytes` with the batch spread over devices / tp DP groups (MLA's and
    V4's single KV head replicated on every TP rank, GQA heads split)."""
    devices = C.integer(devices, "devices", 1, C.MAX_TOKENS)
    if C.integer(tp, "tp", 1, C.MAX_TOKENS) < 1 or devices % tp:
        raise ConfigError(f"tp: expected a divisor of devices ({devices}), got {tp}")
    b, c = check_axis("batch", batches), check_axis("context", contexts)
    if b.max() > C.MAX_TOKENS:
        raise ConfigError(f"batch: {b.max():.0f} exceeds 2**53")
    bb, cc = np.meshgrid(b, c, indexing="ij")
    B, L = bb.ravel(), cc.ravel()
    rows: list[dict] = []
    for m in models:
        for hw in (profiles or [None]):
            p = dtypes.for_model(m, indexer_dtype_for(hw) if hw is not None else "fp4")
            rows += _model_rows(m, p, B, L, hw, devices, tp)
    return rows


def _model_rows(m: ModelConfig, p: Precision, B: np.ndarray, L: np.ndarray, hw, devices: int, tp: int) -> list[dict]:
    pc = count_params(m)
    n = len(B)
    led = kv_cache_ledger(m, B, L, p)
    w = weight_bytes(m, p)
    cols: dict[str, object] = {
        "model": m.name, "batch": B.astype(np.int64), "context": L.astype(np.int64), "attention": m.attention,
        "weight_dtype": p.weight, "kv_dtype": p.kv,
        "indexer_dtype": p.indexer if m.sparse_attention and m.attention == "csa_hca" else None,
        "kv_bytes_per_token": kv_bytes_per_token(m, p.kv, p.indexer),
    }
    for comp in COMPONENTS:
        cols[f"kv_{comp}_bytes"] = getattr(led, comp)
    cols["kv_mtp_bytes"] = led.mtp
    cols["kv_bytes"] = led.total
    cols["tp"] = tp
    cols["kv_per_device_bytes"] = kv_bytes_per_device(m, B, L, p.kv, tp=tp, dp=devices // tp, indexer_dtype=p.indexer)
    cols["weight_bytes"] = w
    act = activation_bytes(m, B, 1, p)
    cols["activation_bytes"] = act
    total = np.broadcast_to(np.asarray(led.total, dtype=np.float64) + w + act, (n,))
    cols["total_bytes"] = total
    cols["params_total"], cols["params_active"] = pc.total, pc.active
    if hw is not None:
        capacity = hw.memory_bytes.value * devices
        cols.update({"hardware": hw.name, "devices": devices, "capacity_bytes": capacity,
                     "fits": total <= capacity * DEFAULT_MEMORY_UTILIZATION,
                     "max_batch_at_context": max_batch(m, L, capacity, p),
                     "max_context_at_batch": max_context(m, B, capacity, p)})
    arrays = {k: np.broadcast_to(np.asarray(v), (n,)) if isinstance(v, np.ndarray) or np.ndim(v) else v
              for k, v in cols.items()}
    return [{k: (_py(v[i]) if isinstance(v, np.ndarray) else _py(v)) for k, v in arrays.items()} for i in range(n)]
