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
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from simulators.units import GB, TB

DPI = 130
FONT_SIZE = 9.5

# One colour per op / benchmark family, stable across every figure of a report.
FAMILY_ORDER = (
    # simulator op families
    "attn_core", "attn_proj", "indexer", "dense_ffn", "moe_routed", "moe_shared", "moe_router",
    "lm_head", "embed", "norm",
    # measured benchmark families
    "mla_decode", "mla_prefill", "attn_decode", "attn_prefill", "moe", "gemm", "copy",
)
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#8c564b", "#2ca02c", "#d62728", "#9467bd", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf",
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#d62728", "#2ca02c", "#7f7f7f",
)
_EXTRA = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")
FAMILY_COLORS = dict(zip(FAMILY_ORDER, _PALETTE))
BOUND_COLORS = {"memory": "#4c72b0", "compute": "#dd8452"}
ATTENTION_COLORS = {"mla": "#d62728", "mha": "#1f77b4", "gqa": "#2ca02c", "mqa": "#9467bd", "csa_hca": "#ff7f0e"}


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
    for axis in (ax.xaxis, ax.yaxis):  # few minor ticks on log axes: legible, and 8 per decade cost seconds
        if axis.get_scale() == "log":
            base = axis.get_transform().base
            axis.set_minor_locator(LogLocator(base=10, subs=(3.0,)) if base == 10 else NullLocator())
            axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.35, linewidth=0.6)


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
PLAIN_FORMATTER = FuncFormatter(lambda v, _pos: f"{v:g}")


def empty_figure(out_dir: str | Path, name: str, message: str) -> list[Path]:
    """A small placeholder figure saying why there is nothing to plot (no crash on empty input)."""
    fig, (ax,) = new_figure(6, 1.6)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=FONT_SIZE + 1, wrap=True)
    return save_figure(fig, out_dir, name)


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `<name>.png` (dpi DPI) and `<name>.svg`; returns [png, svg]."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for p in paths:
        fig.savefig(p, dpi=DPI, metadata={"Date": None} if p.suffix == ".svg" else None)
    return paths
