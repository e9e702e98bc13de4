"""Names that become paths, markup or spreadsheet cells: checked or escaped at the edge.

    path_component(s, flag)   a run id / folder name: one path component, refused otherwise
    inside(base, path)        `path` resolved lies under `base` (refused otherwise)
    file_stem(name)           any display name -> a safe file-name stem (h100/sxm -> h100_sxm)
    mathtext_escape(s)        text for a matplotlib label, with `$` (mathtext) escaped
    escape_figure_text(fig)   every fixed text of a figure (titles, labels, legends) escaped so
                              (tick labels are drawn by formatters and left alone)
    neutralise_csv(df)        cells starting with = + - @ (or tab / CR) quoted for spreadsheets
    html(s)                   text for HTML, escaped once (quotes included)
    new_folder(path)          an output folder for some writes, removed again (with the parents it
                              made) if they fail and leave it empty
"""

from __future__ import annotations

import contextlib
import html as _html
import math
import os
import re
from pathlib import Path
from typing import Any

from simulators.errors import ConfigError

MAX_COMPONENT = 128  # well below NAME_MAX (255 bytes) with room for suffixes like `.csv.tmp`
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_UNSAFE_STEM = re.compile(r"[^A-Za-z0-9._+-]+")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def path_component(s: Any, flag: str = "--run-id") -> str:
    """A single folder name: letters, digits, `. _ + -`, starting with a letter or digit (so never
    `.`, `..`, hidden or an option), no separator, at most MAX_COMPONENT characters."""
    if not isinstance(s, str) or not s:
        raise ConfigError(f"{flag}: expected a folder name, got {s!r}")
    if "/" in s or "\\" in s or os.path.isabs(s) or s in (".", ".."):
        raise ConfigError(f"{flag}: expected a single folder name (no '/', '..' or absolute path), got {s!r}")
    if len(s) > MAX_COMPONENT:
        raise ConfigError(f"{flag}: name longer than {MAX_COMPONENT} characters ({len(s)})")
    if not _COMPONENT.fullmatch(s):
        raise ConfigError(f"{flag}: expected letters, digits and . _ + - (starting with a letter or digit), "
                          f"got {s!r}")
    return s


def inside(base: str | os.PathLike, path: str | os.PathLike, flag: str = "path") -> Path:
    """`path` (relative to `base` when not absolute) resolved; refused unless it lies under `base`
    (symbolic links followed, so a link inside pointing out is refused too)."""
    base_r = Path(base).resolve()
    p = Path(path)
    resolved = (p if p.is_absolute() else base_r / p).resolve()
    if resolved != base_r and base_r not in resolved.parents:
        raise ConfigError(f"{flag}: {os.fspath(path)!r} lies outside {os.fspath(base)}")
    return resolved


def file_stem(name: Any, max_len: int = 80) -> str:
    """A display name as a file-name stem that passes `path_component`: runs of anything but
    `A-Za-z0-9._+-` become `_`, starting with a letter or digit, never empty, at most `max_len`."""
    stem = _UNSAFE_STEM.sub("_", str(name)).lstrip("._+-").rstrip(".") or "unnamed"
    return stem[:max_len].rstrip(".") or "unnamed"


def mathtext_escape(s: Any) -> str:
    """Text safe for a matplotlib title / label / legend: `$` starts mathtext (an unbalanced
    `$\\frac{1}{$` raises at draw time), so each is escaped."""
    return str(s).replace("\\$", "$").replace("$", r"\$")


_MPL_MATH = re.compile(r"\$\\mathdefault\{[^$]*\}\$|\$\\times\\mathdefault\{[^$]*\}\$")  # matplotlib's own


def escape_figure_text(fig) -> None:
    """Escape `$` in every title, axis label, legend entry, annotation and tick label of a matplotlib
    figure, before it is drawn: names come from data files and flags (`$\\frac{1}{$` would crash the
    draw), and the report draws no mathtext of its own. Tick formatters are wrapped, since tick
    labels are made at draw time; the `$\\mathdefault{10^{3}}$` labels matplotlib's own numeric
    formatters make are kept."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        s = t.get_text()
        if "$" in s:
            t.set_text(mathtext_escape(s))
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for get, put in ((axis.get_major_formatter, axis.set_major_formatter),
                             (axis.get_minor_formatter, axis.set_minor_formatter)):
                f = get()
                if not getattr(f, "_daedalus_escaped", False):
                    put(_escaped_formatter(f))


def _label_escape(s: str) -> str:
    return s if "$" not in s or _MPL_MATH.fullmatch(s) else mathtext_escape(s)


def _escaped_formatter(inner):
    """A tick formatter that delegates to `inner` and escapes the labels it makes."""
    from matplotlib.ticker import Formatter

    class Escaped(Formatter):
        _daedalus_escaped = True

        def __call__(self, x, pos=None):
            return _label_escape(inner(x, pos))

        def format_ticks(self, values):
            return [_label_escape(s) for s in inner.format_ticks(values)]

        def set_locs(self, locs):
            inner.set_locs(locs)

        def get_offset(self):
            return inner.get_offset()

        def format_data(self, value):
            return inner.format_data(value)

        def format_data_short(self, value):
            return inner.format_data_short(value)

        def set_axis(self, axis):
            super().set_axis(axis)
            inner.set_axis(axis)

    return Escaped()


def neutralise_cell(v: Any) -> Any:
    """A string that a spreadsheet would read as a formula gets a leading `'`; numbers pass
    (a negative number is data, not a formula)."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        if v[:1] in "+-" and _is_number(v):
            return v
        return "'" + v
    return v


def neutralise_csv(df):
    """The DataFrame with its text cells (and column names) neutralised for CSV export; the same
    object when no cell needs it (the common case costs one vectorised scan per text column)."""
    out = None
    for col in df.columns:
        s = df[col]
        if s.dtype != object and str(s.dtype) not in ("string", "str"):
            continue
        text = s.astype(str)
        hit = text.str.startswith(FORMULA_START) & s.map(lambda v: isinstance(v, str))
        if hit.any():
            out = df.copy() if out is None else out
            out.loc[hit, col] = s[hit].map(neutralise_cell)
    names = [neutralise_cell(c) for c in df.columns]
    if names != list(df.columns):
        out = df.copy() if out is None else out
        out.columns = names
    return df if out is None else out


def html(s: Any) -> str:
    return _html.escape(str(s), quote=True)


def _is_number(s: str) -> bool:
    try:
        return not math.isnan(float(s))
    except ValueError:
        return False


@contextlib.contextmanager
def new_folder(path: str | os.PathLike):
    """Create `path` and its missing parents for the writes in the block; if the block fails, remove
    the folders it created that are still empty, deepest first (a full disk left `plan --save` and
    `figures --out` folders behind with nothing in them)."""
    from bench.run_lock import make_dirs, remove_empty_dirs

    made = make_dirs(path)
    try:
        yield Path(path)
    except BaseException:
        remove_empty_dirs(made)
        raise
