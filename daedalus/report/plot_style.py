"""Shared figure plumbing for the plot modules: a pyplot-free Figure factory, consistent family
colours, unit formatters and the save step. Only the plot modules import this.

No pyplot and no `matplotlib.use`: `Figure.savefig` renders PNG with the Agg canvas and SVG with
the SVG canvas on its own, so importing these modules never changes the backend of a notebook or
opens a window, and figures hold no global state (nothing to close, safe in threads).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter, LogLocator, NullFormatter, NullLocator

from daedalus.safety import escape_figure_text, file_stem
from simulators.errors import ConfigError, raise_with_path
from simulators.units import GB, TB

DPI = 130
FONT_SIZE = 9.5

# Colour-blind-safe colours: Okabe & Ito (2008), "Color Universal Design" (the 8-colour set), plus
# Paul Tol's "wine" for a 9th. Series that could still be confused also differ in marker and line style.
OKABE_ITO = {
    "blue": "#0072B2", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "vermillion": "#D55E00",
    "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000", "grey": "#999999", "wine": "#882255",
}
_C = OKABE_ITO
SERIES_COLORS = (_C["blue"], _C["orange"], _C["green"], _C["vermillion"], _C["purple"], _C["sky"], _C["wine"],
                 _C["black"], _C["grey"])  # i-th series of a chart (yellow left out: unreadable on white)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))

# One colour per op / benchmark family, stable across every figure of a report.
FAMILY_ORDER = (
    # simulator op families
    "attn_core", "attn_proj", "indexer", "dense_ffn", "moe_routed", "moe_shared", "moe_router",
    "lm_head", "embed", "norm",
    # measured benchmark families
    "mla_decode", "mla_prefill", "attn_decode", "attn_prefill", "moe", "gemm", "copy",
)
_PALETTE = (
    _C["blue"], _C["sky"], _C["purple"], _C["green"], _C["vermillion"], _C["orange"], "#999933",  # Tol olive
    _C["black"], _C["grey"], _C["wine"],
    _C["blue"], _C["sky"], _C["green"], _C["wine"], _C["vermillion"], _C["orange"], _C["grey"],
)
_EXTRA = ("#332288", "#117733", "#999933", "#AA4499", "#44AA99", "#661100")  # Paul Tol's "muted" extras
FAMILY_COLORS = dict(zip(FAMILY_ORDER, _PALETTE))
BOUND_COLORS = {"memory": _C["blue"], "compute": _C["orange"]}
ATTENTION_COLORS = {"mla": _C["blue"], "mha": _C["green"], "gqa": _C["orange"], "mqa": _C["purple"],
                    "csa_hca": _C["vermillion"]}


def series_style(i: int) -> dict:
    """Colour, marker and line style of the i-th series: no two of the first 9 share a colour, and
    neighbours differ in marker and dash too (readable in greyscale)."""
    return {"color": SERIES_COLORS[i % len(SERIES_COLORS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def family_color(family: str) -> str:
    if family in FAMILY_COLORS:
        return FAMILY_COLORS[family]
    return _EXTRA[sum(map(ord, str(family))) % len(_EXTRA)]


def ordered_families(families: Iterable[str]) -> list[str]:
    """Known families in FAMILY_ORDER first, the rest alphabetically."""
    present = set(map(str, families))
    known = [f for f in FAMILY_ORDER if f in present]
    return known + sorted(present - set(known))


def new_figure(width_in: float, height_in: float, nrows: int = 1, ncols: int = 1, **kw):
    """A Figure with a grid of axes (always a flat list), laid out by the constrained engine."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw).ravel().tolist()
    return fig, axes


def style_axes(ax, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None) -> None:
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 1)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            readable_log_axis(axis)
    ax.grid(True, which="major", alpha=0.35, linewidth=0.6)


def readable_log_axis(axis) -> None:
    """Log ticks a person can read: plain numbers (0.1, 20, 5,000; never 10^2 alone), at 1-2-5 per
    decade when the axis spans under ~2.5 decades (so a narrow axis still has several labels),
    decades only otherwise, with one unlabelled minor tick at 3 (8 per decade cost seconds).
    Call after the limits are set; base-2 axes keep their own locator."""
    if axis.get_transform().base != 10:
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())
        return
    lo, hi = sorted(axis.get_view_interval())
    decades = np.log10(hi / lo) if lo > 0 and hi > 0 else 99.0
    if decades < 2.5:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_locator(NullLocator())
    else:
        axis.set_major_locator(LogLocator(base=10))
        axis.set_minor_locator(LogLocator(base=10, subs=(3.0,)))
    if isinstance(axis.get_major_formatter(), LogFormatter):  # the default 10^x labels
        axis.set_major_formatter(PLAIN_FORMATTER)
    axis.set_minor_formatter(NullFormatter())


def si_number(v: float) -> str:
    """Compact tick label: 1k, 32k, 1M (powers of 1000; context axes use k = 1024 labels)."""
    v = float(v)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:g}"


def fmt_sig(v: float, digits: int = 3) -> str:
    """Up to `digits` significant digits, no exponent for 1e-3 <= |v| < 1e9: 1,979 / 23.5 / 0.0412 / 75."""
    v = float(v)
    if v == 0 or not np.isfinite(v):
        return f"{v:g}"
    a = abs(v)
    if a >= 1e9 or a < 1e-3:
        return f"{v:.{digits - 1}e}"
    decimals = max(0, digits - 1 - int(np.floor(np.log10(a))))
    text = f"{v:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_bandwidth(bytes_per_s: float) -> str:
    return f"{fmt_sig(bytes_per_s / TB)} TB/s" if bytes_per_s >= TB else f"{fmt_sig(bytes_per_s / GB)} GB/s"


def tokens_label(v: float) -> str:
    """Context lengths in tokens with k = 1024 (1k, 128k, 1M = 2**20)."""
    v = float(v)
    if v >= 2**20:
        return f"{v / 2**20:g}M"
    if v >= 2**10:
        return f"{v / 2**10:g}k"
    return f"{v:g}"


TOKENS_FORMATTER = FuncFormatter(lambda v, _pos: tokens_label(v))
SI_FORMATTER = FuncFormatter(lambda v, _pos: si_number(v))
PLAIN_FORMATTER = FuncFormatter(lambda v, _pos: plain_tick(v))


def plain_tick(v: float) -> str:
    """Tick label without exponent: 0.001, 0.5, 20, 5,000, 2M (from a million on, SI suffixes)."""
    v = float(v)
    if v == 0 or not np.isfinite(v):
        return f"{v:g}"
    if abs(v) >= 1e6:
        return si_number(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.6f}".rstrip("0").rstrip(".")


def empty_figure(out_dir: str | Path, name: str, message: str) -> list[Path]:
    """A small placeholder figure saying why there is nothing to plot (no crash on empty input)."""
    return save_figure(placeholder_figure(message), out_dir, name)


def placeholder_figure(message: str) -> Figure:
    """A small figure saying why there is nothing to plot."""
    fig, (ax,) = new_figure(6, 1.6)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=FONT_SIZE + 1, wrap=True)
    return fig


FIGURE_SUFFIXES = (".png", ".svg")


def save_one(fig: Figure, path: str | Path, flag: str = "--plot", dpi: int = DPI) -> Path:
    """Write one file, PNG or SVG by the extension of `path` (anything else: ConfigError naming
    `flag`). Written next to the target and renamed, so a reader never sees half a file."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ConfigError(f"{flag}: expected a file name ending in .png or .svg, got {str(path)!r}")
    if path.parent and not path.parent.exists():
        raise ConfigError(f"{flag}: folder {str(path.parent)!r} does not exist")
    tmp = path.with_name(f".{path.name}.tmp")
    fmt = path.suffix.lower()[1:]
    escape_figure_text(fig)  # names with `$` would be parsed as mathtext (and crash the draw)
    try:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
        tmp.replace(path)
    except BaseException as exc:  # disk full, Ctrl-C: no half-written temporary file is left
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only folder: the first error is the one to tell
            pass
        raise_with_path(exc, path, tmp)
    return path


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `<name>.png` (dpi DPI) and `<name>.svg`; returns [png, svg]."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{file_stem(name)}.png", out / f"{file_stem(name)}.svg"]  # a name with `/` stays in `out`
    for p in paths:  # each written beside its target and renamed: never half a figure
        save_one(fig, p, dpi=DPI)
    return paths
