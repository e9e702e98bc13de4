"""`daedalus plan`: what to buy. Per hardware profile, the smallest prefill + decode deployment that
meets TTFT / TPOT (and a request rate), its layout, throughput, bottleneck and $ per million tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bench.run_folder import DEFAULT_RESULTS, new_run_id, write_atomic
from simulators.errors import ConfigError
from simulators.plan import DEFAULT_MAX_DEVICES, OBJECTIVES, PlanOptions, Workload, plan
from simulators.predict import Dtypes

from ..args import add_dtypes, add_format, add_hardware, add_models, int_list, models_from, profiles_from
from ..output import emit

TABLE_COLUMNS = ["rank", "hardware", "feasible", "devices", "prefill_devices", "decode_devices", "tp", "ep", "dp",
                 "pp", "batch_per_device", "prefill_tokens_per_s_per_device", "decode_tokens_per_s_per_device",
                 "tokens_per_s_per_user", "ttft_s", "tpot_s", "bottleneck", "usd_per_mtok_input",
                 "usd_per_mtok_output", "reason"]
REASON_WIDTH = 90


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
    if args.redundant_experts < 0:
        raise ConfigError(f"--redundant-experts: expected an integer >= 0, got {args.redundant_experts}")
    opt = PlanOptions(
        max_devices=args.max_devices, overlap=not args.no_overlap, dispatch_dtype=args.dispatch_dtype,
        combine_dtype=args.combine_dtype, mode=args.mode, mla_mode=args.mla_mode,
        routing_skew=_float("--routing-skew", args.routing_skew) or 0.0, objective=args.objective,
        redundant_experts=args.redundant_experts,
    )
    precision = Dtypes(args.weight_dtype, args.act_dtype, args.kv_dtype).for_model(model)
    result = plan(model, profiles, wl, opt, precision)
    table = result.table

    out_dir = Path(args.out) if args.out else DEFAULT_RESULTS / new_run_id("plan")
    write_atomic(out_dir / "plan.csv", table)
    write_atomic(out_dir / "pareto.csv", result.pareto)
    inputs = {"model": model.name, "hardware": [h.name for h in profiles], "workload": wl.__dict__,
              "options": opt.__dict__, "precision": precision.__dict__}
    write_atomic(out_dir / "plan_inputs.json", json.dumps(inputs, indent=1) + "\n")
    from ..plan_plot import write_pareto_png

    title = f"{model.name}: decode Pareto front, in {wl.input_len} / out {wl.output_len} tokens (roofline)"
    write_pareto_png(result.pareto, out_dir / "pareto.png", title, table)
    note = f"(written to {out_dir}/: plan.csv, pareto.csv, pareto.png, plan_inputs.json)\n"

    if args.format == "json":
        emit(table, "json", json_records=json_records(table))
        sys.stderr.write(note)
    elif args.format == "csv":
        emit(table, "csv")
        sys.stderr.write(note)
    else:
        shown = table[TABLE_COLUMNS].assign(reason=table["reason"].str.slice(0, REASON_WIDTH))
        title = (f"{model.name} ({precision.weight} weights, {precision.kv} KV): in {wl.input_len}, out "
                 f"{wl.output_len} tokens; TTFT <= {args.ttft_ms or '-'} ms, TPOT <= {args.tpot_ms or '-'} ms; "
                 f"disaggregated prefill + decode; roofline upper bound")
        emit(shown, "table", title=title)
        sys.stdout.write("(tp/ep/dp/pp: decode unit; prefill layout and all columns: --format csv or json)\n")
        sys.stdout.write(note)
    return 0


def register(sub) -> None:
    p = sub.add_parser("plan", help="what to buy: smallest deployment per hardware meeting TTFT / TPOT, with $/token")
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
    p.add_argument("--no-overlap", action="store_true",
                   help="add communication to compute instead of overlapping them (two micro-batches)")
    p.add_argument("--dispatch-dtype", default="fp8", help="EP dispatch dtype (default fp8; bf16)")
    p.add_argument("--combine-dtype", default="bf16", help="EP combine dtype (default bf16)")
    p.add_argument("--redundant-experts", type=int, default=0, help="redundant expert replicas (DeepSeek: 32)")
    p.add_argument("--mode", default="speed_of_light", help="speed_of_light or calibrated")
    p.add_argument("--mla-mode", default="auto", help="auto (naive prefill, absorbed decode), naive or absorbed")
    p.add_argument("--routing-skew", help="Zipf exponent of expert popularity (0 = uniform routing)")
    p.add_argument("--out", help="output folder (default results/plan-<timestamp>/)")
    add_dtypes(p)
    add_format(p)
    p.set_defaults(func=run)
