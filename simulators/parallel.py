"""Parallel layouts and what one device holds and does: TP, EP, DP attention, PP.

A deployment unit has devices = tp * dp * pp.
  tp: tensor parallel inside an attention group: heads, dense FFN, shared experts, vocab split tp ways.
      GQA KV heads split up to the number of KV heads; MLA's latent cache is NOT split (every TP
      rank needs the whole latent), which is why DeepSeek runs attention data-parallel instead.
  dp: data-parallel attention groups (each with its own sequences and KV cache) in one pipeline stage.
  ep: expert parallel degree of the routed experts: 1 (experts TP-split with everything else) or
      tp * dp (experts spread over every device of a stage, one all-to-all per MoE layer).
  pp: pipeline stages, each holding ceil(layers / pp) layers.

Per-device costs reuse the one cost model: `step_ops` on a TP shard of the model (a ModelConfig with
heads / tp, KV heads / tp, FFN / tp, vocab / tp) at the per-group batch, with the routed-expert op
taken at the stage's global batch and divided by the devices of the stage (balanced routing).

Shape legend: B sequences per attention group per micro-batch, S query tokens per sequence,
L context, T = B * S, E routed experts, k experts per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .attention import kv_bytes_per_token
from .errors import ConfigError
from .mhc import weight_bytes as mhc_weight_bytes
from .model_config import ModelConfig
from .model_cost import step_ops
from .moe import SWIGLU_MATRICES, moe_ops
from .ops import OpCost, op
from .params import count_params
from .precision import Precision

PER_STEP_OPS = ("embed", "lm_head")  # ops that run once per step, not once per layer


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    dp: int = 1
    pp: int = 1
    ep: int = 1
    redundant_experts: int = 0  # extra replicas of hot experts (DeepSeek: 32), memory only

    @property
    def devices(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def stage_devices(self) -> int:
        return self.tp * self.dp

    def check(self, m: ModelConfig) -> None:
        """One-line ConfigError when the layout cannot hold this model."""
        for name in ("tp", "dp", "pp", "ep"):
            if getattr(self, name) < 1:
                raise ConfigError(f"layout {self}: {name} must be >= 1")
        if m.num_attention_heads % self.tp:
            raise ConfigError(f"layout tp={self.tp}: does not divide the {m.num_attention_heads} attention heads")
        if self.pp > m.num_hidden_layers:
            raise ConfigError(f"layout pp={self.pp}: more stages than the {m.num_hidden_layers} layers")
        if self.ep not in (1, self.stage_devices):
            raise ConfigError(f"layout ep={self.ep}: expected 1 or tp*dp = {self.stage_devices}")
        if self.ep > 1 and not m.is_moe:
            raise ConfigError(f"layout ep={self.ep}: {m.name} has no routed experts")


def tp_shard(m: ModelConfig, tp: int) -> ModelConfig:
    """The slice of the model one TP rank computes. MLA keeps kv_lora_rank (latent replicated);
    GQA keeps at least one KV head per rank (replicated when tp > KV heads). Routed experts are not
    sharded here: their share is set by the stage (see `device_ops`)."""
    if tp == 1:
        return m
    H, G = m.num_attention_heads, m.num_key_value_heads
    return replace(
        m,
        num_attention_heads=H // tp,
        num_key_value_heads=H // tp if m.attention == "mla" else max(1, math.ceil(G / tp)),
        intermediate_size=math.ceil(m.intermediate_size / tp),
        shared_expert_intermediate_size=math.ceil(m.shared_expert_intermediate_size / tp),
        vocab_size=math.ceil(m.vocab_size / tp),
        o_groups=max(1, m.o_groups // tp) if m.o_groups else 0,  # V4: output groups split with the heads
    )


def stage_fraction(m: ModelConfig, pp) -> np.ndarray:
    """Share of the layers on the largest pipeline stage: ceil(layers / pp) / layers."""
    n = m.num_hidden_layers
    return np.ceil(n / np.asarray(pp, dtype=np.float64)) / n


def experts_per_device(m: ModelConfig, ep, redundant_experts: int = 0) -> np.ndarray:
    """Routed experts (with redundant replicas) one EP rank holds: ceil((E + R) / ep)."""
    return np.ceil((m.n_routed_experts + redundant_experts) / np.asarray(ep, dtype=np.float64))


def weight_bytes_per_device(m: ModelConfig, p: Precision, tp, dp, pp, ep, redundant_experts: int = 0) -> np.ndarray:
    """Weights on the fullest device. Vectorised over the layout arrays (tp must be one value)."""
    tp = int(np.unique(np.asarray(tp)).item())
    shard = count_params(tp_shard(m, tp))
    frac = stage_fraction(m, pp)
    pp = np.asarray(pp, dtype=np.float64)
    per_layer_bytes = ((shard.attention + shard.dense_ffn + shard.moe_shared) * p.w_bytes
                       + (shard.moe_router + shard.attention_unquantized) * p.keep_w_bytes + mhc_weight_bytes(m))
    expert_params = SWIGLU_MATRICES * m.hidden_size * m.moe_intermediate_size
    moe_tp = tp * np.asarray(dp, dtype=np.float64) / np.asarray(ep, dtype=np.float64)  # ranks sharing one expert
    routed = (m.n_moe_layers if m.is_moe else 0) * experts_per_device(m, ep, redundant_experts) * expert_params / moe_tp
    # first stage holds the embedding, last the LM head; with one stage, both
    ends = np.where(pp > 1, max(shard.embedding, shard.lm_head), shard.embedding + shard.lm_head)
    return ends * p.keep_w_bytes + (per_layer_bytes + routed * p.expert_w_bytes) * frac


def kv_bytes_per_token_per_device(m: ModelConfig, p: Precision, tp: int, pp) -> np.ndarray:
    """KV bytes one device stores per cached token of one of its sequences (its layers, its heads)."""
    return kv_bytes_per_token(tp_shard(m, tp), p.kv_bytes) * stage_fraction(m, pp)


def _scaled(o: OpCost, factor) -> OpCost:
    return op(o.op, o.family, o.n_layers, o.flop * factor, o.bytes_read * factor, o.bytes_written * factor,
              o.compute_dtype)


def routed_op_on_rank(m: ModelConfig, p: Precision, assignments, distinct, n_layers: int | None = None,
                      name: str = "moe_routed") -> OpCost:
    """The routed-expert op of one EP rank that computes `assignments` token-expert pairs over
    `distinct` expert replicas (weights read once each, in the experts' storage format: MXFP4 is
    4 bits + one E8M0 byte per 32 values): the busiest rank's, from `simulators.expert_load`, or
    the mean rank's, over `n_layers` MoE layers (default all). Shape legend: d hidden, Ie expert width."""
    d, Ie = m.hidden_size, m.moe_intermediate_size
    A = np.asarray(assignments, dtype=np.float64)
    D = np.asarray(distinct, dtype=np.float64)
    return op(name, "moe_routed", m.n_moe_layers if n_layers is None else n_layers,
              flop=2.0 * A * d * Ie * SWIGLU_MATRICES,
              # weights of each replica hit; tokens gathered per assignment; intermediate written + read
              bytes_read=D * SWIGLU_MATRICES * d * Ie * p.expert_w_bytes + A * (d + Ie) * p.a_bytes,
              bytes_written=A * (d + Ie) * p.a_bytes,
              compute_dtype=p.expert_gemm_dtype, rows=A / np.maximum(D, 1.0))


def device_ops(m: ModelConfig, p: Precision, tp: int, dp, B, S, L, *, phase: str, mla_mode: str,
               routing_skew: float = 0.0, rank_load: tuple | None = None,
               hash_load: tuple | None = None) -> list[OpCost]:
    """All ops one device runs in one step of one micro-batch, over ALL layers (PP scaling is
    applied by the caller). tp is one value; dp, B, S, L broadcast as arrays. `rank_load`:
    (assignments, distinct replicas) of the EP rank to cost (see `routed_op_on_rank`); None: the
    stage's routed work divided evenly over its devices. `hash_load`: the same for the model's
    hash-routed layers (`ModelConfig.moe_routing_layers`), whose load follows token frequency;
    None: every MoE layer costed at `rank_load`."""
    shard = tp_shard(m, tp)
    B = np.asarray(B, dtype=np.float64)
    ops = step_ops(shard, B, S, L, p, phase=phase, mla_mode=mla_mode, routing_skew=routing_skew)
    if not m.is_moe:
        return ops
    if rank_load is not None:
        rest = [o for o in ops if o.op != "moe_routed"]
        if hash_load is None or not m.num_hash_layers:
            return rest + [routed_op_on_rank(m, p, *rank_load)]
        layers = m.moe_routing_layers
        return rest + [routed_op_on_rank(m, p, *rank_load, n_layers=layers["router"]),
                       routed_op_on_rank(m, p, *hash_load, n_layers=layers["hash"], name="moe_routed_hash")]
    # Routed experts: the stage's tokens (every attention group's), spread over tp * dp devices.
    stage_devices = tp * np.asarray(dp, dtype=np.float64)
    T_stage = B * np.asarray(S, dtype=np.float64) * np.asarray(dp, dtype=np.float64)
    routed = [o for o in moe_ops(m, T_stage, p, routing_skew) if o.op == "moe_routed"][0]
    return [o for o in ops if o.op != "moe_routed"] + [_scaled(routed, 1.0 / stage_devices)]


def layer_scale(o: OpCost, frac) -> np.ndarray:
    """How many times one micro-batch runs op `o` on the fullest stage: its layers there (or once)."""
    if o.op in PER_STEP_OPS:
        return np.ones_like(np.asarray(frac, dtype=np.float64))
    return o.n_layers * np.asarray(frac, dtype=np.float64)


def device_precision(p: Precision, hw) -> Precision:
    """The precision a device runs a checkpoint in: an FP8 checkpoint on a device without FP8 whose
    profile says `fp8_checkpoint_compute: int8` runs as W8A8 INT8 (Ascend), same bytes per weight."""
    if p.weight == "fp8" and hw.peak("fp8") is None and hw.peak("int8") is not None \
            and hw.achievable.fp8_checkpoint_compute == "int8":
        return replace(p, weight="int8", act="int8" if p.act == "fp8" else p.act)
    return p


MTP_PROJECTION_MATRICES = 1  # DeepSeek-V3 MTP module: one [2d -> d] projection (embedding, head shared)


def mtp_weight_bytes_per_device(m: ModelConfig, p: Precision, tp: int, dp, ep, redundant_experts: int = 0,
                                drafts: int = 1) -> np.ndarray:
    """Weights of the MTP module(s) on a device: per draft one more transformer block (a MoE layer
    when the model has experts, attention + shared experts per TP rank, its routed experts spread
    like the others) plus the 2d x d projection; the embedding and LM head are shared."""
    shard = count_params(tp_shard(m, tp))
    n = m.num_hidden_layers
    attn = shard.attention / n
    if m.is_moe:
        n_moe = max(m.n_moe_layers, 1)
        expert_params = SWIGLU_MATRICES * m.hidden_size * m.moe_intermediate_size
        moe_tp = tp * np.asarray(dp, dtype=np.float64) / np.asarray(ep, dtype=np.float64)
        ffn = (shard.moe_router + shard.moe_shared) / n_moe + \
            experts_per_device(m, ep, redundant_experts) * expert_params / moe_tp
    else:
        ffn = shard.dense_ffn / max(m.n_dense_layers, 1)
    proj = MTP_PROJECTION_MATRICES * 2 * m.hidden_size * m.hidden_size / tp
    return drafts * (attn + ffn + proj) * p.w_bytes
