"""`daedalus hardware`: the shipped hardware profiles, or every sourced number with --provenance."""

from __future__ import annotations

import pandas as pd

from simulators.hardware import builtin_profiles, load_profile, resolve_profile

from ..args import add_format, str_list
from ..output import emit


def hardware_frame(profiles) -> pd.DataFrame:
    rows = []
    for h in profiles:
        def v(s):
            return None if s is None else s.value

        rows.append({
            "hardware": h.name,
            "display_name": h.display_name,
            "vendor": h.vendor,
            "fp32_flop_per_s": h.peak("fp32"),
            "bf16_flop_per_s": h.peak("bf16"),
            "fp8_flop_per_s": h.peak("fp8"),
            "int8_flop_per_s": h.peak("int8"),
            "fp4_flop_per_s": h.peak("fp4"),
            "memory_bytes": h.memory_bytes.value,
            "memory_bandwidth_bytes_per_s": h.memory_bandwidth_bytes_per_s.value,
            "scaleup_bytes_per_s_per_direction": v(h.scaleup and h.scaleup.bandwidth_bytes_per_s_per_direction),
            "scaleout_bytes_per_s_per_direction": v(h.scaleout and h.scaleout.bandwidth_bytes_per_s_per_direction),
            "tdp_w": v(h.tdp_w),
            "price_usd_per_hour": v(h.price_usd_per_hour),
            "estimated_fields": sum(1 for r in h.provenance() if r["status"] == "estimate"),
        })
    return pd.DataFrame(rows)


def run(args) -> int:
    names = str_list(args.hardware, [])
    profiles = [resolve_profile(n) for n in names] if names else [load_profile(p) for p in builtin_profiles().values()]
    if args.provenance:
        df = pd.DataFrame([r for h in profiles for r in h.provenance()])
        if args.format == "table":
            df = df[["hardware", "field", "value", "status", "source"]]
            df = df.assign(source=df["source"].str.slice(0, 70))
        emit(df, args.format)
        return 0
    df = hardware_frame(profiles)
    if args.format == "table":
        df = df.drop(columns=["display_name"])
    emit(df, args.format)
    return 0


def register(sub) -> None:
    p = sub.add_parser("hardware", help="list hardware profiles (peaks, memory, links, price)")
    p.add_argument("--hardware", action="append", metavar="NAME|PATH", help="only these profiles; repeatable")
    p.add_argument("--provenance", action="store_true", help="list every number with its source and status")
    add_format(p)
    p.set_defaults(func=run)
