"""`--columns a,b,c`: which columns a command prints. The names are those of `--format csv`
(raw SI names such as `memory_bytes`); `all` shows every column. A table without `--columns`
shows the command's compact default set; csv and json without it carry every column."""

from __future__ import annotations

import argparse

from .output import ALL_COLUMNS


def column_list(text: str) -> list[str]:
    """argparse `type`: "a, b,c" -> ["a", "b", "c"]; empty -> argparse error (one line, exit 2)."""
    cols = [c.strip() for c in text.split(",") if c.strip()]
    if not cols:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names or '{ALL_COLUMNS}', got {text!r}")
    return cols


def add_columns(p: argparse.ArgumentParser, default: list[str] | None = None) -> None:
    """Add `--columns`; `default` (the compact table view) is named in the help text."""
    shown = f" (table default: {','.join(default)})" if default else ""
    p.add_argument("--columns", type=column_list, default=None, metavar="A,B,...",
                   help=f"columns to print, names as in --format csv, or '{ALL_COLUMNS}'{shown}; "
                        "with csv / json, only these fields")
