"""`daedalus models`: the shipped model configs with derived sizes."""

from __future__ import annotations

import pandas as pd

from simulators.attention import kv_bytes_per_token
from simulators.model_config import builtin_models, load_model
from simulators.params import count_params

from ..args import add_format
from ..output import emit

BF16_BYTES = 2.0


def models_frame() -> pd.DataFrame:
    rows = []
    for path in builtin_models().values():
        m = load_model(path)
        pc = count_params(m)
        rows.append({
            "model": m.name,
            "display_name": m.display_name,
            "aliases": ",".join(m.aliases),
            "attention": m.attention,
            "layers": m.num_hidden_layers,
            "hidden_size": m.hidden_size,
            "heads": m.num_attention_heads,
            "kv_heads": m.num_key_value_heads if m.attention != "mla" else None,
            "kv_lora_rank": m.kv_lora_rank or None,
            "routed_experts": m.n_routed_experts or None,
            "shared_experts": m.n_shared_experts or None,
            "experts_per_token": m.num_experts_per_tok or None,
            "params_total": pc.total,
            "params_active": pc.active,
            "kv_bf16_bytes_per_token": kv_bytes_per_token(m, BF16_BYTES),
            "weight_dtype": m.weight_dtype,
            "status": m.status,
            "source": m.source,
        })
    return pd.DataFrame(rows)


def run(args) -> int:
    df = models_frame()
    if args.format == "table":
        df = df.drop(columns=["display_name", "source", "aliases"])
    emit(df, args.format)
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list shipped model configs (sizes, attention, experts, sources)")
    add_format(p)
    p.set_defaults(func=run)
