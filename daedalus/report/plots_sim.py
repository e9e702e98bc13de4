"""Figures of simulator frames: KV memory vs context, roofline per hardware, per-op breakdown,
hardware comparison. Inputs are tidy DataFrames with raw SI numbers (`simulators.predict`);
units are converted here, at display, with the constants of `simulators.units`.
Each function writes `<name>.png` and `<name>.svg` into `out_dir` and returns both paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile
from simulators.roofline import resolve_peak
from simulators.units import GB, GFLOP, MS, TFLOP

from .plot_style import (
    ATTENTION_COLORS,
    BOUND_COLORS,
    FONT_SIZE,
    MARKERS,
    PLAIN_FORMATTER,
    SERIES_COLORS,
    SI_FORMATTER,
    TOKENS_FORMATTER,
    family_color,
    fmt_bandwidth,
    fmt_sig,
    new_figure,
    ordered_families,
    placeholder_figure,
    save_figure,
    si_number,
    style_axes,
    tokens_label,
)

_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
BOUND_HATCH = {"memory": "", "compute": "///"}  # the bound reads without colour too
SAME_KV_REL = 1e-6  # equal KV bytes per token: the two curves coincide exactly
NEAR_KV_REL = 0.05  # within 5 %: indistinguishable at the scale of a log plot over 3 decades
_LABEL_GAP = 0.04  # least vertical gap between capacity labels on one side, as a share of the log y range


def _capacity_lines(ax, capacities: Mapping[str, float], x_range: tuple[float, float],
                    y_lim: tuple[float, float]) -> None:
    """Dashed line per capacity; labels alternate between the right and left ends and are pushed
    apart (in log space) on each side so close capacities never overlap."""
    span = np.log10(y_lim[1]) - np.log10(y_lim[0])
    last = {"right": -np.inf, "left": -np.inf}
    for i, (label, cap_bytes) in enumerate(sorted(capacities.items(), key=lambda kv: kv[1])):
        y = cap_bytes / GB
        side = "right" if i % 2 == 0 else "left"
        ax.axhline(y, color="#555555", linestyle=(0, (4, 3)), linewidth=1)
        pos = max(np.log10(y) + 0.008 * span, last[side] + _LABEL_GAP * span)
        last[side] = pos
        x = x_range[1] if side == "right" else x_range[0]
        ax.text(x, 10**pos, label, ha=side, va="bottom", fontsize=FONT_SIZE - 1.5, color="#333333",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.3})


def _kv_panel(ax, df: pd.DataFrame, capacities: Mapping[str, float], title: str,
              y_lim: tuple[float, float]) -> None:
    """One line per model: colour = attention type, marker and dash = the model. Curves that
    coincide (equal KV bytes per token, e.g. DeepSeek-V3 and Kimi-K2) or nearly do (V2 and V3)
    get markers at staggered points, and a coinciding one says so in the legend."""
    models = list(dict.fromkeys(df["model"]))
    per_token = {m: float(df.loc[df["model"] == m, "kv_bytes_per_token"].iloc[0]) for m in models}

    def close(a: str, b: str, rel: float) -> bool:
        return abs(per_token[a] - per_token[b]) <= rel * max(per_token[a], per_token[b])

    for i, model in enumerate(models):
        grp = df[df["model"] == model].sort_values("context")
        att = str(grp["attention"].iloc[0])
        same = next((m for m in models[:i] if close(m, model, SAME_KV_REL)), None)
        stagger = sum(close(m, model, NEAR_KV_REL) for m in models[:i])  # earlier curves this one overlaps
        label = f"{model} ({att.upper()}, {fmt_sig(per_token[model] / 1e3)} KB/token)"
        if same:
            label += f": same curve as {same}"
        ax.plot(grp["context"], grp["kv_bytes"] / GB, color=ATTENTION_COLORS.get(att, "#333333"),
                linestyle=_LINESTYLES[i % len(_LINESTYLES)], linewidth=1.3 if stagger else 2.0,
                marker=MARKERS[i % len(MARKERS)], markersize=5.5, markevery=(stagger % 3, 3),
                markerfacecolor="white" if stagger else None, markeredgewidth=1.2, zorder=3 + stagger,
                label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(*y_lim)
    _capacity_lines(ax, capacities, (df["context"].min(), df["context"].max()), y_lim)
    ax.xaxis.set_major_formatter(TOKENS_FORMATTER)
    ax.yaxis.set_major_formatter(PLAIN_FORMATTER)
    style_axes(ax, title=title, xlabel="context (tokens, k = 1024)", ylabel="KV cache per sequence (GB)")
    ax.legend(loc="lower right", fontsize=FONT_SIZE - 1.5, framealpha=0.9)


def kv_memory_figure(memory_df: pd.DataFrame | None, capacities: Mapping[str, float], *,
                     same_dims_df: pd.DataFrame | None = None, batch: int | None = None):
    """The Figure of `plot_kv_memory` (not saved)."""
    if memory_df is None or memory_df.empty:
        return placeholder_figure("KV memory: no memory table")
    batch = int(memory_df["batch"].min()) if batch is None else batch
    panels = [(memory_df[memory_df["batch"] == batch], f"Shipped models (batch {batch})")]
    if same_dims_df is not None and not same_dims_df.empty:
        panels.append((same_dims_df[same_dims_df["batch"] == batch],
                       f"Same dimensions, only the attention differs (batch {batch})"))
    kv_gb = pd.concat([df["kv_bytes"] for df, _ in panels]) / GB
    kv_gb = kv_gb[kv_gb > 0]
    top = max([kv_gb.max()] + [c / GB for c in capacities.values()])
    y_lim = (10 ** np.floor(np.log10(kv_gb.min())), 10 ** np.ceil(np.log10(top * 2)))
    fig, axes = new_figure(6.2 * len(panels), 4.8, 1, len(panels), sharey=True)
    for ax, (df, title) in zip(axes, panels):
        _kv_panel(ax, df, capacities, title, y_lim)
    fig.suptitle("KV cache vs context length (K/V or MLA latent bytes; weights not included)",
                 fontsize=FONT_SIZE + 2)
    return fig


def plot_kv_memory(memory_df: pd.DataFrame, capacities: Mapping[str, float], out_dir: str | Path,
                   name: str = "kv_memory", *, same_dims_df: pd.DataFrame | None = None,
                   batch: int | None = None) -> list[Path]:
    """KV-cache bytes vs context (log-log), one line per model coloured by attention type, with
    device capacities (label -> bytes) as horizontal lines. `memory_df` is
    `simulators.predict.memory_table` output; `same_dims_df` (same columns) adds a panel with one
    model's dimensions under MHA / GQA / MQA / MLA, so only the attention type differs."""
    return save_figure(kv_memory_figure(memory_df, capacities, same_dims_df=same_dims_df, batch=batch),
                       out_dir, name)


def _flop_scale(peak_max: float) -> tuple[float, str]:
    return (TFLOP, "TFLOP/s") if peak_max >= TFLOP else (GFLOP, "GFLOP/s")


def _used_dtypes(profile: HardwareProfile, dtypes) -> set[str]:
    """The dtypes the points actually compute in, after widening to what the device supports."""
    used: set[str] = set()
    for d in dtypes:
        try:
            used.add(resolve_peak(profile, str(d))[0])
        except (ConfigError, KeyError):
            continue
    return used


def _ceilings(profile: HardwareProfile) -> list[tuple[str, float, str]]:
    """(dtypes sharing a peak joined by '/', peak, status) in ascending peak order."""
    groups: dict[float, list[str]] = {}
    status: dict[float, str] = {}
    for d, src in profile.peak_flop_per_s.items():
        groups.setdefault(src.value, []).append(d)
        status[src.value] = src.status
    return [("/".join(ds), v, status[v]) for v, ds in sorted(groups.items())]


def _roof(ax, profile: HardwareProfile, used: set[str], x_lo: float, x_hi: float, y_bottom: float, div: float,
          unit: str) -> None:
    """Memory slope up to the highest ridge, one ceiling per distinct peak (estimates dashed)."""
    bw = profile.memory_bandwidth_bytes_per_s.value
    ceilings = _ceilings(profile)
    ridge_max = ceilings[-1][1] / bw
    ax.plot([x_lo, ridge_max], [x_lo * bw / div, ridge_max * bw / div], color="black", linewidth=2,
            linestyle="--" if profile.memory_bandwidth_bytes_per_s.status == "estimate" else "-")
    x_start = max(x_lo, y_bottom * div / bw)  # where the slope enters the visible area
    x_text = x_start * 10 ** (0.2 * np.log10(ridge_max / x_start))
    ax.text(x_text * 1.4, x_text * bw / div,
            f"memory {fmt_bandwidth(bw)}\n({profile.memory_bandwidth_bytes_per_s.status})",
            fontsize=FONT_SIZE - 1.5, va="top", ha="left")
    for label, peak, status in ceilings:
        in_use = bool(used & set(label.split("/")))
        ax.plot([peak / bw, x_hi], [peak / div] * 2, color="black" if in_use else "#888888",
                linestyle="--" if status == "estimate" else "-", linewidth=1.6 if in_use else 1.0)
        ax.text(x_hi / 1.15, peak / div * 1.04, f"{label} {fmt_sig(peak / div)} {unit} ({status})",
                ha="right", va="bottom", fontsize=FONT_SIZE - 1.5, color="black" if in_use else "#666666",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})


def _roofline_legends(ax, ops: pd.DataFrame, meas: pd.DataFrame) -> None:
    handles = [Line2D([], [], marker="o", linestyle="", color=family_color(f), label=f)
               for f in ordered_families(ops["family"].unique() if not ops.empty else [])]
    handles += [Line2D([], [], marker="D", linestyle="", color=family_color(f), markeredgecolor="black",
                       label=f"measured: {f}")
                for f in ordered_families(meas["family"].unique() if not meas.empty else [])]
    if handles:
        leg = ax.legend(handles=handles, title="family", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                        fontsize=FONT_SIZE - 1.5, title_fontsize=FONT_SIZE - 1)
        ax.add_artist(leg)
        leg.set_clip_on(False)  # add_artist clips to the axes, which would also drop it from the layout
    kinds = [("o", "predicted, decode", "none"), ("^", "predicted, prefill", "none")]
    kinds += [("D", "measured (this run)", "black")] if not meas.empty else []
    marks = [Line2D([], [], marker=m, linestyle="", color="#444444", markeredgecolor=e, label=lab)
             for m, lab, e in kinds]
    ax.legend(handles=marks, loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=FONT_SIZE - 1.5)


def plot_roofline(ops_df: pd.DataFrame | None, profile: HardwareProfile, out_dir: str | Path,
                  name: str = "roofline", *, measured_df: pd.DataFrame | None = None) -> list[Path]:
    """Roofline of one hardware profile: predicted ops (intensity vs flop / time_s) coloured by
    family, marker by phase; measured benchmark points (achieved_flop_per_s) overlaid as diamonds.
    Every peak of the profile is a ceiling (dtypes with equal peaks share one); those the points
    compute in are black, the others grey; estimated numbers are dashed."""
    return save_figure(roofline_figure(ops_df, profile, measured_df=measured_df), out_dir, name)


def roofline_figure(ops_df: pd.DataFrame | None, profile: HardwareProfile, *,
                    measured_df: pd.DataFrame | None = None):
    """The Figure of `plot_roofline` (not saved)."""
    ops = pd.DataFrame() if ops_df is None else ops_df
    if not ops.empty and "hardware" in ops:
        ops = ops[ops["hardware"] == profile.name]
    if not ops.empty:
        ops = ops[(ops["flop"] > 0) & (ops["bytes"] > 0) & (ops["time_s"] > 0)]
    meas = pd.DataFrame() if measured_df is None else measured_df
    if not meas.empty:
        ok = meas["status"].eq("ok") if "status" in meas else True
        meas = meas[ok & (meas["flop"] > 0) & (meas["bytes"] > 0) & (meas["median_s"] > 0)]
    dtypes = list(ops["compute_dtype"].unique()) if not ops.empty else []
    dtypes += list(meas["dtype"].unique()) if not meas.empty and "dtype" in meas else []
    used = _used_dtypes(profile, dtypes) or set(profile.peak_flop_per_s)
    peaks = [peak for _, peak, _ in _ceilings(profile)]
    div, unit = _flop_scale(peaks[-1])
    bw = profile.memory_bandwidth_bytes_per_s.value

    x_pts, y_pts = [np.asarray(peaks) / bw], [np.asarray(peaks)]
    if not ops.empty:
        x_pts.append(ops["flop"] / ops["bytes"])
        y_pts.append(ops["flop"] / ops["time_s"])
    if not meas.empty:
        achieved = meas["achieved_flop_per_s"] if "achieved_flop_per_s" in meas else meas["flop"] / meas["median_s"]
        x_pts.append(meas["flop"] / meas["bytes"])
        y_pts.append(achieved)
    x_all = np.concatenate([np.asarray(x, dtype=float) for x in x_pts])
    y_lo = np.concatenate([np.asarray(y, dtype=float) for y in y_pts]).min() / div / 5
    x_lo = 10 ** np.floor(np.log10(max(min(x_all.min(), peaks[0] / bw / 10, y_lo * div / bw), 1e-4)))
    x_hi = 10 ** np.ceil(np.log10(max(x_all.max(), peaks[-1] / bw * 10)))

    y_bottom = 10 ** np.floor(np.log10(y_lo))
    fig, (ax,) = new_figure(6.4, 4.4)
    _roof(ax, profile, used, x_lo, x_hi, y_bottom, div, unit)
    for phase, marker in (("decode", "o"), ("prefill", "^")):
        sub = ops[ops["phase"] == phase] if not ops.empty else ops
        if not sub.empty:
            ax.scatter(sub["flop"] / sub["bytes"], sub["flop"] / sub["time_s"] / div, marker=marker, s=22,
                       c=[family_color(f) for f in sub["family"]], alpha=0.75, linewidths=0)
    if not meas.empty:
        ax.scatter(meas["flop"] / meas["bytes"], achieved / div, marker="D", s=34, zorder=5,
                   c=[family_color(f) for f in meas["family"]], edgecolors="black", linewidths=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_bottom, peaks[-1] / div * 2.5)
    ax.xaxis.set_major_formatter(SI_FORMATTER)
    ax.yaxis.set_major_formatter(PLAIN_FORMATTER)
    style_axes(ax, title=f"Roofline: {profile.display_name} ({profile.name})",
               xlabel="arithmetic intensity (FLOP/byte)", ylabel=f"attained compute ({unit})")
    _roofline_legends(ax, ops, meas)
    if ops.empty and meas.empty:
        ax.text(0.5, 0.5, "no points to plot", transform=ax.transAxes, ha="center")
    return fig


def _fmt_ms(t_ms: float) -> str:
    return f"{fmt_sig(t_ms)} ms" if t_ms >= 0.01 else f"{fmt_sig(t_ms * 1e3)} µs"


def plot_op_breakdown(ops_df: pd.DataFrame, out_dir: str | Path, name: str = "op_breakdown", *,
                      model: str | None = None, hardware: str | None = None) -> list[Path]:
    """Per-op time of one step (horizontal bars, ms, colour = roofline bound), one panel per
    (phase, batch, context) case of `model` on `hardware` (default: the first in the frame)."""
    return save_figure(op_breakdown_figure(ops_df, model=model, hardware=hardware), out_dir, name)


def op_breakdown_figure(ops_df: pd.DataFrame | None, *, model: str | None = None, hardware: str | None = None):
    """The Figure of `plot_op_breakdown` (not saved)."""
    if ops_df is None or ops_df.empty:
        return placeholder_figure("op breakdown: no per-op rows")
    model = model or ops_df["model"].iloc[0]
    hardware = hardware or ops_df["hardware"].iloc[0]
    df = ops_df[(ops_df["model"] == model) & (ops_df["hardware"] == hardware)]
    if df.empty:
        return placeholder_figure(f"op breakdown: no rows for {model} on {hardware}")
    keys = ["phase", "batch", "query_len", "context"]
    cases = df[keys].drop_duplicates().sort_values(["phase", "batch", "context"], ascending=[True, True, True])
    cases = cases.iloc[np.argsort(cases["phase"].ne("decode").to_numpy(), kind="stable")]
    n_ops = df.groupby(keys).size().max()
    fig, axes = new_figure(6.0 * len(cases), 1.2 + 0.32 * n_ops, 1, len(cases))
    for ax, case in zip(axes, cases.itertuples(index=False)):
        sub = df[(df["phase"] == case.phase) & (df["batch"] == case.batch) & (df["context"] == case.context)
                 & (df["query_len"] == case.query_len)]
        t_ms = sub["time_s"].to_numpy() / MS
        total = t_ms.sum()
        y = np.arange(len(sub))[::-1]
        ax.barh(y, t_ms, color=[BOUND_COLORS.get(b, "#999999") for b in sub["bound"]], height=0.7,
                hatch=[BOUND_HATCH.get(b, "") for b in sub["bound"]], edgecolor="white", linewidth=0)
        ax.set_yticks(y, [f"{o} ×{n}" if n > 1 else str(o) for o, n in zip(sub["op"], sub["n_layers"])])
        for yi, t in zip(y, t_ms):
            share = 100 * t / total
            ax.text(t, yi, f" {_fmt_ms(t)} ({share:.0f}%)" if share >= 1 else f" {_fmt_ms(t)} (<1%)",
                    va="center", fontsize=FONT_SIZE - 2)
        ax.set_xlim(0, t_ms.max() * 1.35)
        mem_share = 100 * sub.loc[sub["bound"] == "memory", "time_s"].sum() / sub["time_s"].sum()
        style_axes(ax, title=f"{case.phase}: batch {case.batch}, context {tokens_label(case.context)}, "
                             f"step {fmt_sig(total)} ms ({mem_share:.0f}% memory-bound)",
                   xlabel="time per step, all layers (ms)")
        ax.grid(False, axis="y")
    axes[0].legend(handles=[Patch(facecolor=c, hatch=BOUND_HATCH[b], edgecolor="white", label=f"{b}-bound")
                            for b, c in BOUND_COLORS.items()],
                   loc="lower right", fontsize=FONT_SIZE - 1)
    fig.suptitle(f"Per-op roofline time: {model} on {hardware} (×n = layers)", fontsize=FONT_SIZE + 2)
    return fig


def plot_hardware_comparison(totals_df: pd.DataFrame, out_dir: str | Path, name: str = "hardware_comparison",
                             *, model: str | None = None, phase: str = "decode") -> list[Path]:
    """Decode step time (= time per output token of each sequence) and tokens/s per device for one
    model across hardware profiles, bars per batch size (log y). Tick labels carry the devices
    needed to hold weights + KV (the single-device roofline ignores capacity)."""
    return save_figure(hardware_comparison_figure(totals_df, model=model, phase=phase), out_dir, name)


def hardware_comparison_figure(totals_df: pd.DataFrame | None, *, model: str | None = None, phase: str = "decode"):
    """The Figure of `plot_hardware_comparison` (not saved)."""
    if totals_df is None or totals_df.empty:
        return placeholder_figure("hardware comparison: no totals")
    model = model or totals_df["model"].iloc[0]
    df = totals_df[(totals_df["model"] == model) & (totals_df["phase"] == phase)]
    if df.empty:
        return placeholder_figure(f"hardware comparison: no {phase} rows for {model}")
    context = int(df["context"].min())
    df = df[df["context"] == context]
    hw = list(dict.fromkeys(df["hardware"]))
    batches = sorted(df["batch"].unique())
    width = 0.8 / len(batches)
    devices = df.groupby("hardware")["devices_for_memory"].max()
    labels = [f"{h}\n≥{devices[h]} dev." for h in hw]
    fig, axes = new_figure(min(12.0, 3.0 + 1.3 * len(hw)), 4.4, 1, 2)
    hatches = ("", "///", "...", "xx", "\\\\", "++")
    panels = ((axes[0], "time_s", 1 / MS, "time per output token (ms, = decode step)"),
              (axes[1], "tokens_per_s", 1.0, "tokens/s per device (all sequences)"))
    for ax, col, scale, ylabel in panels:
        for i, b in enumerate(batches):
            sub = df[df["batch"] == b].set_index("hardware").reindex(hw)
            x = np.arange(len(hw)) + (i - (len(batches) - 1) / 2) * width
            vals = sub[col].to_numpy() * scale
            ax.bar(x, vals, width=width * 0.95, color=SERIES_COLORS[i % len(SERIES_COLORS)],
                   hatch=hatches[i % len(hatches)], edgecolor="white", linewidth=0, label=f"batch {b}")
            for xi, v in zip(x, vals):
                ax.text(xi, v * 1.08, fmt_sig(v, 2) if v < 1e4 else si_number(v), ha="center", va="bottom",
                        fontsize=FONT_SIZE - 3, rotation=90 if len(hw) * len(batches) > 10 else 0)
        ax.set_yscale("log")
        ax.set_ylim(top=np.nanmax(df[col].to_numpy() * scale) * 15)  # room for the value labels
        ax.yaxis.set_major_formatter(SI_FORMATTER)
        ax.set_xticks(np.arange(len(hw)), labels, fontsize=FONT_SIZE - 1.5)
        style_axes(ax, ylabel=ylabel, xlabel="hardware (≥N dev. = devices to hold weights + KV)")
        ax.grid(False, axis="x")
    axes[0].legend(fontsize=FONT_SIZE - 1)
    fig.suptitle(f"{model} {phase} at context {tokens_label(context)}: single-device roofline "
                 "(left: lower is better, right: higher is better)", fontsize=FONT_SIZE + 1.5)
    return fig
