"""Model variants, one syntax everywhere (CLI, API, benchmark cases): `name:field=value,field=value`.

`llama-3.1-8b:kv_heads=1` is Llama-3.1-8B with one KV head (MQA). Fields are ModelConfig integer
fields (short aliases below); values are validated like a model file's. Also the one place that
builds "an MLA model's dimensions under MHA / GQA-8 / MQA" (DeepSeek-V2 paper's comparison).
"""

from __future__ import annotations

import dataclasses
from functools import cache

from .errors import ConfigError
from .model_config import MAX_DIM, MAX_LAYERS, ModelConfig, resolve_model

# fields a model file requires >= 1 (the loader's rule); the others may be 0 (a feature switched off)
_POSITIVE = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "head_dim", "intermediate_size", "n_group", "topk_group")

ALIASES = {"kv_heads": "num_key_value_heads", "heads": "num_attention_heads", "layers": "num_hidden_layers",
           "hidden": "hidden_size"}


def _int_fields() -> dict[str, type]:
    return {f.name: f.type for f in dataclasses.fields(ModelConfig) if f.type in (int, "int")}


def apply_variant(m: ModelConfig, variant: str, spec: str) -> ModelConfig:
    """`field=value,...` applied to m; one clear line for an unknown field or a bad value."""
    changes: dict[str, int] = {}
    ints = _int_fields()
    for item in filter(None, (s.strip() for s in variant.split(","))):
        key, eq, value = item.partition("=")
        field = ALIASES.get(key.strip(), key.strip())
        if not eq or field not in ints:
            known = ", ".join(sorted(set(ALIASES) | set(ints)))
            raise ConfigError(f"model variant {spec!r}: {key.strip()!r} is not a variable integer field "
                              f"(expected field=value with field one of: {known})")
        v = value.strip()
        top = MAX_LAYERS if field.endswith("layers") else MAX_DIM
        if not (v.isascii() and v.isdigit()) or int(v) > top:
            raise ConfigError(f"model variant {spec!r}: {field} expects a non-negative integer <= {top}, got {v!r}")
        changes[field] = int(v)
    if not changes:
        raise ConfigError(f"model variant {spec!r}: expected name:field=value[,field=value]")
    out = dataclasses.replace(m, name=spec, **changes)
    _check(out, changes, spec)
    return out


def _check(m: ModelConfig, changes: dict[str, int], spec: str) -> None:
    """The loader's rules that a changed field can break (a model file would be refused for them)."""
    where = f"model variant {spec!r}"
    for f in _POSITIVE:
        if f in changes and changes[f] < 1:
            raise ConfigError(f"{where}: {f} expects an integer >= 1, got {changes[f]}")
    g, h = m.num_key_value_heads, m.num_attention_heads
    if h % g:
        raise ConfigError(f"{where}: kv_heads={g} must divide the {h} query heads")
    if m.n_routed_experts and not 1 <= m.num_experts_per_tok <= m.n_routed_experts:
        raise ConfigError(f"{where}: num_experts_per_tok={m.num_experts_per_tok} must be in [1, n_routed_experts="
                          f"{m.n_routed_experts}]")
    if m.n_routed_experts and m.moe_intermediate_size < 1:
        raise ConfigError(f"{where}: moe_intermediate_size expects an integer >= 1 in an MoE model")
    if "n_routed_experts" in changes and m.n_routed_experts and not m.n_moe_layers:
        raise ConfigError(f"{where}: n_routed_experts on a dense model adds no MoE layer (make a model file)")
    if m.n_moe_layers > m.num_hidden_layers or m.num_hash_layers > m.n_moe_layers:
        raise ConfigError(f"{where}: {m.n_moe_layers} MoE layers ({m.num_hash_layers} hashed) do not fit in "
                          f"{m.num_hidden_layers} layers (change n_moe_layers too)")
    if m.layer_kinds and len(m.layer_kinds) != m.num_hidden_layers:
        raise ConfigError(f"{where}: the model lists an attention kind per layer ({len(m.layer_kinds)}); "
                          "num_hidden_layers cannot change without them (make a model file)")
    if m.kv_lora_rank and min(m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim) < 1:
        raise ConfigError(f"{where}: an MLA model (kv_lora_rank > 0) needs qk_nope_head_dim, qk_rope_head_dim "
                          "and v_head_dim >= 1")
    if m.index_topk and min(m.index_n_heads, m.index_head_dim) < 1:
        raise ConfigError(f"{where}: a sparse-attention model (index_topk > 0) needs index_n_heads and "
                          "index_head_dim >= 1")
    if m.o_groups and h % m.o_groups:
        raise ConfigError(f"{where}: o_groups={m.o_groups} must divide the {h} query heads")


@cache
def resolve_variant(spec: str) -> ModelConfig:
    """A shipped name or path, optionally with `:field=value,...`."""
    name, sep, variant = spec.partition(":")
    if sep and not variant:
        raise ConfigError(f"model variant {spec!r}: expected name:field=value[,field=value]")
    m = resolve_model(name)
    return apply_variant(m, variant, spec) if variant else m


def same_dims_variants(m: ModelConfig) -> list[ModelConfig]:
    """An MLA model's dimensions under MHA, GQA-8 and MQA (head dim = its non-rope head dim, as in the
    DeepSeek-V2 paper's comparison), so only the attention type differs. [] for non-MLA."""
    if m.attention != "mla":
        return []
    heads = m.num_attention_heads
    mla_free = dict(kv_lora_rank=0, q_lora_rank=0, qk_nope_head_dim=0, qk_rope_head_dim=0, v_head_dim=0,
                    index_topk=0, index_n_heads=0, index_head_dim=0, head_dim=m.qk_nope_head_dim or m.head_dim)
    variants = [("MHA", heads), ("GQA-8", min(8, heads)), ("MQA", 1)]
    return [dataclasses.replace(m, name=f"{m.name} dims, {label}", num_key_value_heads=g, **mla_free)
            for label, g in variants]
