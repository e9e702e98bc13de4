"""Parameter counts from the architecture (norm weights ignored: < 0.01%).

Activated parameters include the embedding and the LM head, as DeepSeek-V3's README_WEIGHTS
does (36.7B activated = ... + 0.9B embedding + 0.9B output head).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import compressed_attention, mhc
from .model_config import ModelConfig
from .moe import SWIGLU_MATRICES


@dataclass(frozen=True)
class ParamCount:
    embedding: int
    lm_head: int
    attention: int  # all layers
    dense_ffn: int  # all dense layers
    moe_router: int
    moe_shared: int
    moe_routed: int  # all routed experts, all MoE layers
    moe_routed_active: int  # top-k experts per token, all MoE layers
    attention_unquantized: int = 0  # V4: BF16 compressors and indexer head weights, all layers
    mhc: int = 0  # V4: mHC mixing projections (FP32)

    @property
    def total(self) -> int:
        return (self.embedding + self.lm_head + self.attention + self.dense_ffn + self.moe_router
                + self.moe_shared + self.moe_routed + self.attention_unquantized + self.mhc)

    @property
    def active(self) -> int:
        return self.total - self.moe_routed + self.moe_routed_active


def attention_params_per_layer(m: ModelConfig) -> int:
    d, H = m.hidden_size, m.num_attention_heads
    if m.attention != "mla":
        G, Dh = m.num_key_value_heads, m.head_dim
        return d * (H + 2 * G) * Dh + H * Dh * d  # W_q, W_k, W_v, W_o
    Cq, C, R, Dn, Dv = m.q_lora_rank, m.kv_lora_rank, m.qk_rope_head_dim, m.qk_nope_head_dim, m.v_head_dim
    q = d * Cq + Cq * H * (Dn + R) if Cq else d * H * (Dn + R)  # W_DQ, W_UQ (+ W_QR) or W_Q
    kv = d * (C + R) + C * H * (Dn + Dv)  # W_DKV (+ W_KR), W_UK and W_UV
    out = H * Dv * d
    indexer = 0
    if m.sparse_attention:
        Hi, Di = m.index_n_heads, m.index_head_dim
        indexer = (Cq or d) * Hi * Di + d * Di + d * Hi  # indexer W_q, W_k, head weights
    return q + kv + out + indexer


def count_params(m: ModelConfig) -> ParamCount:
    """Main layers only: the MTP layer(s) are counted apart, as V3's README_WEIGHTS does."""
    d = m.hidden_size
    expert = SWIGLU_MATRICES * d * m.moe_intermediate_size
    n_moe = m.n_moe_layers if m.is_moe else 0
    if m.attention == "csa_hca":
        per_kind = [compressed_attention.attention_params_per_layer(m, k) for k in m.kinds]
        attention, unquantized = sum(q for q, _ in per_kind), sum(u for _, u in per_kind)
    else:
        attention, unquantized = attention_params_per_layer(m) * m.num_hidden_layers, 0
    return ParamCount(
        embedding=m.vocab_size * d,
        lm_head=0 if m.tie_word_embeddings else m.vocab_size * d,
        attention=attention,
        attention_unquantized=unquantized,
        mhc=mhc.params(m),
        dense_ffn=SWIGLU_MATRICES * d * m.intermediate_size * m.n_dense_layers,
        moe_router=n_moe * d * m.n_routed_experts,
        moe_shared=n_moe * SWIGLU_MATRICES * d * m.shared_expert_intermediate_size,
        moe_routed=n_moe * m.n_routed_experts * expert,
        moe_routed_active=n_moe * m.num_experts_per_tok * expert,
    )
