"""Figures of measured frames: predicted vs measured time (validation) and MoE expert load.
Inputs are the tidy CSVs of a run folder (raw SI numbers); each function writes `<name>.png`
and `<name>.svg` into `out_dir` and returns both paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from simulators.units import MS

from .plot_style import (
    FONT_SIZE,
    PLAIN_FORMATTER,
    empty_figure,
    family_color,
    new_figure,
    ordered_families,
    save_figure,
    style_axes,
)

MODE_ORDER = ("speed_of_light", "calibrated")
BAND = 0.25  # ±25 % band around y = x
MAX_EXPERT_PANELS = 4


def plot_pred_vs_measured(cases_df: pd.DataFrame, out_dir: str | Path, name: str = "pred_vs_measured") -> list[Path]:
    """Predicted vs measured time per case (log-log, ms), y = x and a ±25 % band, colour = family,
    one panel per prediction mode. Title of each panel: cases, median |error| and share within 25 %."""
    if cases_df is None or cases_df.empty:
        return empty_figure(out_dir, name, "predicted vs measured: no validation cases")
    df = cases_df[(cases_df["measured_s"] > 0) & (cases_df["predicted_s"] > 0)]
    if df.empty:
        return empty_figure(out_dir, name, "predicted vs measured: no case with positive times")
    modes = [m for m in MODE_ORDER if m in set(df["mode"])] + sorted(set(df["mode"]) - set(MODE_ORDER))
    lo = min(df["measured_s"].min(), df["predicted_s"].min()) / MS / 2
    hi = max(df["measured_s"].max(), df["predicted_s"].max()) / MS * 2
    fig, axes = new_figure(5.0 * len(modes) + 1.6, 4.8, 1, len(modes), sharex=True, sharey=True)
    line = np.geomspace(lo, hi, 50)
    for ax, mode in zip(axes, modes):
        sub = df[df["mode"] == mode]
        ax.fill_between(line, line * (1 - BAND), line * (1 + BAND), color="#cccccc", alpha=0.5, linewidth=0)
        ax.plot(line, line, color="black", linewidth=1)
        ax.scatter(sub["measured_s"] / MS, sub["predicted_s"] / MS, s=26, alpha=0.85,
                   c=[family_color(f) for f in sub["family"]], edgecolors="white", linewidths=0.4)
        err = (sub["predicted_s"] / sub["measured_s"] - 1).abs() * 100
        within = 100 * (err <= 100 * BAND).mean()
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.xaxis.set_major_formatter(PLAIN_FORMATTER)
        ax.yaxis.set_major_formatter(PLAIN_FORMATTER)
        style_axes(ax, title=f"{mode.replace('_', ' ')}: {len(sub)} cases, MdAPE {err.median():.0f}%, "
                             f"{within:.0f}% within ±25%",
                   xlabel="measured time (ms)", ylabel="predicted time (ms)")
        ax.text(0.03, 0.97, "over-predicts ↑", transform=ax.transAxes, va="top", fontsize=FONT_SIZE - 2,
                color="#555555")
        ax.text(0.97, 0.03, "under-predicts ↓", transform=ax.transAxes, ha="right", fontsize=FONT_SIZE - 2,
                color="#555555")
    handles = [Patch(color=family_color(f), label=f) for f in ordered_families(df["family"].unique())]
    handles.append(Patch(color="#cccccc", label="±25% of measured"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=FONT_SIZE - 1.5)
    fig.suptitle("Predicted vs measured kernel time (on the line = exact)", fontsize=FONT_SIZE + 2)
    return save_figure(fig, out_dir, name)


def plot_expert_load(expert_load_df: pd.DataFrame, out_dir: str | Path, name: str = "expert_load", *,
                     case_ids: list[str] | None = None) -> list[Path]:
    """Routed tokens per expert (bars) with the uniform expectation (total / experts), one panel per
    MoE case (the first four unless `case_ids` names them). Titles give max / mean load."""
    if expert_load_df is None or expert_load_df.empty:
        return empty_figure(out_dir, name, "expert load: no MoE routing counts")
    cases = case_ids or list(dict.fromkeys(expert_load_df["case_id"]))[:MAX_EXPERT_PANELS]
    fig, axes = new_figure(9.0, 2.6 * len(cases), len(cases), 1)
    for ax, case in zip(axes, cases):
        sub = expert_load_df[expert_load_df["case_id"] == case].sort_values("expert")
        tokens = sub["tokens"].to_numpy(dtype=float)
        mean = tokens.mean() if len(tokens) else 0.0
        ax.bar(sub["expert"], tokens, width=0.85, color="#4c72b0")
        ax.axhline(mean, color="#d62728", linewidth=1.5, label=f"uniform expectation ({mean:,.1f} tokens)")
        imbalance = tokens.max() / mean if mean > 0 else float("nan")
        style_axes(ax, title=f"{case}: {len(tokens)} experts, {tokens.sum():,.0f} routed tokens, "
                             f"max/mean load {imbalance:.2f}",
                   xlabel="expert id", ylabel="routed tokens")
        ax.set_ylim(0, max(tokens.max(initial=0.0), mean) * 1.3 + 1)
        ax.legend(loc="upper right", fontsize=FONT_SIZE - 1)
        ax.grid(False, axis="x")
    fig.suptitle("MoE routing: tokens per expert (the busiest expert sets the step time)", fontsize=FONT_SIZE + 2)
    return save_figure(fig, out_dir, name)
