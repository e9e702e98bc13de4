"""`daedalus models`: the shipped model configs with derived sizes (plain records, no pandas)."""

from __future__ import annotations

from simulators.attention import kv_bytes_per_token
from simulators.model_config import builtin_models, load_model
from simulators.params import count_params

from ..args import add_format, models_from
from ..columns import add_columns
from ..output import emit
from . import COMMAND_HELP

BF16_BYTES = 2.0
TABLE_COLUMNS = ["model", "attention", "layers", "heads", "kv_heads", "routed_experts",
                 "experts_per_token", "params_total", "params_active", "kv_bf16_bytes_per_token", "weight_dtype",
                 "status"]


def model_record(m) -> dict:
    """One model's row: architecture counts, parameter counts, BF16 KV bytes per token (all layers)."""
    pc = count_params(m)
    return {
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
        "kv_bf16_bytes_per_token": float(kv_bytes_per_token(m, BF16_BYTES)),
        "weight_dtype": m.weight_dtype,
        "status": m.status,
        "source": m.source,
    }


def models_records(models=None) -> list[dict]:
    """Records of `models` (ModelConfigs; default: every shipped config)."""
    models = models if models is not None else [load_model(p) for p in builtin_models().values()]
    return [model_record(m) for m in models]


def run(args) -> int:
    models = models_from(args, []) if args.model else None
    emit(models_records(models), args.format, columns=args.columns, default_columns=TABLE_COLUMNS)
    if args.format == "table" and not args.columns:
        print("(params incl. embedding and head; KV: BF16 cache of one token, all layers; "
              "all columns: --columns all)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help=COMMAND_HELP["models"])
    p.add_argument("--model", action="append", metavar="NAME[:FIELD=V,...]|PATH",
                   help="only these models, variants allowed (llama-3.1-8b:kv_heads=1); repeatable")
    add_columns(p)
    add_format(p)
    p.set_defaults(func=run)
