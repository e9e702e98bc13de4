"""The edge where numbers meet people: table / csv / json rendering of tidy DataFrames.

Data stays raw (SI units, unformatted) in csv and json; only `table` converts units for reading.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, TextIO

import numpy as np
import pandas as pd

FORMATS = ("table", "csv", "json")

# column suffix -> (divisor, new suffix) for human tables
_DISPLAY_UNITS = (
    ("_bytes_per_token", 1e3, "_KB_per_token"),
    ("_bytes_per_s_per_direction", 1e9, "_GB_per_s_per_dir"),
    ("_bytes_per_s", 1e9, "_GB_per_s"),
    ("_flop_per_s", 1e12, "_TFLOP_per_s"),
    ("_bytes", 1e9, "_GB"),
    ("_time_s", 1e-3, "_time_ms"),
    ("_per_token_s", 1e-3, "_per_token_ms"),
    ("_s", 1e-3, "_ms"),
)
_PLAIN = {"flop": (1e12, "TFLOP"), "bytes": (1e9, "GB"), "params_total": (1e9, "params_total_B"),
          "params_active": (1e9, "params_active_B")}


def to_display(df: pd.DataFrame) -> pd.DataFrame:
    """Convert SI columns to readable units, renaming them so the unit stays in the name."""
    out = {}
    for col in df.columns:
        s = df[col]
        if s.dtype == object and s.isna().all():  # an all-missing column still gets its display unit
            s = s.astype(float)
        if col in _PLAIN and pd.api.types.is_numeric_dtype(s):
            div, name = _PLAIN[col]
            out[name] = s / div
            continue
        for suffix, div, new in _DISPLAY_UNITS:
            if col.endswith("_per_s") and suffix == "_s":
                continue  # a rate (tokens_per_s), not a time
            if col.endswith(suffix) and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                out[col[: -len(suffix)] + new] = s / div
                break
        else:
            out[col] = s
    return pd.DataFrame(out)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "-"
        if v == 0:
            return "0"
        a = abs(v)
        if float(v).is_integer() and a < 1e7:
            return f"{int(v):,}" if a >= 1e4 else str(int(v))
        if a >= 1e5 or a < 1e-3:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}" if a < 1 else f"{v:.2f}"
    if v is None:
        return "-"
    return str(v)


def render_table(df: pd.DataFrame) -> str:
    disp = to_display(df)
    cols = list(disp.columns)
    rows = [[_fmt(v) for v in rec] for rec in disp.itertuples(index=False, name=None)]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    numeric = [pd.api.types.is_numeric_dtype(disp[c]) for c in cols]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    out = [line(cols), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in zip(df.columns, rec)} for rec in df.itertuples(index=False, name=None)]


def emit(df: pd.DataFrame, fmt: str, out: TextIO | None = None, *, json_records: list | None = None,
         title: str | None = None) -> None:
    out = out or sys.stdout
    if fmt == "json":
        json.dump(json_records if json_records is not None else records(df), out, indent=1)
        out.write("\n")
    elif fmt == "csv":
        df.to_csv(out, index=False)
    else:
        if title:
            out.write(title + "\n")
        out.write(render_table(df) + "\n")
