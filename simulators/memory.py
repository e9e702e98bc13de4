"""Memory footprint (weights + KV cache + activations) and what fits on N devices."""

from __future__ import annotations

import numpy as np

from . import mhc
from .kv_ledger import KVLedger, kv_ledger
from .model_config import ModelConfig
from .params import count_params
from .precision import Precision

DEFAULT_MEMORY_UTILIZATION = 0.9  # share of device memory usable for weights + KV + activations
LOGITS_BYTES = 4.0  # logits are materialised in fp32


HASH_TABLE_ID_BYTES = 8  # V4 ffn.gate.tid2eid [vocab, top-k] int64 per hash layer (S3)


def weight_bytes_by_part(m: ModelConfig, p: Precision) -> dict[str, float]:
    """Checkpoint bytes by storage format: quantised layers (FP8 + block scales), routed experts
    (V4: MXFP4 with E8M0 scales), what the checkpoint keeps unquantised (embedding, LM head,
    router, V4 compressors: BF16), mHC (FP32), V4's hash-routing tables. Norms ignored."""
    pc = count_params(m)
    return {
        "quantized": (pc.attention + pc.dense_ffn + pc.moe_shared) * p.w_bytes,
        "experts": pc.moe_routed * p.expert_w_bytes,
        "unquantized": (pc.embedding + pc.lm_head + pc.moe_router + pc.attention_unquantized) * p.keep_w_bytes,
        "mhc": mhc.weight_bytes(m) if p.keep else pc.mhc * p.w_bytes,
        "hash_tables": float(m.num_hash_layers * m.vocab_size * m.num_experts_per_tok * HASH_TABLE_ID_BYTES),
    }


def weight_bytes(m: ModelConfig, p: Precision) -> float:
    """All weights of the main layers, each part in its checkpoint format (see weight_bytes_by_part)."""
    return sum(weight_bytes_by_part(m, p).values())


def activation_bytes(m: ModelConfig, B, S, p: Precision, phase: str = "decode") -> np.ndarray:
    """Estimate of the live activations of one layer at a time (not a measured figure):
    residual + normed input (2 d), the widest intermediate (FFN width, or per-head Q/K/V for
    attention, whichever is larger), plus the logits."""
    T = np.asarray(B, dtype=np.float64) * np.asarray(S, dtype=np.float64)
    if m.attention == "csa_hca":  # per-head queries and outputs of c values each
        attn_width = 2 * m.num_attention_heads * m.head_dim
    elif m.attention == "mla":
        attn_width = m.num_attention_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    else:
        attn_width = (m.num_attention_heads + 2 * m.num_key_value_heads) * m.head_dim
    ffn_width = max(m.intermediate_size if m.n_dense_layers else 0,
                    m.num_experts_per_tok * m.moe_intermediate_size + m.shared_expert_intermediate_size)
    logit_tokens = np.asarray(B, dtype=np.float64) if phase == "prefill" else T
    residual = 2 * mhc.residual_width(m)  # residual (n_hc x d with mHC) + normed input
    return T * (residual + max(attn_width, 2 * ffn_width)) * p.a_bytes + logit_tokens * m.vocab_size * LOGITS_BYTES


def kv_cache_ledger(m: ModelConfig, B, L, p: Precision) -> KVLedger:
    """Exact KV bytes of B sequences at context L, by store (kv_ledger)."""
    return kv_ledger(m, L, p.kv, p.indexer).scaled(np.asarray(B, dtype=np.float64))


def kv_cache_bytes(m: ModelConfig, B, L, p: Precision) -> np.ndarray:
    return kv_cache_ledger(m, B, L, p).total


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
    fixed = kv_cache_bytes(m, B, 0.0, p)  # V4: window and compressor state, whatever the context
    # bytes per context token, from the exact ledger over a long span (exact for MHA/GQA/MLA;
    # V4's compressed stores grow by one entry every m tokens)
    span = float(2**20)
    per_token = (kv_cache_bytes(m, B, span, p) - fixed) / span
    return np.maximum(0, np.floor((free - fixed) / per_token)).astype(np.int64)
