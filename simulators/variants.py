"""Model variants, one syntax everywhere (CLI, API, benchmark cases): `name:field=value,field=value`.

`llama-3.1-8b:kv_heads=1` is Llama-3.1-8B with one KV head (MQA). Fields are ModelConfig integer
fields (short aliases below); values are validated like a model file's. Also the one place that
builds "an MLA model's dimensions under MHA / GQA-8 / MQA" (DeepSeek-V2 paper's comparison).
"""

from __future__ import annotations

import dataclasses
from functools import cache

from .errors import ConfigError
from .model_config import ModelConfig, resolve_model

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
        if not v.isdigit() or int(v) < 0 or int(v) >= 2**31:
            raise ConfigError(f"model variant {spec!r}: {field} expects a non-negative integer, got {v!r}")
        changes[field] = int(v)
    if not changes:
        raise ConfigError(f"model variant {spec!r}: expected name:field=value[,field=value]")
    if "num_key_value_heads" in changes:
        g = changes["num_key_value_heads"]
        h = changes.get("num_attention_heads", m.num_attention_heads)
        if g < 1 or h % g:
            raise ConfigError(f"model variant {spec!r}: kv_heads={g} must be >= 1 and divide the {h} query heads")
    return dataclasses.replace(m, name=spec, **changes)


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
