"""Figure of the host balancing measurement (bench/balancing.py): MaxVio per step of the real router
and of the simulated one, without balancing and with DeepSeek-V3's bias rule. Input: the tidy
`balancing.csv` frame (step, policy, source, max_violation); writes `<name>.png` and `.svg`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .plot_style import SERIES_COLORS, new_figure, save_figure, style_axes

POLICY_LABEL = {"none": "no balancing", "aux-free": "aux-loss-free bias (V3 rule)"}
SOURCE_STYLE = {"host": {"lw": 2.0, "ls": "-"}, "simulated": {"lw": 1.5, "ls": "--"}}


def balancing_figure(trajectory: pd.DataFrame, title: str = ""):
    fig, (ax,) = new_figure(7.0, 4.0)
    for i, (policy, label) in enumerate(POLICY_LABEL.items()):
        for source, style in SOURCE_STYLE.items():
            g = trajectory[(trajectory["policy"] == policy) & (trajectory["source"] == source)].sort_values("step")
            if g.empty:
                continue
            ax.plot(g["step"], g["max_violation"], color=SERIES_COLORS[i],
                    label=f"{label}: {'real router (measured here)' if source == 'host' else 'simulated'}", **style)
    style_axes(ax, title=title or "Expert load balance over steps", xlabel="step",
               ylabel="MaxVio = (max load - mean) / mean")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    return fig


def plot_balancing(trajectory: pd.DataFrame, out_dir: str | Path, name: str = "balancing", title: str = "") -> list[Path]:
    return save_figure(balancing_figure(trajectory, title), out_dir, name)
