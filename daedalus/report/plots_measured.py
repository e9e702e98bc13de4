"""Figures of measured frames: predicted vs measured time (validation) and MoE expert load.
Inputs are the tidy CSVs of a run folder (raw SI numbers); each function writes `<name>.png`
and `<name>.svg` into `out_dir` and returns both paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from simulators.units import MS

from .plot_style import (
    FONT_SIZE,
    MARKERS,
    OKABE_ITO,
    PLAIN_FORMATTER,
    family_color,
    new_figure,
    ordered_families,
    placeholder_figure,
    save_figure,
    style_axes,
)

MODE_ORDER = ("speed_of_light", "calibrated")
BAND = 0.25  # ±25 % band around y = x
MAX_EXPERT_PANELS = 4


def plot_pred_vs_measured(cases_df: pd.DataFrame, out_dir: str | Path, name: str = "pred_vs_measured") -> list[Path]:
    """Predicted vs measured time per case (log-log, ms), y = x and a ±25 % band, colour = family,
    one panel per prediction mode. Title of each panel: cases, median |error| and share within 25 %."""
    return save_figure(pred_vs_measured_figure(cases_df), out_dir, name)


def pred_vs_measured_figure(cases_df: pd.DataFrame | None):
    """The Figure of `plot_pred_vs_measured` (not saved); family = colour and marker."""
    if cases_df is None or cases_df.empty:
        return placeholder_figure("predicted vs measured: no validation cases")
    df = cases_df[(cases_df["measured_s"] > 0) & (cases_df["predicted_s"] > 0)]
    if df.empty:
        return placeholder_figure("predicted vs measured: no case with positive times")
    families = ordered_families(df["family"].unique())
    marker = {f: MARKERS[i % len(MARKERS)] for i, f in enumerate(families)}
    modes = [m for m in MODE_ORDER if m in set(df["mode"])] + sorted(set(df["mode"]) - set(MODE_ORDER))
    lo = min(df["measured_s"].min(), df["predicted_s"].min()) / MS / 2
    hi = max(df["measured_s"].max(), df["predicted_s"].max()) / MS * 2
    fig, axes = new_figure(5.0 * len(modes) + 1.6, 4.8, 1, len(modes), sharex=True, sharey=True)
    line = np.geomspace(lo, hi, 50)
    for ax, mode in zip(axes, modes):
        sub = df[df["mode"] == mode]
        ax.fill_between(line, line * (1 - BAND), line * (1 + BAND), color="#cccccc", alpha=0.5, linewidth=0)
        ax.plot(line, line, color="black", linewidth=1)
        for fam, pts in sub.groupby("family", sort=False):
            ax.scatter(pts["measured_s"] / MS, pts["predicted_s"] / MS, s=28, alpha=0.85, marker=marker[fam],
                       color=family_color(fam), edgecolors="white", linewidths=0.4)
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
    handles = [Line2D([], [], linestyle="", marker=marker[f], color=family_color(f), label=f) for f in families]
    handles.append(Patch(color="#cccccc", label="±25% of measured"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=FONT_SIZE - 1.5)
    fig.suptitle("Predicted vs measured kernel time (on the line = exact)", fontsize=FONT_SIZE + 2)
    return fig


def distinct_routings(expert_load_df: pd.DataFrame, case_ids: list[str] | None = None,
                      limit: int = MAX_EXPERT_PANELS) -> list[tuple[str, list[str]]]:
    """[(case shown, every case with exactly the same tokens per expert)], at most `limit`.
    Kernels fed the same routing (moe_grouped and moe_loop at one batch) give identical counts,
    so they share one panel. Without `case_ids`, the panels are spread from the fewest routed
    tokens to the most."""
    df = expert_load_df if case_ids is None else expert_load_df[expert_load_df["case_id"].isin(case_ids)]
    groups: dict[tuple, list[str]] = {}
    for case, sub in df.groupby("case_id", sort=False):
        key = tuple(sub.sort_values("expert")[["expert", "tokens"]].itertuples(index=False, name=None))
        groups.setdefault(key, []).append(str(case))
    items = sorted(groups.items(), key=lambda kv: sum(t for _, t in kv[0]))
    if case_ids is None and len(items) > limit:  # evenly spaced over the sorted totals
        picks = np.unique(np.round(np.linspace(0, len(items) - 1, limit)).astype(int))
        items = [items[i] for i in picks]
    return [(cases[0], cases) for _, cases in items[:limit]]


def _case_label(case: str, same: list[str]) -> str:
    if len(same) == 1:
        return case
    kernels = sorted(c.split("/", 1)[0] for c in same)
    rest = case.split("/", 1)[1] if "/" in case else case
    return f"{rest} (same routing in {' and '.join(kernels)})"


def plot_expert_load(expert_load_df: pd.DataFrame, out_dir: str | Path, name: str = "expert_load", *,
                     case_ids: list[str] | None = None) -> list[Path]:
    """Routed tokens per expert (bars) with the uniform expectation (total / experts), one panel per
    distinct routing (cases with identical counts share a panel; at most four, spread over the
    routed-token totals, unless `case_ids` names them). Titles give max / mean load."""
    return save_figure(expert_load_figure(expert_load_df, case_ids=case_ids), out_dir, name)


def expert_load_figure(expert_load_df: pd.DataFrame | None, *, case_ids: list[str] | None = None):
    """The Figure of `plot_expert_load` (not saved)."""
    if expert_load_df is None or expert_load_df.empty:
        return placeholder_figure("expert load: no MoE routing counts")
    panels = distinct_routings(expert_load_df, case_ids)
    fig, axes = new_figure(9.0, 2.8 * len(panels), len(panels), 1)
    for ax, (case, same) in zip(axes, panels):
        sub = expert_load_df[expert_load_df["case_id"] == case].sort_values("expert")
        tokens = sub["tokens"].to_numpy(dtype=float)
        mean = tokens.mean() if len(tokens) else 0.0
        ax.bar(sub["expert"], tokens, width=0.85, color=OKABE_ITO["blue"])
        ax.axhline(mean, color=OKABE_ITO["vermillion"], linewidth=1.5, linestyle="--",
                   label=f"uniform expectation ({mean:,.1f} tokens)")
        imbalance = tokens.max() / mean if mean > 0 else float("nan")
        style_axes(ax, title=f"{_case_label(case, same)}\n{len(tokens)} experts, {tokens.sum():,.0f} routed tokens, "
                             f"max/mean load {imbalance:.2f}",
                   xlabel="expert id", ylabel="routed tokens (count)")
        ax.set_ylim(0, max(tokens.max(initial=0.0), mean) * 1.3 + 1)
        ax.legend(loc="upper right", fontsize=FONT_SIZE - 1)
        ax.grid(False, axis="x")
    fig.suptitle("MoE routing: tokens per expert (the busiest expert sets the step time)", fontsize=FONT_SIZE + 2)
    return fig
