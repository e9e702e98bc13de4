"""Pareto plot of `daedalus plan`: decode tokens/s per device against tokens/s per user, one
front per hardware profile. Reads the plan's DataFrame only; pyplot-free (Agg canvas)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.run_folder import write_atomic
from daedalus.safety import escape_figure_text

DPI = 130


def _tick(v: float, _pos=None) -> str:
    """1, 2, 5, 10, 20, 50, 100, 1k, 2k, ... (plain numbers, k for thousands)."""
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def pareto_figure(pareto: pd.DataFrame, title: str = "", chosen: pd.DataFrame | None = None,
                  tpot_s: float | None = None) -> Figure:
    """One line per hardware: the Pareto front of (tokens/s per user, tokens/s per device).
    `chosen` (the plan table) marks and labels each hardware's chosen decode deployment; `tpot_s`
    draws the TPOT target as the line tokens/s per user = 1 / TPOT."""
    fig = Figure(figsize=(7.5, 5.0), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (hw, grp) in enumerate(pareto.groupby("hardware", sort=False)):
        grp = grp.sort_values("tokens_per_s_per_user")
        (line,) = ax.plot(grp["tokens_per_s_per_user"], grp["tokens_per_s_per_device"], marker=".", ms=3,
                          lw=1.3, label=hw, color=f"C{i % 10}")
        if chosen is not None:
            row = chosen[(chosen["hardware"] == hw) & chosen["feasible"]]
            if not row.empty:
                r = row.iloc[0]
                x, y = r["tokens_per_s_per_user"], r["decode_tokens_per_s_per_device"]
                ax.plot([x], [y], marker="o", ms=8, mfc="none", mec=line.get_color(), mew=1.6)
                ax.annotate(f"{hw}: {int(r['decode_devices'])} dev, tp{int(r['tp'])} ep{int(r['ep'])}",
                            (x, y), xytext=(8, 6 - 11 * i), textcoords="offset points", fontsize=7,
                            color=line.get_color(),
                            arrowprops={"arrowstyle": "-", "color": line.get_color(), "lw": 0.6})
    if tpot_s:
        ax.axvline(1.0 / tpot_s, color="0.3", ls="--", lw=1.0)
        ax.annotate(f"TPOT target {tpot_s * 1e3:g} ms", (1.0 / tpot_s, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(4, 30), textcoords="offset points", fontsize=7.5, color="0.3", rotation=90)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(_tick))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("decode tokens/s per user (1 / TPOT)")
    ax.set_ylabel("decode tokens/s per device")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(title or "Decode Pareto front; circles: chosen deployment", fontsize=9.5)
    if len(pareto):
        ax.legend(fontsize=8, ncol=2, loc="lower left")
    escape_figure_text(fig)  # names with `$` would be parsed as mathtext (and crash the layout)
    fig.tight_layout()
    return fig


def write_pareto_png(pareto: pd.DataFrame, path: Path, title: str = "", chosen: pd.DataFrame | None = None,
                     tpot_s: float | None = None) -> Path:
    buf = io.BytesIO()
    pareto_figure(pareto, title, chosen, tpot_s).savefig(buf, format="png")
    return write_atomic(path, buf.getvalue())
