"""`daedalus memory`: KV-cache and weight bytes over contexts and batches; what fits on N devices.
Plain rows (`simulators.memory_rows`), no pandas: this command starts in a fraction of a second."""

from __future__ import annotations

from simulators.errors import ConfigError
from simulators.memory_rows import Dtypes, memory_rows

from .. import log
from ..args import add_dtypes, add_format, add_hardware, add_models, int_list, models_from, profiles_from
from ..columns import add_columns
from ..output import emit
from . import COMMAND_HELP

DEFAULT_MODELS = ["deepseek-v4-pro", "deepseek-v4-flash", "deepseek-v3", "deepseek-v2", "deepseek-llm-67b",
                  "llama-3.1-405b", "qwen2.5-72b"]
TABLE_COLUMNS = ["model", "attention", "batch", "context", "kv_bytes_per_token", "kv_main_bytes", "kv_indexer_bytes",
                 "kv_window_bytes", "kv_state_bytes", "kv_bytes", "weight_bytes", "params_active"]
FIT_COLUMNS = ["model", "attention", "batch", "context", "kv_bytes", "weight_bytes", "total_bytes", "hardware",
               "fits", "max_batch_at_context", "max_context_at_batch"]


def default_columns(tp: int, devices: int, fit: bool) -> list[str]:
    """The compact table: KV by store without hardware; with --hardware the fit question instead."""
    cols = list(FIT_COLUMNS if fit else TABLE_COLUMNS)
    if tp > 1 or devices > 1:
        cols.insert(cols.index("kv_bytes") + 1, "kv_per_device_bytes")
        if "params_active" in cols:
            cols.remove("params_active")  # in --columns all; the table stays <= 120 columns
    return cols


def run(args) -> int:
    if args.tp < 1 or args.devices < 1 or args.devices % args.tp:
        raise ConfigError(f"--tp: expected a positive divisor of --devices {args.devices}, got {args.tp}")
    models = models_from(args, DEFAULT_MODELS)
    profiles = profiles_from(args, []) if args.hardware else []
    dtypes = Dtypes(args.weight_dtype, args.act_dtype, args.kv_dtype)
    rows = memory_rows(models, batches=int_list("--batch", args.batch, [1]),
                       contexts=int_list("--context", args.context, [4096, 32768, 131072]), dtypes=dtypes,
                       profiles=profiles, devices=args.devices, tp=args.tp)
    emit(rows, args.format, columns=args.columns, default_columns=default_columns(args.tp, args.devices,
                                                                                   bool(profiles)))
    if args.plot:
        from ..report.figures import memory_figure  # matplotlib only when a figure is asked for

        path = memory_figure(models, args.plot, profiles=profiles or None, dtypes=dtypes)
        log.get(__name__).log(log.DONE, f"daedalus memory: figure written to {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("memory", help=COMMAND_HELP["memory"])
    add_models(p, "default: " + ", ".join(DEFAULT_MODELS))
    add_hardware(p, "optional: adds fits / max batch / max context on --devices of it")
    p.add_argument("--context", action="append", help="context lengths, comma list, k = 1024 (default 4k,32k,128k)")
    p.add_argument("--batch", action="append", help="batch sizes, comma list (default 1)")
    p.add_argument("--devices", type=int, default=1, help="devices the model is spread over (default 1)")
    p.add_argument("--tp", type=int, default=1,
                   help="tensor-parallel degree inside --devices (the rest data-parallel attention): adds "
                        "kv_per_device_bytes; MLA / V4 KV is replicated by TP, GQA KV heads split (default 1)")
    p.add_argument("--plot", metavar="FILE", help="also draw KV cache vs context (1k..1M) into FILE (.png or .svg)")
    add_dtypes(p)
    add_columns(p)
    add_format(p)
    p.set_defaults(func=run)
