"""Pareto figure of `daedalus plan`: decode tokens/s per device against tokens/s per user (= 1 / TPOT),
one front per hardware profile, the plan's chosen decode deployment circled, the TPOT target drawn.
Reads the plan's frames only (`simulators.plan.PlanResult.pareto` and `.table`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D

from .plot_style import FONT_SIZE, PLAIN_FORMATTER, new_figure, placeholder_figure, save_one, series_style, style_axes


def pareto_figure(pareto: pd.DataFrame | None, *, chosen: pd.DataFrame | None = None, title: str = "",
                  tpot_target_s: float | None = None):
    """One line per hardware (colour, marker and dash differ); `chosen` (the plan table) circles each
    hardware's chosen decode deployment; `tpot_target_s` draws the target as a vertical line at
    1 / TPOT with the side that misses it shaded."""
    if pareto is None or pareto.empty:
        return placeholder_figure("plan: no decode deployment fits, so no Pareto front")
    fig, (ax,) = new_figure(7.5, 5.0)
    handles = []
    for i, (hw, grp) in enumerate(pareto.groupby("hardware", sort=False)):
        grp = grp.sort_values("tokens_per_s_per_user")
        st = series_style(i)
        (line,) = ax.plot(grp["tokens_per_s_per_user"], grp["tokens_per_s_per_device"], color=st["color"],
                          marker=st["marker"], linestyle=st["linestyle"], markersize=3.5, linewidth=1.4, label=hw)
        handles.append(line)
        if chosen is not None and not chosen.empty:
            row = chosen[(chosen["hardware"] == hw) & chosen["feasible"].astype(bool)]
            if not row.empty:
                ax.plot(row["tokens_per_s_per_user"], row["decode_tokens_per_s_per_device"], linestyle="",
                        marker="o", markersize=11, markerfacecolor="none", markeredgecolor=st["color"],
                        markeredgewidth=2.0, zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    x = pareto["tokens_per_s_per_user"].to_numpy(float)
    y = pareto["tokens_per_s_per_device"].to_numpy(float)
    x_lo, x_hi = x.min() / 1.5, x.max() * 1.5
    if tpot_target_s:
        target = 1.0 / tpot_target_s
        x_lo, x_hi = min(x_lo, target / 1.5), max(x_hi, target * 1.5)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y.min() / 1.5, y.max() * 1.5)
    if chosen is not None and not chosen.empty:
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor="black", markeredgewidth=2.0, label="chosen deployment (plan table)"))
    if tpot_target_s:
        ax.axvline(target, color="black", linestyle=(0, (4, 2)), linewidth=1.2)
        ax.axvspan(x_lo, target, color="#999999", alpha=0.15, linewidth=0)
        handles.append(Line2D([], [], color="black", linestyle=(0, (4, 2)),
                              label=f"TPOT target {tpot_target_s * 1e3:g} ms (shaded: misses it)"))
    ax.xaxis.set_major_formatter(PLAIN_FORMATTER)
    ax.yaxis.set_major_formatter(PLAIN_FORMATTER)
    style_axes(ax, title=title or "Decode Pareto front (roofline upper bound)",
               xlabel="decode tokens/s per user (= 1 / TPOT)", ylabel="decode tokens/s per device")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(handles=handles, fontsize=FONT_SIZE - 1.5, loc="best", framealpha=0.9,
              ncol=2 if len(handles) > 6 else 1)
    return fig


def write_pareto(pareto: pd.DataFrame | None, path: str | Path, *, chosen: pd.DataFrame | None = None,
                 title: str = "", tpot_target_s: float | None = None, flag: str = "--plot") -> Path:
    """`pareto_figure` into one PNG or SVG file (by extension)."""
    fig = pareto_figure(pareto, chosen=chosen, title=title, tpot_target_s=tpot_target_s)
    return save_one(fig, path, flag)


__all__ = ["pareto_figure", "write_pareto"]
