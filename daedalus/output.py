"""The edge where numbers meet people: table / csv / json rendering of tidy rows.

Rows come as a list of dict records or as a pandas DataFrame (duck-typed: anything with
`.to_dict(orient="records")`); nothing here imports pandas or numpy, so the light commands
(`hardware`, `models`) start fast. Data stays raw (SI units, unformatted) in csv and json; only
`table` converts units for reading, puts the unit in the header, and formats every number with
one rule (`fmt_number`). A table shows the command's compact default columns unless `--columns`
names others; csv and json carry every column unless `--columns` names some.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from simulators.errors import ConfigError

from .safety import neutralise_cell, neutralise_csv

FORMATS = ("table", "csv", "json")
TABLE_WIDTH = 120  # the terminal the default views are made for (when stdout is not a terminal)
MIN_TEXT_WIDTH = 12  # text cells are shortened with "…" down to this when a table must shrink
ALL_COLUMNS = "all"


class _NotApplicable:
    """A table cell for a field the row's kind has no value for (batch of a GEMM): printed blank,
    where a missing value prints "-". Only table views use it; csv and json keep the raw data."""

    def __repr__(self) -> str:
        return "NOT_APPLICABLE"


NOT_APPLICABLE = _NotApplicable()

# column-name suffix -> (divisor from SI, unit shown in the header); first match wins
_SUFFIX_UNITS = (
    ("_bytes_per_token", 1e3, "KB/token"),
    ("_bytes_per_s_per_direction", 1e9, "GB/s per dir."),
    ("_bytes_per_s", 1e9, "GB/s"),
    ("_flop_per_s", 1e12, "TFLOP/s"),
    ("_bytes", 1e9, "GB"),
    ("_flop", 1e12, "TFLOP"),
    ("_usd_per_hour", 1.0, "USD/h"),
    ("_usd", 1.0, "USD"),
    ("_w", 1.0, "W"),
    ("_s", 1e-3, "ms"),  # a time; rates (`tokens_per_s`) are excluded below
    ("_pct", 1.0, "%"),
)
# whole column names -> (divisor, header)
_NAMED_UNITS = {
    "flop": (1e12, "TFLOP"),
    "bytes": (1e9, "GB"),
    "time_s": (1e-3, "time (ms)"),
    "params_total": (1e9, "params total (B)"),
    "params_active": (1e9, "params active (B)"),
    "price_usd_per_hour": (1.0, "price (USD/h)"),
}
_WORDS = (("usd_per_mtok", "USD/Mtok"), ("_per_s", "/s"), ("_per_", " per "))


# ---------------------------------------------------------------- records


def _plain(v: Any) -> Any:
    """numpy scalars -> Python numbers; NaN, pandas NA / NaT -> None."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)) and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if type(v).__name__ in ("NAType", "NaTType"):
        return None
    return v


def as_records(data: Any) -> list[dict[str, Any]]:
    """A DataFrame or an iterable of mappings -> list of plain dicts (column order kept)."""
    if data is None:
        return []
    if hasattr(data, "to_dict") and not isinstance(data, Mapping):
        rows = data.to_dict(orient="records")
    else:
        rows = list(data)
    return [{str(k): _plain(v) for k, v in dict(r).items()} for r in rows]


records = as_records  # the name the other commands import


def column_names(rows: Sequence[Mapping[str, Any]], data: Any = None) -> list[str]:
    """Columns in first-seen order (a DataFrame's own order when it has no rows)."""
    if not rows and data is not None and hasattr(data, "columns"):
        return [str(c) for c in data.columns]
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def select(available: Sequence[str], wanted: Sequence[str] | None, default: Sequence[str] | None) -> list[str]:
    """The columns to show: `wanted` (the user's --columns) if given, else `default`, else all.
    An unknown name in `wanted` is one line naming the flag and the choices."""
    if wanted:
        if list(wanted) == [ALL_COLUMNS]:
            return list(available)
        unknown = [c for c in wanted if c not in available]
        if unknown:
            raise ConfigError(f"--columns: unknown column {unknown[0]!r} (expected '{ALL_COLUMNS}' or names from: "
                              f"{', '.join(available)})")
        return list(wanted)
    if default:
        return [c for c in default if c in available]
    return list(available)


# ---------------------------------------------------------------- numbers for people


def fmt_number(v: Any, sig: int = 3) -> str:
    """One formatter for every number a person reads: thousands separators, `sig` significant
    figures but never fewer than the integer digits (1,979 / 312 / 23.5 / 0.0412), integers exact,
    scientific notation only below 1e-3 or from 1e15 up. None / NaN -> "-"."""
    if v is None:
        return "-"
    if v is NOT_APPLICABLE:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) < 10**15 else f"{v:.{sig - 1}e}"
    if not isinstance(v, float):
        return str(v)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e15 or a < 1e-3:
        return f"{v:.{sig - 1}e}"
    if a >= 10 ** (sig - 1):
        return f"{round(v):,}"
    decimals = sig - 1 - math.floor(math.log10(a))
    text = f"{v:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _unit(name: str) -> tuple[str, str, float] | None:
    """(stem, unit shown, divisor from SI) of a raw name with a unit suffix, else None."""
    for suffix, div, unit in _SUFFIX_UNITS:
        if name.endswith(suffix) and not (suffix == "_s" and name.endswith("_per_s")):
            return name[: -len(suffix)], unit, div
    return None


def display_column(name: str) -> tuple[str, float]:
    """(header with its unit, divisor from SI) of a raw column name: `memory_bandwidth_bytes_per_s`
    -> ("memory bandwidth (GB/s)", 1e9); a name without a unit suffix keeps divisor 1."""
    if name in _NAMED_UNITS:
        div, header = _NAMED_UNITS[name]
        return header, div
    u = _unit(name)
    return (f"{_words(u[0])} ({u[1]})", u[2]) if u else (_words(name), 1.0)


def fmt_quantity(name: str, value: Any) -> str:
    """One value of the quantity `name` (a raw field name, dotted parts allowed) with its unit:
    ("peak_flop_per_s.bf16", 9.894e14) -> "989 TFLOP/s"; no unit suffix -> the number alone."""
    for part in reversed(name.split(".")):
        u = _unit(part)
        if u and _is_number(value):
            return f"{fmt_number(value / u[2])} {u[1]}"
    return fmt_number(value)


def _words(name: str) -> str:
    for raw, nice in _WORDS:
        name = name.replace(raw, nice)
    return name.replace("_", " ").strip()


# ---------------------------------------------------------------- table


def table_width() -> int:
    """$COLUMNS, else the terminal's width, else TABLE_WIDTH (pipes, files, tests)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) >= 40:
        return int(env)
    try:
        if sys.stdout.isatty():
            return max(40, os.get_terminal_size(sys.stdout.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        pass
    return TABLE_WIDTH


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers (with units), formatted cells and which columns are numeric (right-aligned)."""
    headers, numeric, divisors = [], [], []
    for c in columns:
        values = [r.get(c) for r in rows]
        is_num = any(_is_number(v) for v in values) and all(v is None or v is NOT_APPLICABLE or _is_number(v)
                                                            for v in values)
        header, div = display_column(c) if is_num else (_words(c), 1.0)
        headers.append(header)
        numeric.append(is_num)
        divisors.append(div)
    body = []
    for r in rows:
        line = []
        for c, is_num, div in zip(columns, numeric, divisors):
            v = r.get(c)
            if is_num and _is_number(v) and div != 1.0:
                v = v / div
            line.append(fmt_number(v).replace("\n", " "))
        body.append(line)
    return headers, body, numeric


def _wrap(header: str, width: int) -> list[str]:
    return textwrap.wrap(header, width, break_on_hyphens=False) or [header]


def _header_widths(headers: Sequence[str], cell_widths: Sequence[int], width: int) -> list[int]:
    """Column widths: the fewest header lines for which the whole table fits `width` (a header never
    splits inside a word); one line each when everything fits, the narrowest wrap otherwise."""
    narrowest = [max(w, max((len(x) for x in h.split()), default=1)) for h, w in zip(headers, cell_widths)]
    gaps = 2 * max(0, len(headers) - 1)
    most_lines = max((len(_wrap(h, w)) for h, w in zip(headers, narrowest)), default=1)
    for lines in range(1, most_lines + 1):
        widths = []
        for h, w in zip(headers, narrowest):
            while len(_wrap(h, w)) > lines:
                w += 1
            widths.append(w)
        if sum(widths) + gaps <= width:
            return widths
    return narrowest


def _tabulate():
    """The tabulate module, or None where it is not installed (the GPU image may lack it). Imported
    without its optional wcwidth (50-70 ms of a 0.3 s start): every width here is len()-based."""
    if "tabulate" in sys.modules:
        return sys.modules["tabulate"]
    block = "wcwidth" not in sys.modules
    if block:
        sys.modules["wcwidth"] = None  # type: ignore[assignment]  # makes `import wcwidth` raise ImportError
    try:
        import tabulate
    except ImportError:
        return None
    finally:
        if block:
            del sys.modules["wcwidth"]
    return tabulate


def _render(headers: Sequence[str], body: Sequence[Sequence[str]], numeric: Sequence[bool], width: int) -> str:
    cell_widths = [max([1] + [len(r[i]) for r in body]) for i in range(len(headers))]
    heads = ["\n".join(_wrap(h, w)) for h, w in zip(headers, _header_widths(headers, cell_widths, width))]
    align = ["right" if n else "left" for n in numeric]
    tab = _tabulate()
    if tab is None:
        return _plain_table(heads, body, align)
    padding, tab.MIN_PADDING = tab.MIN_PADDING, 0  # tabulate pads headers by 2; the gap between columns suffices
    try:
        return tab.tabulate(body, headers=heads, tablefmt="simple", colalign=align, disable_numparse=True)
    finally:
        tab.MIN_PADDING = padding


def _plain_table(heads: Sequence[str], body: Sequence[Sequence[str]], align: Sequence[str]) -> str:
    """tabulate's "simple" look without tabulate (the GPU image may lack it)."""
    head_lines = [h.split("\n") for h in heads]
    n_head = max((len(h) for h in head_lines), default=1)
    head_lines = [[""] * (n_head - len(h)) + h for h in head_lines]  # bottom-aligned, as tabulate does
    widths = [max([len(x) for x in h] + [len(r[i]) for r in body]) for i, h in enumerate(head_lines)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a == "right" else c.ljust(w) for c, w, a in zip(cells, widths, align)).rstrip()

    out = [line([h[k] for h in head_lines]) for k in range(n_head)]
    out.append("  ".join("-" * w for w in widths))
    out += [line(r) for r in body]
    return "\n".join(out)


def render_table(data: Any, columns: Sequence[str] | None = None, width: int | None = None) -> str:
    """The human table of `data` (records or a DataFrame) in `columns` (default: all). Headers wrap
    onto as few lines as let the table fit `width`; then long text cells are shortened with "…"
    (widest text column first, never the first column: it names the row) until it fits."""
    rows = as_records(data)
    cols = list(columns) if columns is not None else column_names(rows, data)
    width = width or table_width()
    headers, body, numeric = _cells(rows, cols)
    text = _render(headers, body, numeric, width)
    for _ in range(2 * len(cols)):
        over = max(len(x) for x in text.split("\n")) - width
        text_cols = [(max(len(r[i]) for r in body), i) for i in range(1, len(cols)) if not numeric[i] and body]
        text_cols = [(w, i) for w, i in text_cols if w > MIN_TEXT_WIDTH]
        if over <= 0 or not text_cols:
            break
        w, i = max(text_cols)
        new = max(MIN_TEXT_WIDTH, w - over)
        for r in body:
            r[i] = _shorten(r[i], new)
        text = _render(headers, body, numeric, width)
    return text


# ---------------------------------------------------------------- emit


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def emit(data: Any, fmt: str, out: TextIO | None = None, *, json_records: list | None = None,
         title: str | None = None, columns: Sequence[str] | None = None,
         default_columns: Sequence[str] | None = None) -> None:
    """Write `data` (records or a DataFrame) as `fmt`. `columns`: the user's --columns (None: the
    table shows `default_columns`, csv / json every column); `json_records` overrides the JSON body
    (nested records). `title` is printed above a table only."""
    out = out or sys.stdout
    if fmt == "csv" and hasattr(data, "to_csv") and hasattr(data, "columns"):  # a DataFrame: its own fast writer
        cols = select([str(c) for c in data.columns], columns, None)
        neutralise_csv(data[cols]).to_csv(out, index=False)  # `=cmd` names: no spreadsheet formulas
        return
    rows = as_records(data)
    available = column_names(rows, data)
    if fmt == "json":
        if json_records is not None and not columns:
            body: Iterable = json_records
        else:
            cols = select(available, columns, None)
            body = [{c: r.get(c) for c in cols} for r in rows]
        json.dump(list(body), out, indent=1, default=str)
        out.write("\n")
    elif fmt == "csv":
        cols = select(available, columns, None)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([neutralise_cell(c) for c in cols])
        for r in rows:
            writer.writerow([neutralise_cell(_csv_value(r.get(c))) for c in cols])
    elif fmt == "table":
        cols = select(available, columns, default_columns)
        if title:
            out.write(title + "\n")
        out.write(render_table(rows, cols) + "\n")
    else:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
