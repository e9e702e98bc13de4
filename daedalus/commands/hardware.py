"""`daedalus hardware`: the shipped hardware profiles, or every sourced number with --provenance.
Plain records, no pandas: this command starts in a fraction of a second."""

from __future__ import annotations

from simulators.hardware import builtin_profiles, load_profile, resolve_profile

from ..args import add_format, str_list
from ..columns import add_columns
from ..output import emit, fmt_quantity
from . import COMMAND_HELP

TABLE_COLUMNS = ["hardware", "vendor", "bf16_flop_per_s", "fp8_flop_per_s", "fp4_flop_per_s", "memory_bytes",
                 "memory_bandwidth_bytes_per_s", "scaleup_bytes_per_s_per_direction", "price_usd_per_hour",
                 "estimated_fields"]
PROVENANCE_COLUMNS = ["hardware", "field", "value", "status", "source"]


def hardware_records(profiles) -> list[dict]:
    """One record per profile, raw SI numbers (None where the profile has no figure)."""
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
    return rows


def run(args) -> int:
    names = str_list(args.hardware, [])
    profiles = [resolve_profile(n) for n in names] if names else [load_profile(p) for p in builtin_profiles().values()]
    if args.provenance:
        rows = [r for h in profiles for r in h.provenance()]
        if args.format == "table":  # each value in its own unit (fields differ per row)
            rows = [{**r, "value": fmt_quantity(r["field"], r["value"])} for r in rows]
        emit(rows, args.format, columns=args.columns, default_columns=PROVENANCE_COLUMNS)
        return 0
    emit(hardware_records(profiles), args.format, columns=args.columns, default_columns=TABLE_COLUMNS)
    if args.format == "table" and not args.columns:
        print("(peaks dense, without sparsity; links per direction; all columns: --columns all)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("hardware", help=COMMAND_HELP["hardware"])
    p.add_argument("--hardware", action="append", metavar="NAME|PATH", help="only these profiles; repeatable")
    p.add_argument("--provenance", action="store_true", help="list every number with its source and status")
    add_columns(p)
    add_format(p)
    p.set_defaults(func=run)
