"""One inference step of a whole model: the list of per-layer ops with their layer counts.

Shape legend: B batch, S query tokens per sequence (prefill: the prompt chunk; decode: 1, or
1 + MTP draft tokens), L context including this step's tokens, T = B*S.
"""

from __future__ import annotations

import numpy as np

from .attention import attention_ops
from .hash_load import hash_inclusion
from .mhc import mhc_ops
from .model_config import ModelConfig
from .moe import dense_ffn_op, moe_ops
from .ops import CausalTiles, OpCost, linear, op, rmsnorm
from .precision import Precision

NORMS_PER_LAYER = 2  # pre-attention and pre-FFN RMSNorm


def step_ops(m: ModelConfig, B, S, L, p: Precision, *, phase: str = "decode", mla_mode: str = "absorbed",
             routing_skew: float = 0.0, token_zipf_exponent: float | None = None,
             causal_tiles: CausalTiles | None = None) -> list[OpCost]:
    """All ops of one forward step. Prefill computes logits only for each sequence's last token.
    `token_zipf_exponent`: hash-routed MoE layers (V4) read the experts a Zipf token frequency hits
    through the seeded hash table (`simulators.hash_load`); None: costed like the router's layers.
    `causal_tiles`: attention pairs as a tiled kernel computes them (`simulators.ops.computed_pairs`;
    the benchmark's CPU cases); None: the exact causal pairs."""
    B = np.asarray(B, dtype=np.float64)
    S = np.asarray(S, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    T = B * S
    d, V = m.hidden_size, m.vocab_size
    logit_tokens = B if phase == "prefill" else T
    ops: list[OpCost] = [
        op("embed", "embed", 1, flop=0.0 * T, bytes_read=T * d * p.keep_w_bytes, bytes_written=T * d * p.a_bytes,
           compute_dtype=p.act),
        rmsnorm("norms", m.num_hidden_layers, T, d, NORMS_PER_LAYER, p.w_bytes, p.a_bytes, p.act),
    ]
    ops += attention_ops(m, B, S, L, p, mla_mode, causal_tiles)
    ops += mhc_ops(m, T, p)
    if m.n_dense_layers:
        ops.append(dense_ffn_op(m, T, p))
    if m.is_moe:
        lam = None
        if token_zipf_exponent is not None and m.num_hash_layers:
            lam = hash_inclusion(m.vocab_size, m.n_routed_experts, m.num_experts_per_tok,
                                 float(token_zipf_exponent))[0]  # per-expert inclusion of a hash layer
        ops += moe_ops(m, T, p, routing_skew, hash_inclusion=lam)
    ops.append(linear("lm_head", "lm_head", 1, logit_tokens, d, V, p.keep_w_bytes, p.a_bytes, p.keep_gemm_dtype))
    return ops


def family_cost(ops: list[OpCost], families: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flop, bytes_read, bytes_written) of ONE layer's ops in the given families: what one
    benchmark kernel (e.g. one MLA attention or one MoE layer) executes."""
    picked = [o for o in ops if o.family in families]
    if not picked:
        raise ValueError(f"no op of families {families}")
    return (
        sum(o.flop for o in picked),
        sum(o.bytes_read for o in picked),
        sum(o.bytes_written for o in picked),
    )


def family_rows(ops: list[OpCost], families: tuple[str, ...]) -> np.ndarray:
    """Rows per reused operand of the family's dominant op (the one with the most FLOPs): the shape
    class that sets the achievable compute rate of the kernel as a whole."""
    picked = [o for o in ops if o.family in families]
    if not picked:
        raise ValueError(f"no op of families {families}")
    flops = np.stack([np.broadcast_to(o.flop, np.shape(picked[0].flop)) for o in picked])
    rows = np.stack([np.broadcast_to(o.rows, flops.shape[1:]) for o in picked])
    return np.take_along_axis(rows, np.argmax(flops, axis=0)[None], axis=0)[0]
