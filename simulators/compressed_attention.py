"""DeepSeek-V4 compressed attention: CSA (m = 4, overlapped, lightning indexer + top-k), HCA
(m' = 128, dense over every compressed entry), and the sliding window every layer attends to.
Mechanics: shared/reference/deepseek-v4.md §1.4 (report §2.3); shapes: §1.3 (checkpoint, S3).

Shape legend: B batch, S query tokens, L context, T = B*S, d hidden, H query heads, c head_dim
(one vector is both K and V: shared-KV MQA), R rope dims, Cq q_lora_rank (query latent),
g o_groups, Dg o_lora_rank, m compression ratio, coff compressor streams (2 on CSA, 1 on HCA),
Hi indexer heads, Di indexer head dim, K top-k compressed entries, W sliding window.

Known deviation (tests/test_v4_claims.py): single-token FLOPs at 1M context relative to V3.2
come out 26.2% for Pro (report: 27%) but 12.1% for Flash (report: 10%). The indexer scores are
counted like V3.2's (2 Hi Di per query-entry pair, whatever the dtype); they are 64% of Flash's
step. How the report counts is not stated; nothing here is tuned to reach its figure.
"""

from __future__ import annotations

import numpy as np

from .kv_ledger import indexer_key_bytes, kind_ratio, main_entry_bytes
from .model_config import ModelConfig
from .ops import OpCost, linear, op, visible_pairs
from .precision import Precision

COMPRESSOR_MATRICES = 2  # W^KV (values) and W^Z (gate logits), each d -> coff * width
# Gated pooling per compressed value per token: exp, add to the softmax sum, divide, multiply
# by the value, accumulate = 5 FLOP (report §2.3.1: softmax over the block's logits + weighted sum).
POOL_FLOP_PER_VALUE = 5.0
INDEX_ID_BYTES = 4.0  # one int32 entry id per selected entry
SCORE_DOT_PRODUCTS = 2  # Q K^T over c dims, then P V over c dims (V is the same c-dim vector)


def streams(kind: str) -> int:
    """coff: CSA pools two overlapping streams (block i and i-1), HCA one."""
    return 2 if kind == "csa" else 1


def compressor_params(m: ModelConfig, kind: str) -> int:
    """BF16 compressor weights of one layer (S3: CSA wkv/wgate [1024, 7168], HCA [512, 7168],
    CSA indexer compressor [256, 7168]) plus the positional bias ape [m, coff * c]."""
    if kind not in ("csa", "hca"):
        return 0
    d, c, ratio, coff = m.hidden_size, m.head_dim, kind_ratio(m, kind), streams(kind)
    main = COMPRESSOR_MATRICES * d * coff * c + ratio * coff * c
    if kind == "csa":
        Di = m.index_head_dim
        main += COMPRESSOR_MATRICES * d * coff * Di + ratio * coff * Di
    return main


def indexer_params(m: ModelConfig, kind: str) -> tuple[int, int]:
    """(FP8, BF16) indexer weights of a CSA layer: W^IUQ Cq -> Hi*Di (FP8), W^w d -> Hi (BF16)."""
    if kind != "csa":
        return 0, 0
    return m.q_lora_rank * m.index_n_heads * m.index_head_dim, m.hidden_size * m.index_n_heads


def core_params(m: ModelConfig) -> int:
    """Quantised (FP8) attention weights every V4 layer has: wq_a, wq_b, wkv, wo_a, wo_b; plus
    the per-head attention sink logit."""
    d, H, c, Cq, g, Dg = (m.hidden_size, m.num_attention_heads, m.head_dim, m.q_lora_rank, m.o_groups,
                          m.o_lora_rank)
    q = d * Cq + Cq * H * c  # W^DQ, W^UQ
    kv = d * c  # W^KV: one c-dim K=V vector per token
    out = H * c * Dg + g * Dg * d  # grouped: g x (H/g * c -> Dg), then g * Dg -> d
    sink = H
    return q + kv + out + sink


def attention_params_per_layer(m: ModelConfig, kind: str) -> tuple[int, int]:
    """(quantised, unquantised) attention parameters of one layer of `kind`."""
    fp8_index, bf16_index = indexer_params(m, kind)
    return core_params(m) + fp8_index, compressor_params(m, kind) + bf16_index


def _window_pairs(S, L, W: int):
    return visible_pairs(S, L, W)  # each query sees its last W tokens (itself included)


def _compressed_pairs(S, L, ratio: int, top_k=None):
    """Query-entry pairs over compressed entries: the query at position t sees ~ (t+1)/m entries
    (floor dropped: < 1 entry per query), or at most top_k of them."""
    cap = None if top_k is None else top_k * ratio
    return visible_pairs(S, L, cap) / ratio


def v4_attention_ops(m: ModelConfig, B, S, L, p: Precision) -> list[OpCost]:
    """Per-layer ops of V4 attention for one step; each op carries the count of its layers."""
    n, d, H, c, Cq = m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.head_dim, m.q_lora_rank
    g, Dg = m.o_groups, m.o_lora_rank
    T = B * S
    entry = main_entry_bytes(m, p.kv)
    ops = [
        linear("q_a_proj", "attn_proj", n, T, d, Cq, p.w_bytes, p.a_bytes, p.gemm_dtype),
        linear("q_b_proj", "attn_proj", n, T, Cq, H * c, p.w_bytes, p.a_bytes, p.gemm_dtype),
        linear("kv_proj", "attn_proj", n, T, d, c, p.w_bytes, p.a_bytes, p.gemm_dtype),
        op(
            "o_a_proj", "attn_proj", n,
            flop=2.0 * T * (H * c) * Dg,  # g groups, each (H/g * c) -> Dg
            bytes_read=H * c * Dg * p.w_bytes + T * H * c * p.a_bytes,
            bytes_written=T * g * Dg * p.a_bytes,
            compute_dtype=p.gemm_dtype,
            rows=T,
        ),
        linear("o_b_proj", "attn_proj", n, T, g * Dg, d, p.w_bytes, p.a_bytes, p.gemm_dtype),
    ]
    for kind in ("csa", "hca", "swa"):
        k_layers = m.layers_of_kind(kind)
        if k_layers:
            ops += _kind_ops(m, kind, k_layers, B, S, L, p, entry)
    return ops


def _kind_ops(m: ModelConfig, kind: str, n: int, B, S, L, p: Precision, entry: float) -> list[OpCost]:
    d, H, c, W = m.hidden_size, m.num_attention_heads, m.head_dim, m.sliding_window
    T = B * S
    window_pairs = B * _window_pairs(S, L, W)
    window_read = B * np.minimum(L, S + W - 1) * entry  # the window of each query block (cached + new)
    new_window = T * entry  # this step's tokens enter the window (state cache)
    q_bytes = T * H * c * p.a_bytes
    out_bytes = T * H * c * p.a_bytes
    if kind == "swa":
        return [_core(f"{kind}_core", n, H, c, window_pairs, window_read + q_bytes, out_bytes + new_window,
                      p, S)]
    ratio, coff = kind_ratio(m, kind), streams(kind)
    new_entries = T / ratio  # compressed entries completed this step
    ops = [op(
        f"{kind}_compressor", "compressor", n,
        # W^KV and W^Z on every token, then gated pooling of each block of m (2m on CSA) tokens
        flop=2.0 * T * d * COMPRESSOR_MATRICES * coff * c + POOL_FLOP_PER_VALUE * T * coff * c,
        bytes_read=COMPRESSOR_MATRICES * d * coff * c * p.keep_w_bytes + T * d * p.a_bytes,
        bytes_written=new_entries * entry,
        compute_dtype=p.keep_gemm_dtype,
        rows=T,
    )]
    if kind == "csa":
        K = m.index_topk
        ops += _indexer_ops(m, n, B, S, L, p, ratio)
        pairs = B * _compressed_pairs(S, L, ratio, K) + window_pairs
        entries_read = B * np.minimum(np.floor(L / ratio), K * S)  # the selected entries, gathered
    else:
        pairs = B * _compressed_pairs(S, L, ratio) + window_pairs
        entries_read = B * np.floor(L / ratio)  # dense over every compressed entry
    ops.append(_core(f"{kind}_core", n, H, c, pairs, entries_read * entry + window_read + q_bytes,
                     out_bytes + new_window, p, S))
    return ops


def _core(name: str, n: int, H: int, c: int, pairs, bytes_read, bytes_written, p: Precision, S) -> OpCost:
    """Shared-KV MQA over [window | compressed entries], with the attention sink (one logit per
    head added to the softmax denominator: no extra pairs)."""
    return op(
        name, "attn_core", n,
        flop=SCORE_DOT_PRODUCTS * 2.0 * H * pairs * c,
        bytes_read=bytes_read,
        bytes_written=bytes_written,
        compute_dtype=p.attn_dtype,
        rows=S * H,  # every head's query rows of a sequence share one read of its single KV head
    )


def _indexer_ops(m: ModelConfig, n: int, B, S, L, p: Precision, ratio: int) -> list[OpCost]:
    """Lightning indexer of a CSA layer: queries from the shared query latent c_Q, per-head weights
    from h, keys from its own compressor (c_I = Di); ReLU scores over every compressed entry."""
    d, Cq, Hi, Di, K = m.hidden_size, m.q_lora_rank, m.index_n_heads, m.index_head_dim, m.index_topk
    T = B * S
    coff = streams("csa")
    key = indexer_key_bytes(m, p.indexer)
    bf16_in = d * Hi + COMPRESSOR_MATRICES * d * coff * Di  # W^w and the indexer compressor (BF16)
    return [
        op(
            "indexer_proj", "indexer", n,
            flop=2.0 * T * (Cq * Hi * Di + bf16_in) + POOL_FLOP_PER_VALUE * T * coff * Di,
            bytes_read=Cq * Hi * Di * p.w_bytes + bf16_in * p.keep_w_bytes + T * (Cq + d) * p.a_bytes,
            bytes_written=T * (Hi * Di + Hi) * p.a_bytes + T / ratio * key,
            compute_dtype=p.gemm_dtype,
            rows=T,
        ),
        op(
            "indexer_scores", "indexer", n,
            # Di multiply-adds per head and (query, entry) pair, as V3.2's indexer (ReLU, w^I: not counted)
            flop=2.0 * Hi * B * _compressed_pairs(S, L, ratio) * Di,  # O(L^2 / m)
            bytes_read=B * np.floor(L / ratio) * key + T * Hi * Di * p.a_bytes,
            bytes_written=T * K * INDEX_ID_BYTES,  # selected entry ids out
            compute_dtype=p.indexer,  # FP4 QK on Blackwell (report §5.2.1); the roofline widens elsewhere
            rows=S * Hi,
        ),
    ]
