"""Pareto plot of `daedalus plan`: decode tokens/s per device against tokens/s per user, one
front per hardware profile. Reads the plan's DataFrame only; pyplot-free (Agg canvas)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bench.run_folder import write_atomic

DPI = 130


def pareto_figure(pareto: pd.DataFrame, title: str = "", chosen: pd.DataFrame | None = None) -> Figure:
    """One line per hardware: the Pareto front of (tokens/s per user, tokens/s per device).
    `chosen` (the plan table) marks each hardware's chosen decode deployment."""
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
                ax.plot(row["tokens_per_s_per_user"], row["decode_tokens_per_s_per_device"], marker="o", ms=7,
                        mfc="none", mec=line.get_color(), mew=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("decode tokens/s per user (1 / TPOT)")
    ax.set_ylabel("decode tokens/s per device")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(title or "Decode Pareto front (roofline upper bound); circles: chosen deployment", fontsize=9.5)
    if len(pareto):
        ax.legend(fontsize=8, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig


def write_pareto_png(pareto: pd.DataFrame, path: Path, title: str = "", chosen: pd.DataFrame | None = None) -> Path:
    buf = io.BytesIO()
    pareto_figure(pareto, title, chosen).savefig(buf, format="png")
    return write_atomic(path, buf.getvalue())
