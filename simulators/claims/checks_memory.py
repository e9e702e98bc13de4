"""Claim checks about attention memory: KV bytes per token, reductions against named baselines,
the formulas blog posts print, and whole-inference memory. Every number comes from the simulator's
cost functions (`simulators.attention`, `simulators.memory`, `simulators.variants`); nothing here
re-derives them.

Baselines are spelled `model` (a shipped model), or `model@MHA` / `model@GQA-8` / `model@MQA`: that
MLA model's dimensions under another attention type (`simulators.variants.same_dims_variants`, the
one place "MLA as MHA" is built).
"""

from __future__ import annotations

from ..attention import kv_bytes_per_token, kv_elements_per_token_per_layer
from ..errors import ConfigError
from ..memory import kv_cache_bytes, weight_bytes
from ..model_config import ModelConfig
from ..precision import Precision
from ..units import DTYPE_BYTES
from ..variants import same_dims_variants
from .outcome import Outcome, need_model


def model_or_variant(spec: str) -> ModelConfig:
    """`name` or `name@MHA|GQA-8|MQA` (same dimensions, other attention)."""
    name, _, variant = spec.partition("@")
    m = need_model(name)
    if not variant:
        return m
    for v in same_dims_variants(m):
        if v.name.endswith(f", {variant}"):
            return v
    raise ConfigError(f"claims: baseline {spec!r}: {name} has no same-dims variant {variant!r} "
                      "(expected MHA, GQA-8 or MQA of an MLA model)")


def kv_bytes_per_token_of(model: str, kv_dtype: str = "bf16") -> Outcome:
    m = model_or_variant(model)
    return Outcome(kv_bytes_per_token(m, DTYPE_BYTES[kv_dtype]), f"{m.name}, KV in {kv_dtype}")


def kv_reduction(model: str, baseline: str, kv_dtype: str = "bf16", baseline_kv_dtype: str = "bf16") -> Outcome:
    """1 - KV(model) / KV(baseline), per token, all layers."""
    m, b = model_or_variant(model), model_or_variant(baseline)
    ours = kv_bytes_per_token(m, DTYPE_BYTES[kv_dtype])
    base = kv_bytes_per_token(b, DTYPE_BYTES[baseline_kv_dtype])
    return Outcome(1.0 - ours / base, f"{m.name} ({kv_dtype}, {ours / 1e3:.1f} KB/token) vs {b.name} "
                                      f"({baseline_kv_dtype}, {base / 1e3:.1f} KB/token)")


def mla_equivalent_gqa_groups(model: str) -> Outcome:
    """KV elements of MLA per layer in units of one GQA group (K and V of one head of d_h)."""
    m = need_model(model)
    groups = kv_elements_per_token_per_layer(m) / (2 * m.qk_nope_head_dim)  # K and V (2) of one d_h head
    return Outcome(groups, f"{m.name}: (d_c + d_h^R) / (2 d_h) with d_h = qk_nope_head_dim")


def inference_memory_reduction(model: str, baseline: str, batch: int, context: int, kv_dtype: str = "bf16") -> Outcome:
    """1 - (weights + KV)(model) / (weights + KV)(baseline) at one workload: what 'memory footprint of
    inference' means when the weights are counted too. Weights in each model's checkpoint dtype."""
    m, b = model_or_variant(model), model_or_variant(baseline)

    def total(x: ModelConfig) -> float:
        p = Precision.of(x.weight_dtype, "bf16", kv_dtype)
        return float(weight_bytes(x, p) + kv_cache_bytes(x, batch, context, p))

    ours, base = total(m), total(b)
    return Outcome(1.0 - ours / base, f"batch {batch}, context {context:,}: {ours / 1e9:.0f} GB vs {base / 1e9:.0f} GB "
                                      f"({b.name}), weights in {m.weight_dtype}, KV in {kv_dtype}")


def blog_mha_formula_undercount(model: str) -> Outcome:
    """Daedalus's MHA KV elements per token (all layers) over the post's `Num_Heads * Head_Dim`."""
    m = model_or_variant(model)
    blog = m.num_attention_heads * m.head_dim  # the post's formula per token: heads x head dim
    ours = kv_elements_per_token_per_layer(m) * m.num_hidden_layers
    return Outcome(ours / blog, f"{m.name}: K and V, {m.num_hidden_layers} layers vs the post's heads x head_dim")


def blog_mla_formula_undercount(model: str) -> Outcome:
    """Daedalus's MLA KV elements per token (all layers) over the post's `Low_Rank_Compression_Dim`."""
    m = need_model(model)
    ours = kv_elements_per_token_per_layer(m) * m.num_hidden_layers
    return Outcome(ours / m.kv_lora_rank, f"{m.name}: latent + decoupled rope key, {m.num_hidden_layers} layers "
                                          "vs the post's kv_lora_rank")


CHECKS = {f.__name__: f for f in (kv_bytes_per_token_of, kv_reduction, mla_equivalent_gqa_groups,
                                  inference_memory_reduction, blog_mha_formula_undercount,
                                  blog_mla_formula_undercount)}
