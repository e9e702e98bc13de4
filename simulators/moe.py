"""Feed-forward costs: dense SwiGLU FFN, and the MoE router, shared and routed experts.

Shape legend: T tokens this step, d hidden, I dense FFN width, E routed experts, k experts per
token, Ie expert width, Is total shared-expert width.
SwiGLU = three matrices (gate, up, down) of d x width each.
"""

from __future__ import annotations

import numpy as np

from .model_config import ModelConfig
from .ops import OpCost, linear, op
from .precision import Precision

SWIGLU_MATRICES = 3  # gate, up, down


def expected_distinct_experts(tokens, n_experts: int, top_k: int, skew: float = 0.0) -> np.ndarray:
    """Expected number of distinct routed experts hit when `tokens` tokens each pick top_k of
    n_experts. skew = 0: uniform routing, E * (1 - (1 - k/E)^T). skew > 0: expert popularity
    follows a Zipf law p_i ~ i^-skew; each token includes expert i with probability min(1, k p_i).
    At decode this count sets how many expert weight matrices are read from memory.
    """
    t = np.asarray(tokens, dtype=np.float64)
    if skew <= 0.0:
        return n_experts * (1.0 - (1.0 - top_k / n_experts) ** t)
    ranks = np.arange(1, n_experts + 1, dtype=np.float64)
    popularity = ranks**-skew
    include = np.minimum(1.0, top_k * popularity / popularity.sum())  # per-token inclusion prob.
    return distinct_from_inclusion(t, include)


def dense_ffn_op(m: ModelConfig, T, p: Precision, name: str = "dense_ffn") -> OpCost:
    d, I = m.hidden_size, m.intermediate_size
    return op(
        name, "dense_ffn", m.n_dense_layers,
        flop=2.0 * T * d * I * SWIGLU_MATRICES,
        bytes_read=SWIGLU_MATRICES * d * I * p.w_bytes + T * d * p.a_bytes + T * I * p.a_bytes,
        bytes_written=T * d * p.a_bytes + T * I * p.a_bytes,  # h = silu(x W1) * x W3, then y
        compute_dtype=p.gemm_dtype,
        rows=T,
    )


def distinct_from_inclusion(tokens, inclusion: np.ndarray) -> np.ndarray:
    """Expected distinct experts hit by `tokens` independent tokens when a token includes expert j
    with probability inclusion[j]: sum_j 1 - (1 - inclusion_j)^T (exact for independent tokens)."""
    t = np.asarray(tokens, dtype=np.float64)
    uniq, inverse = np.unique(t, return_inverse=True)  # few distinct token counts in a sweep
    hit = (1.0 - (1.0 - np.clip(inclusion, 0.0, 1.0)[None, :]) ** uniq[:, None]).sum(axis=1)
    return hit[inverse].reshape(t.shape)


def _routed_op(m: ModelConfig, T, p: Precision, experts_read, n_layers: int, name: str) -> OpCost:
    d, Ie, k = m.hidden_size, m.moe_intermediate_size, m.num_experts_per_tok
    assignments = T * k  # token-expert pairs
    return op(
        name, "moe_routed", n_layers,
        flop=2.0 * assignments * d * Ie * SWIGLU_MATRICES,
        # weights of every expert hit; tokens gathered per assignment; intermediate written + read
        bytes_read=experts_read * SWIGLU_MATRICES * d * Ie * p.expert_w_bytes + assignments * (d + Ie) * p.a_bytes,
        bytes_written=assignments * (d + Ie) * p.a_bytes,
        compute_dtype=p.expert_gemm_dtype,
        rows=assignments / np.maximum(experts_read, 1.0),  # tokens per expert hit share its weights
    )


def moe_ops(m: ModelConfig, T, p: Precision, skew: float = 0.0,
            hash_inclusion: np.ndarray | None = None) -> list[OpCost]:
    """Router + shared experts + routed experts of one MoE layer (n_moe_layers of them).
    `hash_inclusion`: per-expert inclusion of the hash-routed layers (V4, `simulators.hash_load`);
    given, those layers become their own op `moe_routed_hash`, reading the experts that inclusion
    hits; None: every MoE layer costed by the router's model (skew)."""
    n, d, E, k, Ie, Is = (
        m.n_moe_layers, m.hidden_size, m.n_routed_experts, m.num_experts_per_tok,
        m.moe_intermediate_size, m.shared_expert_intermediate_size,
    )
    ops = [linear("moe_router", "moe_router", n, T, d, E, p.keep_w_bytes, p.a_bytes, p.act)]
    if Is:
        ops.append(op(
            "moe_shared", "moe_shared", n,
            flop=2.0 * T * d * Is * SWIGLU_MATRICES,
            bytes_read=SWIGLU_MATRICES * d * Is * p.w_bytes + T * d * p.a_bytes + T * Is * p.a_bytes,
            bytes_written=T * d * p.a_bytes + T * Is * p.a_bytes,
            compute_dtype=p.gemm_dtype,
            rows=T,
        ))
    n_hash = m.num_hash_layers if hash_inclusion is not None else 0
    ops.append(_routed_op(m, T, p, expected_distinct_experts(T, E, k, skew), n - n_hash, "moe_routed"))
    if n_hash:
        ops.append(_routed_op(m, T, p, distinct_from_inclusion(T, hash_inclusion), n_hash, "moe_routed_hash"))
    return ops
