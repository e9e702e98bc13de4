"""Memory footprint (weights + KV cache + activations) and what fits on N devices."""

from __future__ import annotations

import numpy as np

from .attention import kv_bytes_per_token
from .model_config import ModelConfig
from .params import count_params
from .precision import Precision

DEFAULT_MEMORY_UTILIZATION = 0.9  # share of device memory usable for weights + KV + activations
LOGITS_BYTES = 4.0  # logits are materialised in fp32


def weight_bytes(m: ModelConfig, p: Precision) -> float:
    """All parameters stored in the weight dtype (norms and scales ignored)."""
    return count_params(m).total * p.w_bytes


def activation_bytes(m: ModelConfig, B, S, p: Precision, phase: str = "decode") -> np.ndarray:
    """Estimate of the live activations of one layer at a time (not a measured figure):
    residual + normed input (2 d), the widest intermediate (FFN width, or per-head Q/K/V for
    attention, whichever is larger), plus the logits."""
    T = np.asarray(B, dtype=np.float64) * np.asarray(S, dtype=np.float64)
    d = m.hidden_size
    if m.attention == "mla":
        attn_width = m.num_attention_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    else:
        attn_width = (m.num_attention_heads + 2 * m.num_key_value_heads) * m.head_dim
    ffn_width = max(m.intermediate_size if m.n_dense_layers else 0,
                    m.num_experts_per_tok * m.moe_intermediate_size + m.shared_expert_intermediate_size)
    logit_tokens = np.asarray(B, dtype=np.float64) if phase == "prefill" else T
    return T * (2 * d + max(attn_width, 2 * ffn_width)) * p.a_bytes + logit_tokens * m.vocab_size * LOGITS_BYTES


def kv_cache_bytes(m: ModelConfig, B, L, p: Precision) -> np.ndarray:
    return np.asarray(B, dtype=np.float64) * np.asarray(L, dtype=np.float64) * kv_bytes_per_token(m, p.kv_bytes)


def max_batch(m: ModelConfig, L, capacity_bytes: float, p: Precision,
              utilization: float = DEFAULT_MEMORY_UTILIZATION) -> np.ndarray:
    """Largest decode batch whose weights + KV + activations fit in `capacity_bytes` (all
    devices together; weights stored once across them). 0 when even the weights do not fit."""
    free = capacity_bytes * utilization - weight_bytes(m, p)
    per_seq = kv_cache_bytes(m, 1, L, p) + activation_bytes(m, 1, 1, p)
    return np.maximum(0, np.floor(free / per_seq)).astype(np.int64)


def max_context(m: ModelConfig, B, capacity_bytes: float, p: Precision,
                utilization: float = DEFAULT_MEMORY_UTILIZATION) -> np.ndarray:
    """Longest context per sequence at decode batch B that fits; 0 when nothing fits."""
    B = np.asarray(B, dtype=np.float64)
    free = capacity_bytes * utilization - weight_bytes(m, p) - activation_bytes(m, B, 1, p)
    per_token = B * kv_bytes_per_token(m, p.kv_bytes)
    return np.maximum(0, np.floor(free / per_token)).astype(np.int64)
