"""Attention costs: MHA / GQA / MQA, and MLA in its naive and weight-absorbed forms, with
DeepSeek Sparse Attention (lightning indexer + top-k) for V3.2-Exp; DeepSeek-V4's CSA / HCA /
sliding-window layers are costed in `compressed_attention` (dispatched from `attention_ops`).

Shape legend: B batch, S query tokens, L context, T = B*S, d hidden, H query heads, G KV heads,
Dh head dim; MLA: Cq q_lora_rank, C kv_lora_rank, R qk_rope_head_dim, Dn qk_nope_head_dim,
Dv v_head_dim; DSA: Hi indexer heads, Di indexer head dim, K top-k tokens.
"""

from __future__ import annotations

import numpy as np

from .compressed_attention import v4_attention_ops
from .kv_ledger import indexer_key_bytes, kv_bytes_per_context_token, main_entry_bytes
from .model_config import ModelConfig
from .ops import CausalTiles, OpCost, computed_pairs, linear, op, visible_pairs
from .precision import Precision
from .units import DTYPE_BYTES

INDEX_ID_BYTES = 4.0  # one int32 token id per selected key
MLA_MODES = ("absorbed", "naive")


def kv_elements_per_token_per_layer(m: ModelConfig) -> int:
    """Cached elements per token per layer (DeepSeek-V2 paper, Table 1); V4: one head_dim vector
    per cached entry."""
    if m.attention == "csa_hca":
        return m.head_dim
    if m.attention == "mla":
        return m.kv_lora_rank + m.qk_rope_head_dim  # latent c_KV (d_c) + decoupled rope key (d_h^R)
    return 2 * m.num_key_value_heads * m.head_dim  # K and V (2), per KV head (n_g), per head dim (d_h)


def kv_bytes_per_token(m: ModelConfig, kv_dtype_bytes: float | str, indexer_dtype: str = "fp4") -> float:
    """KV-cache bytes per context token over all main layers, in the exact layouts of
    `kv_ledger` (FP8 MLA: 656 B per layer; V3.2 indexer keys with their FP32 scale). V4: the
    long-context rate (compressed entries at 1/m per token); its fixed window and compressor
    state per sequence are in `kv_ledger.kv_ledger`. `kv_dtype_bytes`: a dtype name or its bytes."""
    dtype = kv_dtype_bytes if isinstance(kv_dtype_bytes, str) else _dtype_of(kv_dtype_bytes)
    return kv_bytes_per_context_token(m, dtype, indexer_dtype)


def _dtype_of(n_bytes: float) -> str:
    for name in ("bf16", "fp8", "fp6", "fp4", "fp32"):
        if DTYPE_BYTES[name] == n_bytes:
            return name
    raise ValueError(f"no KV dtype of {n_bytes} bytes per value")


def attention_ops(m: ModelConfig, B, S, L, p: Precision, mla_mode: str = "absorbed",
                  tiles: CausalTiles | None = None) -> list[OpCost]:
    """Per-layer attention ops for one step of S query tokens per sequence over L context.
    tiles: the pairs a tiled kernel computes (`computed_pairs`; the benchmark's CPU kernels); None:
    the exact causal pairs (dense MLA and GQA; the sparse and compressed kinds count their own)."""
    if m.attention == "csa_hca":
        return v4_attention_ops(m, B, S, L, p)
    if m.attention == "mla":
        return _mla_ops(m, B, S, L, p, mla_mode, tiles)
    return _gqa_ops(m, B, S, L, p, tiles)


def _gqa_ops(m: ModelConfig, B, S, L, p: Precision, tiles: CausalTiles | None = None) -> list[OpCost]:
    n, d, H, G, Dh = m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.num_key_value_heads, m.head_dim
    T = B * S
    pairs = B * computed_pairs(S, L, tiles)
    kv_per_token = 2 * G * Dh * p.kv_bytes  # K and V for each KV head
    core = op(
        "attn_core", "attn_core", n,
        # QK^T over Dh and PV over Dh, per query head and visible pair
        flop=2.0 * H * pairs * Dh + 2.0 * H * pairs * Dh,
        # the whole cache of each sequence once, plus Q
        bytes_read=B * L * kv_per_token + T * H * Dh * p.a_bytes,
        # output O plus this step's new K, V into the cache
        bytes_written=T * H * Dh * p.a_bytes + T * kv_per_token,
        compute_dtype=p.attn_dtype,
        rows=S * (H // G),  # query rows per KV head share one read of that head's K and V
    )
    return [
        linear("qkv_proj", "attn_proj", n, T, d, (H + 2 * G) * Dh, p.w_bytes, p.a_bytes, p.gemm_dtype),
        core,
        linear("o_proj", "attn_proj", n, T, H * Dh, d, p.w_bytes, p.a_bytes, p.gemm_dtype),
    ]


def _mla_ops(m: ModelConfig, B, S, L, p: Precision, mode: str, tiles: CausalTiles | None = None) -> list[OpCost]:
    if mode not in MLA_MODES:
        from .errors import ConfigError

        raise ConfigError(f"MLA mode {mode!r}: expected one of {', '.join(MLA_MODES)}")
    n, d, H = m.num_hidden_layers, m.hidden_size, m.num_attention_heads
    Cq, C, R, Dn, Dv = m.q_lora_rank, m.kv_lora_rank, m.qk_rope_head_dim, m.qk_nope_head_dim, m.v_head_dim
    T = B * S
    ops: list[OpCost] = []
    if Cq:
        ops.append(linear("q_a_proj", "attn_proj", n, T, d, Cq, p.w_bytes, p.a_bytes, p.gemm_dtype))
        ops.append(linear("q_b_proj", "attn_proj", n, T, Cq, H * (Dn + R), p.w_bytes, p.a_bytes, p.gemm_dtype))
    else:
        ops.append(linear("q_proj", "attn_proj", n, T, d, H * (Dn + R), p.w_bytes, p.a_bytes, p.gemm_dtype))
    ops.append(linear("kv_a_proj", "attn_proj", n, T, d, C + R, p.w_bytes, p.a_bytes, p.gemm_dtype))

    if m.sparse_attention:
        ops += _indexer_ops(m, B, S, L, p)
        pairs = B * visible_pairs(S, L, m.index_topk)
        cached_tokens_read = B * np.minimum(L, m.index_topk * S)  # only selected tokens are gathered
    else:
        pairs = B * computed_pairs(S, L, tiles)
        cached_tokens_read = B * L
    latent_bytes = main_entry_bytes(m, p.kv)  # one cached token: latent + rope key (FP8: + tile scales)
    new_latent_written = T * latent_bytes

    if mode == "absorbed":
        # W_UK folded into the query: q_nope[T,H,Dn] @ W_UK[H,Dn,C] -> q_latent[T,H,C]
        ops.append(op(
            "mla_q_absorb", "attn_core", n,
            flop=2.0 * T * H * Dn * C,
            bytes_read=H * Dn * C * p.w_bytes + T * H * Dn * p.a_bytes,
            bytes_written=T * H * C * p.a_bytes,
            compute_dtype=p.gemm_dtype,
            rows=T,
        ))
        # scores over latent + rope (C + R), values over the latent (C): MQA-like, one shared KV head
        ops.append(op(
            "attn_core", "attn_core", n,
            flop=2.0 * H * pairs * (C + R) + 2.0 * H * pairs * C,
            bytes_read=cached_tokens_read * latent_bytes + T * H * (C + R) * p.a_bytes,
            bytes_written=T * H * C * p.a_bytes + new_latent_written,
            compute_dtype=p.attn_dtype,
            rows=S * H,  # all heads' query rows of a sequence share one read of its latent cache
        ))
        # W_UV applied after attention: o_latent[T,H,C] @ W_UV[H,C,Dv] -> o[T,H,Dv]
        ops.append(op(
            "mla_v_up", "attn_core", n,
            flop=2.0 * T * H * C * Dv,
            bytes_read=H * C * Dv * p.w_bytes + T * H * C * p.a_bytes,
            bytes_written=T * H * Dv * p.a_bytes,
            compute_dtype=p.gemm_dtype,
            rows=T,
        ))
    else:
        # Up-project every cached latent to per-head K_nope and V: c[B*L, C] @ W_UKV[C, H*(Dn+Dv)]
        ops.append(op(
            "mla_kv_up", "attn_core", n,
            flop=2.0 * cached_tokens_read * C * H * (Dn + Dv),
            bytes_read=cached_tokens_read * latent_bytes + C * H * (Dn + Dv) * p.w_bytes,
            bytes_written=cached_tokens_read * H * (Dn + Dv) * p.a_bytes + new_latent_written,
            compute_dtype=p.gemm_dtype,
            rows=cached_tokens_read,  # every cached token reuses W_UKV
        ))
        # ordinary multi-head attention with K = [K_nope, k_rope] (Dn + R) and V (Dv)
        ops.append(op(
            "attn_core", "attn_core", n,
            flop=2.0 * H * pairs * (Dn + R) + 2.0 * H * pairs * Dv,
            bytes_read=cached_tokens_read * (H * (Dn + Dv) + R) * p.a_bytes + T * H * (Dn + R) * p.a_bytes,
            bytes_written=T * H * Dv * p.a_bytes,
            compute_dtype=p.attn_dtype,
            rows=S,  # per head: the sequence's query rows share one read of its K and V
        ))
    ops.append(linear("o_proj", "attn_proj", n, T, H * Dv, d, p.w_bytes, p.a_bytes, p.gemm_dtype))
    return ops


def _indexer_ops(m: ModelConfig, B, S, L, p: Precision) -> list[OpCost]:
    """DSA lightning indexer: Hi heads of dim Di score every visible token in FP8 (ReLU, weighted)."""
    n, d, Cq, Hi, Di = m.num_hidden_layers, m.hidden_size, m.q_lora_rank, m.index_n_heads, m.index_head_dim
    T = B * S
    q_in = Cq or d
    return [
        # indexer queries from the q latent, one key per token, per-head weights from the hidden state
        op(
            "indexer_proj", "indexer", n,
            flop=2.0 * T * (q_in * Hi * Di + d * Di + d * Hi),
            bytes_read=(q_in * Hi * Di + d * Di + d * Hi) * p.w_bytes + T * (q_in + d) * p.a_bytes,
            bytes_written=T * (Hi * Di + Di + Hi) * p.a_bytes + T * indexer_key_bytes(m, "fp8"),
            compute_dtype=p.gemm_dtype,
        ),
        op(
            "indexer_scores", "indexer", n,
            flop=2.0 * Hi * B * visible_pairs(S, L) * Di,  # dense over all visible pairs: O(L^2)
            bytes_read=B * L * indexer_key_bytes(m, "fp8") + T * Hi * Di * p.a_bytes,
            bytes_written=T * m.index_topk * INDEX_ID_BYTES,  # selected token ids out
            compute_dtype="fp8",
            rows=S * Hi,  # indexer query rows of a sequence share one read of its index keys
        ),
    ]
