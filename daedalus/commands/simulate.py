"""`daedalus simulate`: roofline time per op and per step for models x hardware x cases."""

from __future__ import annotations

import sys

from simulators.errors import ConfigError
from simulators.hash_load import DEFAULT_TOKEN_ZIPF_EXPONENT
from simulators.predict import PHASES, Dtypes, simulate

from ..args import (
    add_dtypes,
    add_format,
    add_hardware,
    add_mode,
    add_models,
    int_list,
    models_from,
    profiles_from,
    str_list,
)
from ..columns import add_columns
from ..csv_out import write_csv
from ..output import emit, records
from . import COMMAND_HELP

CASE_KEYS = ["model", "hardware", "phase", "batch", "query_len", "context"]
TABLE_COLUMNS = ["model", "hardware", "phase", "batch", "context", "flop", "bytes", "time_s", "bound",
                 "time_per_token_s", "tokens_per_s", "devices_for_memory"]
OP_TABLE_COLUMNS = ["model", "hardware", "phase", "batch", "context", "op", "n_layers", "flop",
                    "bytes", "time_s", "bound"]
OP_COLUMNS = ["op", "family", "n_layers", "compute_dtype", "flop", "bytes", "arithmetic_intensity_flop_per_byte",
              "compute_time_s", "memory_time_s", "time_s", "bound"]


def run(args) -> int:
    if args.decode_tokens < 1:
        raise ConfigError(f"--decode-tokens: expected a positive integer, got {args.decode_tokens}")
    if args.routing_skew < 0:
        raise ConfigError(f"--routing-skew: expected a number >= 0, got {args.routing_skew}")
    phases = str_list(args.phase, ["decode"])
    bad = [ph for ph in phases if ph not in PHASES]
    if bad:
        raise ConfigError(f"--phase: expected prefill and/or decode (comma list), got {bad[0]!r}")
    result = simulate(
        models_from(args, ["deepseek-v3"]),
        profiles_from(args, ["h100-sxm"]),
        phases=phases,
        batches=int_list("--batch", args.batch, [1]),
        contexts=int_list("--context", args.context, [4096]),
        dtypes=Dtypes(args.weight_dtype, args.act_dtype, args.kv_dtype),
        mla_mode=args.mla_mode,
        routing_skew=args.routing_skew,
        token_zipf_exponent=DEFAULT_TOKEN_ZIPF_EXPONENT if args.token_zipf is None else float(args.token_zipf),
        decode_tokens=args.decode_tokens,
        mode=args.mode,
        per_op=args.per_op or (args.format == "json" and not args.columns),
    )
    totals, ops = result.totals, result.ops
    if args.format == "json" and not args.columns:
        out = records(totals)
        grouped = {key: grp for key, grp in ops.groupby(CASE_KEYS, sort=False)}
        for rec in out:
            rec["ops"] = records(grouped[tuple(rec[k] for k in CASE_KEYS)][OP_COLUMNS])
        emit(totals, "json", json_records=out)
    elif args.format == "csv" and not args.columns:
        write_csv(ops if args.per_op else totals)  # 1M rows in seconds
    elif args.format != "table":
        emit(ops if args.per_op else totals, args.format, columns=args.columns)
    elif args.per_op:
        emit(ops, args.format, title=f"mode: {args.mode}", columns=args.columns, default_columns=OP_TABLE_COLUMNS)
    else:
        title = f"mode: {args.mode}" + (" (achievable rates of published kernels; --mode speed_of_light for the "
                                        "upper bound)" if args.mode == "achievable" else "")
        emit(totals, args.format, title=title, columns=args.columns, default_columns=TABLE_COLUMNS)
    if args.format == "table" and not args.columns:
        sys.stdout.write("(" + ("" if args.per_op else "per-op rows: --per-op; ")
                         + "all columns: --columns all, or --format csv or json)\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("simulate", help=COMMAND_HELP["simulate"])
    add_models(p, "default: deepseek-v3")
    add_hardware(p, "default: h100-sxm")
    p.add_argument("--phase", action="append", help=f"phases, comma list of {', '.join(PHASES)} (default decode)")
    p.add_argument("--batch", action="append", help="batch sizes, comma list (default 1)")
    p.add_argument("--context", action="append", help="context lengths, comma list, k = 1024 (default 4096)")
    p.add_argument("--decode-tokens", type=int, default=1, help="query tokens per decode step (1 + MTP drafts)")
    p.add_argument("--routing-skew", type=float, default=0.0,
                   help="Zipf exponent of expert popularity (0 = uniform routing)")
    p.add_argument("--token-zipf", metavar="S",  # checked by args.RULES (finite, >= 0)
                   help=f"Zipf exponent of token frequency for hash-routed MoE layers (DeepSeek-V4 layers 0-2; "
                        f"default {DEFAULT_TOKEN_ZIPF_EXPONENT:g}, an estimate; 0 = every token id equally likely)")
    add_mode(p)
    p.add_argument("--per-op", action="store_true", help="one row per op instead of per case")
    add_dtypes(p)
    add_columns(p, TABLE_COLUMNS)
    add_format(p)
    p.set_defaults(func=run)
