"""`daedalus plan`: what to buy. Per hardware profile, the smallest prefill + decode deployment that
meets TTFT / TPOT (and a request rate), its layout, throughput, bottleneck and $ per million tokens."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from bench.run_folder import write_atomic
from simulators.comm import OVERLAPS
from simulators.errors import ConfigError
from simulators.expert_load import ROUTINGS
from simulators.hash_load import DEFAULT_TOKEN_ZIPF_EXPONENT
from simulators.parallel import Layout
from simulators.plan import DEFAULT_MAX_DEVICES, OBJECTIVES, PlanOptions, Workload, ms_text, plan
from simulators.predict import Dtypes

from ..args import (
    add_dtypes,
    add_format,
    add_hardware,
    add_mode,
    add_models,
    int_list,
    models_from,
    profiles_from,
    wire_dtypes,
)
from ..columns import add_columns
from ..output import emit, table_width
from ..safety import neutralise_csv
from . import COMMAND_HELP

TABLE_COLUMNS = ["rank", "hardware", "devices", "tp", "ep", "dp", "batch_per_device", "decode_tokens_per_s_per_device",
                 "tokens_per_s_per_user", "ttft_s", "tpot_s", "bottleneck", "usd_per_mtok_output", "reason"]
REASON_WIDTH = 90
MODE_WORDS = {"achievable": "achievable rates of published kernels (profiles' achievable: blocks)",
              "speed_of_light": "speed of light (datasheet peaks: an upper bound)",
              "calibrated": "calibrated (this host's measured rates)"}


def _float(flag: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{flag}: expected a number, got {value!r}") from None


def _one_int(flag: str, value: str | None, default: int) -> int:
    values = int_list(flag, [value] if value is not None else None, [default])
    if len(values) != 1:
        raise ConfigError(f"{flag}: expected one value, got {values}")
    return values[0]


def _length(flag: str, value: str | None, default: int) -> int:
    if value is not None and value.strip().startswith("-"):
        raise ConfigError(f"{flag}: expected a positive token count, got {value}")
    return _one_int(flag, value, default)


def _price_overrides(values: list[str] | None, names: list[str]) -> tuple[tuple[str, float], ...]:
    """`--price-per-hour h100-sxm=2.5 --price-per-hour 2.0`: per device kind, or one price for all."""
    out: dict[str, float] = {}
    for item in values or []:
        for part in item.split(","):
            name, _, price = part.rpartition("=")
            value = _float("--price-per-hour", price.strip())
            if value is None or not value > 0:
                raise ConfigError(f"--price-per-hour: expected a positive $ per device-hour, got {part!r}")
            targets = [name.strip()] if name else names
            for t in targets:
                if t not in names:
                    raise ConfigError(f"--price-per-hour: {t!r} is not among the planned hardware ({', '.join(names)})")
                out[t] = value
    return tuple(out.items())


LAYOUT_FIELDS = ("tp", "dp", "pp", "ep", "redundant", "batch")


def _layout(flag: str, value: str | None):
    """`tp=1,dp=144,ep=144,redundant=32,batch=88` -> (Layout, batch or None)."""
    if value is None:
        return None, None
    fields: dict[str, float] = {}
    for part in value.split(","):
        key, _, v = part.partition("=")
        key = key.strip()
        if key not in LAYOUT_FIELDS:
            raise ConfigError(f"{flag}: unknown field {key!r}; expected some of {', '.join(LAYOUT_FIELDS)} (k=v,...)")
        try:
            fields[key] = float(v)
        except ValueError:
            raise ConfigError(f"{flag}: {key}: expected a number, got {v!r}") from None
    batch = fields.pop("batch", None)
    if batch is not None and not batch >= 1:
        raise ConfigError(f"{flag}: batch: expected >= 1, got {batch:g}")
    ints = {k: int(v) for k, v in fields.items()}
    lay = Layout(tp=ints.get("tp", 1), dp=ints.get("dp", 1), pp=ints.get("pp", 1), ep=ints.get("ep", 1),
                 redundant_experts=ints.get("redundant", 0))
    return lay, batch


def _ms(x) -> str:
    return "-" if pd.isna(x) else ms_text(x)


def explain(table: pd.DataFrame, width: int | None = None) -> str:
    """Per hardware: why the layouts were chosen, and the decode / prefill step-time breakdown,
    wrapped to the table's width."""
    import textwrap

    width = width or table_width()
    lines: list[str] = []
    for _, r in table.iterrows():
        if not r["feasible"]:
            continue
        lines.append(f"{r['hardware']}:")
        for phase in ("decode", "prefill"):
            lines.append(f"  {r[f'{phase}_why']}")
            part = {k: _ms(r[f"{phase}_{k}_s"]) for k in ("step", "compute_bound", "memory_bound", "straggler",
                                                          "exposed_comm")}
            lines.append(f"    step {part['step']} = compute-bound ops {part['compute_bound']} + memory-bound ops "
                         f"{part['memory_bound']} + straggler excess {part['straggler']} + exposed communication "
                         f"{part['exposed_comm']}")
        if r.get("assumptions"):
            lines.append(f"  assumed: {r['assumptions'].replace(',', ', ')}")
    wrapped = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()))
        wrapped += textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_on_hyphens=False) or [line]
    return "\n".join(wrapped) + ("\n" if wrapped else "")


def json_records(df: pd.DataFrame) -> list[dict]:
    """Records with JSON nulls for missing values (NaN, pd.NA) and plain Python numbers."""
    out = []
    for rec in df.astype(object).where(df.notna(), None).to_dict(orient="records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()})
    return out


def run(args) -> int:
    models = models_from(args, ["deepseek-v3"])
    if len(models) != 1:
        raise ConfigError(f"--model: plan sizes one model at a time, got {len(models)}")
    model = models[0]
    profiles = profiles_from(args, [])
    if not profiles:
        from simulators.hardware import builtin_profiles, load_profile

        profiles = [load_profile(p) for p in builtin_profiles().values()]
    ms = 1e-3
    ttft, tpot = _float("--ttft-ms", args.ttft_ms), _float("--tpot-ms", args.tpot_ms)
    wl = Workload(
        input_len=_length("--input-len", args.input_len, 4096),
        output_len=_length("--output-len", args.output_len, 1024),
        ttft_s=None if ttft is None else ttft * ms,
        tpot_s=None if tpot is None else tpot * ms,
        request_rate_per_s=_float("--request-rate", args.request_rate),
        mtp_acceptance=_float("--mtp-acceptance", args.mtp_acceptance) or 0.0,
        mtp_drafts=args.mtp_drafts,
        cache_hit_rate=_float("--cache-hit-rate", args.cache_hit_rate) or 0.0,
    )
    dec_layout, dec_batch = _layout("--decode-layout", args.decode_layout)
    pre_layout, pre_batch = _layout("--prefill-layout", args.prefill_layout)
    overlap = "none" if args.no_overlap else args.overlap
    if args.redundant_experts < 0:
        raise ConfigError(f"--redundant-experts: expected an integer >= 0, got {args.redundant_experts}")
    opt = PlanOptions(
        max_devices=args.max_devices, overlap=overlap, dispatch_dtype=args.dispatch_dtype,
        combine_dtype=args.combine_dtype, mode=args.mode, mla_mode=args.mla_mode,
        routing_skew=_float("--routing-skew", args.routing_skew) or 0.0, routing=args.routing,
        token_zipf_exponent=_float("--token-zipf", args.token_zipf),
        objective=args.objective, redundant_experts=args.redundant_experts,
        price_usd_per_hour=_price_overrides(args.price_per_hour, [h.name for h in profiles]),
        decode_layout=dec_layout, decode_batch=dec_batch, prefill_layout=pre_layout, prefill_batch=pre_batch,
    )
    precision = Dtypes(args.weight_dtype, args.act_dtype, args.kv_dtype).for_model(model)
    result = plan(model, profiles, wl, opt, precision)
    table = result.table

    note = ""
    title = (f"{model.name}: decode Pareto front, in {wl.input_len} / out {wl.output_len} tokens "
             f"({opt.mode} mode, overlap {opt.overlap})")
    save = args.save or args.out
    if save:  # the plan's files only when asked for (--save DIR)
        from ..report.plan_plot import write_pareto_png
        from ..safety import new_folder

        out_dir = Path(save)
        inputs = {"model": model.name, "hardware": [h.name for h in profiles], "workload": wl.__dict__,
                  "options": {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in opt.__dict__.items()},
                  "precision": precision.__dict__}
        with new_folder(out_dir):  # a write that fails leaves no empty folder behind
            write_atomic(out_dir / "plan.csv", neutralise_csv(table))  # `=cmd` names: no spreadsheet formulas
            write_atomic(out_dir / "pareto.csv", neutralise_csv(result.pareto))
            write_atomic(out_dir / "plan_inputs.json", json.dumps(inputs, indent=1, default=str) + "\n")
            write_pareto_png(result.pareto, out_dir / "pareto.png", title, table, tpot_s=wl.tpot_s)
        note = f"(written to {out_dir}/: plan.csv, pareto.csv, pareto.png, plan_inputs.json)\n"
    if args.plot:
        from ..report.figures import plan_figure

        path = plan_figure(result, args.plot, title=title, tpot_target_s=wl.tpot_s)
        note += f"(Pareto figure: {path})\n"

    if args.format == "json":
        emit(table, "json", json_records=json_records(table), columns=args.columns)
        sys.stderr.write(note)
    elif args.format == "csv":
        emit(table, "csv", columns=args.columns)
        sys.stderr.write(note)
    else:
        shown = table.assign(reason=table["reason"].str.slice(0, REASON_WIDTH))
        title = (f"{model.name} ({precision.weight} weights, {precision.kv} KV): in {wl.input_len}, out "
                 f"{wl.output_len} tokens; TTFT <= {args.ttft_ms or '-'} ms, TPOT <= {args.tpot_ms or '-'} ms\n"
                 f"disaggregated prefill + decode; overlap: {opt.overlap}; routing: {opt.routing_model.kind}\n"
                 f"mode: {MODE_WORDS.get(opt.mode, opt.mode)}")
        emit(shown, "table", title=title, columns=args.columns, default_columns=TABLE_COLUMNS)
        sys.stdout.write("(devices: prefill + decode; tp/ep/dp: decode unit; USD/Mtok output counts the whole fleet; "
                         "the prefill / decode\n split, pp and all columns: --columns all, or --format csv or "
                         "json)\n\n")
        sys.stdout.write(explain(table))
        sys.stdout.write(note)
    return 0


def register(sub) -> None:
    p = sub.add_parser("plan", help=COMMAND_HELP["plan"])
    add_models(p, "default: deepseek-v3; one model")
    add_hardware(p, "default: every shipped profile")
    p.add_argument("--input-len", help="prompt tokens per request (default 4096; k = 1024)")
    p.add_argument("--output-len", help="generated tokens per request (default 1024; k = 1024)")
    p.add_argument("--ttft-ms", help="time-to-first-token target in ms (prefill of one batch of prompts)")
    p.add_argument("--tpot-ms", help="time-per-output-token target in ms (decode)")
    p.add_argument("--request-rate", help="requests per second to sustain (sizes the number of units)")
    p.add_argument("--mtp-acceptance", help="MTP draft acceptance rate p (0.85: 1 + p tokens per step with 1 draft)")
    p.add_argument("--mtp-drafts", type=int, default=1, help="MTP draft tokens per step (default 1)")
    p.add_argument("--cache-hit-rate", help="share of input tokens served from a prefix cache (default 0)")
    p.add_argument("--max-devices", type=int, default=DEFAULT_MAX_DEVICES,
                   help=f"largest unit searched (default {DEFAULT_MAX_DEVICES})")
    p.add_argument("--objective", choices=OBJECTIVES, default="devices",
                   help="devices: fewest devices meeting the targets; throughput: most tokens/s per device")
    p.add_argument("--overlap", choices=OVERLAPS, default="none",
                   help="none (default): compute + communication; two-micro-batch: each half's dispatch / combine "
                        "hidden behind the other half's compute (TP all-reduce stays exposed); ideal: max (bound)")
    p.add_argument("--no-overlap", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--routing", choices=[r for r in ROUTINGS if r != "histogram"], default="uniform",
                   help="expert routing for the EP straggler model (default uniform; balanced = mean rank)")
    p.add_argument("--price-per-hour", action="append", metavar="[HW=]USD",
                   help="$ per device-hour, per device kind (h100-sxm=2.5) or for all; overrides the profile")
    p.add_argument("--decode-layout", metavar="tp=..,dp=..,ep=..[,pp=..,redundant=..,batch=..]",
                   help="pin the decode unit's layout (and batch per attention group)")
    p.add_argument("--prefill-layout", metavar="tp=..,dp=..,ep=..[,pp=..,redundant=..,batch=..]",
                   help="pin the prefill unit's layout (and prompts per attention group)")
    wire_dtypes(p)
    p.add_argument("--redundant-experts", type=int, default=0, help="redundant expert replicas (DeepSeek: 32)")
    add_mode(p)
    p.add_argument("--routing-skew", help="Zipf exponent of expert popularity (0 = uniform routing)")
    p.add_argument("--token-zipf", metavar="S",
                   help=f"Zipf exponent of token frequency for hash-routed MoE layers (DeepSeek-V4 layers 0-2; "
                        f"default {DEFAULT_TOKEN_ZIPF_EXPONENT:g}, an estimate; 0 = every token id equally likely)")
    p.add_argument("--save", metavar="DIR", help="write plan.csv, pareto.csv, pareto.png, plan_inputs.json into DIR")
    p.add_argument("--out", help=argparse.SUPPRESS)  # older name of --save
    p.add_argument("--plot", metavar="FILE", help="draw the decode Pareto front into FILE (.png or .svg)")
    add_dtypes(p)
    add_columns(p, TABLE_COLUMNS)
    add_format(p)
    p.set_defaults(func=run)
