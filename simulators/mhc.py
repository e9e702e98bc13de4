"""mHC (manifold-constrained hyper-connections, DeepSeek-V4 report §2.2): the residual stream is
n_hc copies of the hidden state; before each sub-layer (attention, FFN) one projection of the
RMS-normed n_hc*d stream gives A (1 x n_hc: pre-mix), C (n_hc x 1: post) and B (n_hc x n_hc:
residual mix, made doubly stochastic by Sinkhorn-Knopp iterations).
Shapes: hc_attn_fn / hc_ffn_fn [2 n_hc + n_hc^2, n_hc d] FP32 per layer, hc_head_fn [n_hc, n_hc d]
once (shared/reference/deepseek-v4.md §1.3, §1.7).

Time: only the roofline price of these FLOPs and bytes (about zero). Measured engines show mHC
is launch-bound at small batch (gLLM#264, mlx-lm#1189: secondary), but no per-op overhead is
sourced for a shipped profile, so none is added here.

Shape legend: T tokens, d hidden, n = n_hc (hc_mult), I Sinkhorn iterations.
"""

from __future__ import annotations

from .model_config import ModelConfig
from .ops import OpCost, op
from .precision import Precision
from .units import DTYPE_BYTES

SUBLAYERS_PER_LAYER = 2  # attention and FFN
MHC_WEIGHT_DTYPE = "fp32"  # S3: hc_*_fn are FP32
ALPHA_GATES = 3  # hc_*_scale [3]
# The mix's RMSNorm has no weight and is applied after the projection (V4 inference hc_pre:
# mixes = (x W) * rsqrt(mean(x^2) + eps)): square and sum per n d input value, one multiply per
# 2n + n^2 output (was counted as a full 4-FLOP RMSNorm of the n d inputs)
RMS_FLOP_PER_VALUE = 2.0  # square, sum
RMS_SCALE_FLOP_PER_OUTPUT = 1.0
SINKHORN_FLOP_PER_VALUE = 2.0  # per iteration: a row sum and a divide per entry, twice (rows, cols)


def enabled(m: ModelConfig) -> bool:
    return m.hc_mult > 1


def residual_width(m: ModelConfig) -> int:
    """Values per token in the residual stream: n_hc x d (d without mHC)."""
    return (m.hc_mult if enabled(m) else 1) * m.hidden_size


def mix_outputs(m: ModelConfig) -> int:
    """2 n + n^2: pre-mix A (n), post C (n), residual mix B (n x n); 24 for n = 4."""
    n = m.hc_mult
    return 2 * n + n * n


def params(m: ModelConfig) -> int:
    """All mHC parameters: per sub-layer fn, base and alpha gates, plus the head's mix."""
    if not enabled(m):
        return 0
    n, wide = m.hc_mult, residual_width(m)
    per_sublayer = wide * mix_outputs(m) + mix_outputs(m) + ALPHA_GATES
    head = n * wide + n + 1  # hc_head_fn [n, n d], its base and scale
    return SUBLAYERS_PER_LAYER * m.num_hidden_layers * per_sublayer + head


def weight_bytes(m: ModelConfig) -> float:
    return params(m) * DTYPE_BYTES[MHC_WEIGHT_DTYPE]


def mhc_ops(m: ModelConfig, T, p: Precision) -> list[OpCost]:
    """The per-sub-layer mix (norm, projection, Sinkhorn, pre-combine) and post (C, B), over
    2 x layers sub-layers; none without mHC."""
    if not enabled(m):
        return []
    n, d, wide, k = m.hc_mult, m.hidden_size, residual_width(m), mix_outputs(m)
    subs = SUBLAYERS_PER_LAYER * m.num_hidden_layers
    w_bytes = DTYPE_BYTES[MHC_WEIGHT_DTYPE]
    return [
        op(
            "mhc_mix", "mhc", subs,
            flop=(RMS_FLOP_PER_VALUE * T * wide + RMS_SCALE_FLOP_PER_OUTPUT * T * k  # 1/rms(vec X)
                  + 2.0 * T * wide * k  # X^ W, W [n d, 2n + n^2]
                  + T * m.hc_sinkhorn_iters * SINKHORN_FLOP_PER_VALUE * 2 * n * n  # Sinkhorn on B
                  + 2.0 * T * n * d),  # A: the sub-layer input = sum of n streams
            bytes_read=wide * k * w_bytes + T * wide * p.a_bytes,
            bytes_written=T * d * p.a_bytes + T * k * DTYPE_BYTES["fp32"],
            # DeepGEMM runs it as tf32_hc_prenorm_gemm (m, 24, 28672); priced at the activation
            # dtype's peak because not every profile states a TF32/FP32 peak (Ascend), and these
            # FLOPs are ~0.2% of a step
            compute_dtype=p.act,
            rows=T,
        ),
        op(
            "mhc_post", "mhc", subs,
            flop=2.0 * T * n * n * d + 2.0 * T * n * d,  # B X (n x n mix) + C y (output to n streams)
            bytes_read=T * (wide + d) * p.a_bytes,
            bytes_written=T * wide * p.a_bytes,
            compute_dtype=p.act,
        ),
    ]
