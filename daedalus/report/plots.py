"""The figures of a run, in one namespace. Every function takes tidy DataFrames of raw SI numbers,
an output folder and a base name, writes `<name>.png` and `<name>.svg`, and returns [png, svg].

Simulator frames (`bench/plots_sim.py`): plot_kv_memory, plot_roofline, plot_op_breakdown,
plot_hardware_comparison. Measured frames (`bench/plots_measured.py`): plot_pred_vs_measured,
plot_expert_load. Shared styling and the save step: `bench/plot_style.py`.
"""

from __future__ import annotations

from .plots_measured import plot_expert_load, plot_pred_vs_measured
from .plots_sim import plot_hardware_comparison, plot_kv_memory, plot_op_breakdown, plot_roofline

__all__ = [
    "plot_expert_load",
    "plot_hardware_comparison",
    "plot_kv_memory",
    "plot_op_breakdown",
    "plot_pred_vs_measured",
    "plot_roofline",
]
