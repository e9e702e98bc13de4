"""One self-contained HTML report per run: `write_report(results/<run-id>)` -> report.html.

Reads the run folder (every file optional: a missing one turns its section into "not available"),
including the predict step's predicted.csv / ops.csv / memory.csv (`frames.py`; simulated once with the
default models and hardware when absent), draws every figure into
`<run>/figures/` (PNG + SVG) and writes `<run>/report.html` atomically, with the PNGs embedded as
base64 data URIs and inline CSS, so the file stands alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile, resolve_profile
from simulators.model_config import ModelConfig, resolve_model
from simulators.roofline import resolve_peak, ridge_point_flop_per_byte
from simulators.units import GB, GFLOP

from . import plots
from .briefing import briefing
from .report_claims import claims_section
from bench.run_folder import CUSTOM_REPORT, FIGURES, REPORT, write_atomic

from .frames import (
    BREAKDOWN_DECODE_BATCH,
    BREAKDOWN_PREFILL_BATCH,
    COMPARISON_BATCHES,
    CONTEXT,
    SimFrames,
    read_frames,
    simulate_frames,
    write_frames,
)
from .report_data import RunInputs, load_run
from .report_plan import plan_section
from .report_html import badge, esc, figure, fmt_num, fmt_quantity, not_available, page, table

DEFAULT_MODELS = ("deepseek-v3", "llama-3.1-405b", "qwen2.5-72b", "deepseek-v2", "deepseek-llm-67b")
DEFAULT_HARDWARE = ("h100-sxm", "h200", "b200", "mi300x", "ascend-910c", "host-cpu")
HOST_VENDOR = "host"
ROOFLINE_INTRO = (
    "One chart per hardware profile: every op of every simulated model (batch 1-256, context 4k, speed-of-light "
    "mode) at its arithmetic intensity; black ceilings are the dtypes the ops run in, grey the device's other "
    "peaks, dashed = estimated number. Look for: decode ops pinned to the memory slope at a few FLOP/byte whatever "
    "the device's FLOP/s, prefill ops under a compute ceiling, and how far the measured host kernels (diamonds) "
    "land below the roof.")
MODE_LABELS = {"speed_of_light": "speed of light", "calibrated": "calibrated"}


def _resolve_models(names: Sequence[str | ModelConfig]) -> list[ModelConfig]:
    return [n if isinstance(n, ModelConfig) else resolve_model(n) for n in names]


def _resolve_profiles(names: Sequence[str | HardwareProfile]) -> list[HardwareProfile]:
    return [n if isinstance(n, HardwareProfile) else resolve_profile(n) for n in names]


# ---------------------------------------------------------------- figures


def _kv_caption(frames: SimFrames) -> str:
    text = "KV-cache bytes of one sequence vs context, log-log; dashed lines are device memory capacities."
    sd = frames.same_dims
    if sd is not None and not sd.empty:
        per_token = sd.groupby("attention")["kv_bytes_per_token"].first()
        if {"mla", "mha"} <= set(per_token.index):
            text += (f" Look for: with identical dimensions MLA caches {per_token['mha'] / per_token['mla']:.0f}×"
                     f" fewer bytes than MHA and {per_token.get('gqa', float('nan')) / per_token['mla']:.1f}× fewer"
                     " than GQA-8 (MQA is smaller still, at a cost in quality); where a line crosses a capacity, one"
                     " sequence's cache alone fills the device.")
    return text


def _breakdown_caption(ops: pd.DataFrame | None) -> str:
    text = ("Roofline time of every op of one decode step and one prefill step, all layers, bar colour ="
            " the roof that binds.")
    if ops is not None and not ops.empty:
        parts = []
        for phase, grp in ops.groupby("phase", sort=False):
            top = grp.loc[grp["time_s"].idxmax()]
            parts.append(f"{top['op']} takes {100 * top['time_s'] / grp['time_s'].sum():.0f}% of {phase}")
        text += " Look for: the op that dominates (" + "; ".join(parts) + ") is where a faster kernel pays."
    return text


def _roofline_caption(ops: pd.DataFrame | None, hw: HardwareProfile, measured: pd.DataFrame | None) -> str:
    parts = []
    try:
        dtype, _ = resolve_peak(hw, "bf16")
        parts.append(f"Ridge at {fmt_num(ridge_point_flop_per_byte(hw, dtype))} FLOP/byte ({dtype}).")
    except ConfigError:
        pass
    if ops is not None and not ops.empty:
        mine = ops[(ops["hardware"] == hw.name) & (ops["flop"] > 0)]
        for phase, grp in mine.groupby("phase"):
            parts.append(f"{phase}: {100 * grp['bound'].eq('memory').mean():.0f}% of op points memory-bound.")
    if measured is not None:
        parts.append("Diamonds: this run's measured kernels.")
    return " ".join(parts)


def make_figures(inputs: RunInputs, frames: SimFrames, profiles: list[HardwareProfile], breakdown_model: str,
                 breakdown_hardware: str, fig_dir: Path) -> dict[str, Any]:
    """Every figure of the report -> {key: (title, caption, png) or a list of them (rooflines)}."""
    out: dict[str, Any] = {}
    capacities = {f"{h.name} {h.memory_bytes.value / GB:.0f} GB": h.memory_bytes.value
                  for h in profiles if h.vendor != HOST_VENDOR}
    png, _ = plots.plot_kv_memory(frames.memory, capacities, fig_dir, "kv_memory", same_dims_df=frames.same_dims)
    out["kv_memory"] = ("KV cache vs context", _kv_caption(frames), png)

    host = inputs.host_profile or next((h for h in profiles if h.vendor == HOST_VENDOR), None)
    roofs = []
    for hw in profiles:
        meas = inputs.measured if host is not None and hw.name == host.name else None
        png, _ = plots.plot_roofline(frames.roofline_ops, hw, fig_dir, f"roofline_{hw.name}", measured_df=meas)
        roofs.append((f"Roofline: {hw.name}", _roofline_caption(frames.roofline_ops, hw, meas), png))
    out["roofline"] = roofs

    png, _ = plots.plot_op_breakdown(frames.breakdown_ops, fig_dir, "op_breakdown", model=breakdown_model,
                                     hardware=breakdown_hardware)
    out["op_breakdown"] = (f"Per-op breakdown: {breakdown_model} on {breakdown_hardware}",
                           _breakdown_caption(frames.breakdown_ops), png)
    png, _ = plots.plot_hardware_comparison(frames.comparison, fig_dir, "hardware_comparison", model=breakdown_model)
    out["hardware_comparison"] = (
        f"Hardware comparison: {breakdown_model} decode",
        f"Single-device roofline at batch {' and '.join(map(str, COMPARISON_BATCHES))}, context 4k; tick labels give"
        " the devices needed just to hold weights + KV. Look for: decode time follows memory bandwidth, not FLOP/s.",
        png)
    if inputs.validation_cases is not None and not inputs.validation_cases.empty:
        png, _ = plots.plot_pred_vs_measured(inputs.validation_cases, fig_dir, "pred_vs_measured")
        out["pred_vs_measured"] = (
            "Predicted vs measured", "Each point is one measured kernel case; the grey band is ±25%. Look for: "
            "speed-of-light points below the line (an ideal roof is optimistic), calibrated points inside the band.",
            png)
    if inputs.expert_load is not None and not inputs.expert_load.empty:
        png, _ = plots.plot_expert_load(inputs.expert_load, fig_dir, "expert_load")
        out["expert_load"] = (
            "MoE expert load", "Routed tokens per expert in the MoE benchmark; red = uniform share. Look for: experts "
            "far above the line, since the busiest expert sets the step time (max/mean in each title).", png)
    return out


# ---------------------------------------------------------------- sections


def _summary(inputs: RunInputs, models: list[ModelConfig], profiles: list[HardwareProfile], breakdown: str) -> str:
    env = inputs.env or {}
    rows: list[tuple[str, str]] = [("Run", inputs.run_id), ("Measured at", inputs.measured_at())]
    device = " / ".join(str(env[k]) for k in ("device", "device_name") if env.get(k))
    rows.append(("Device", device or "not recorded"))
    for key, label in (("cpu", "CPU"), ("cores", "Cores"), ("threads", "Threads"), ("torch", "torch")):
        if env.get(key) is not None:
            rows.append((label, str(env[key])))
    git = env.get("git")
    if isinstance(git, dict) and git.get("commit"):
        rows.append(("Git commit", f"{git['commit']}{' (uncommitted changes)' if git.get('dirty') else ''}"))
    m = inputs.measured
    if m is not None:
        ok = m["status"].eq("ok")
        rows.append(("Measured cases", f"{int(ok.sum())} ok, {int((~ok).sum())} skipped; "
                                       f"{m['kernel'].nunique()} kernels in {m['family'].nunique()} families"))
    else:
        rows.append(("Measured cases", "measured.csv not available"))
    vs = _all_subset(inputs.validation_summary)
    if vs is not None:
        overall = vs[vs["family"] == "all"].sort_values(
            "mode", key=lambda m: m.map({k: i for i, k in enumerate(MODE_LABELS)}).fillna(len(MODE_LABELS)))
        text = "; ".join(f"{MODE_LABELS.get(r.mode, r.mode)}: MdAPE {r.mdape_pct:.1f}%, "
                         f"{r.within_25_pct:.0f}% within ±25% (n = {r.n})" for r in overall.itertuples())
        rows.append(("Validation", text or "no overall row"))
    if inputs.host_profile is not None:
        n_meas = sum(1 for r in inputs.host_profile.provenance() if r["status"] == "measured")
        rows.append(("Host profile", f"{inputs.host_profile.name} ({n_meas} measured numbers)"))
    rows.append(("Simulated models", ", ".join(x.name for x in models)))
    rows.append(("Simulated hardware", ", ".join(h.name for h in profiles)))
    rows.append(("Breakdown cases", f"{breakdown}: decode batch {BREAKDOWN_DECODE_BATCH}, prefill batch "
                                    f"{BREAKDOWN_PREFILL_BATCH}, context {CONTEXT:,}; speed-of-light mode"))
    body = table(["", ""], rows, css_class="summary", header_html="<tr><th>What</th><th>Value</th></tr>")
    problems = {**inputs.problems}
    if problems:
        body += "<p class=\"na\">" + "<br>".join(f"{esc(k)}: {esc(v)}" for k, v in problems.items()) + "</p>"
    return body


TARGET_OVERALL_PCT = 10.0  # calibrated median |error| over all scored cases
TARGET_FAMILY_PCT = 15.0  # ... and per family


def _all_subset(vs: pd.DataFrame | None) -> pd.DataFrame | None:
    if vs is None or "subset" not in vs.columns:
        return vs
    return vs[vs["subset"] == "all"].reset_index(drop=True)


def _targets(vs: pd.DataFrame, suspect: tuple[str, ...] = ()) -> str:
    """Pass / miss against the targets, and a warning when cases were timed under contention."""
    cal = vs[vs["mode"] == "calibrated"]
    if cal.empty:
        return ""
    overall = cal[cal["family"] == "all"]
    fams = cal[cal["family"] != "all"]
    parts = []
    if len(overall):
        o = float(overall["mdape_pct"].iloc[0])
        parts.append(f"overall calibrated median |error| {o:.1f}% "
                     f"({'meets' if o <= TARGET_OVERALL_PCT else 'misses'} the {TARGET_OVERALL_PCT:g}% target)")
    worse = fams[fams["mdape_pct"] > TARGET_FAMILY_PCT]
    parts.append(f"families above {TARGET_FAMILY_PCT:g}%: "
                 + (", ".join(f"{r.family} {r.mdape_pct:.1f}%" for r in worse.itertuples()) or "none"))
    html = "<p><b>Targets.</b> " + esc("; ".join(parts)) + ".</p>"
    if suspect:
        html += ("<p class=\"na\"><b>Model form.</b> Fitted efficiency above 1.1 for "
                 + esc(", ".join(suspect)) + ": the time model misses something there (cache reuse, fusion, "
                 "shape); those factors are not physical efficiencies.</p>")
    n_noisy = int(overall["n_noisy"].iloc[0]) if len(overall) and "n_noisy" in overall else 0
    if n_noisy:
        html += (f"<p class=\"na\"><b>Noise warning.</b> {n_noisy} scored case(s) were timed while other processes "
                 "used the CPU (flagged noisy after a second pass); the `quiet` rows of validation_summary.csv "
                 "leave them out.</p>")
    return html


def _validation(inputs: RunInputs) -> str:
    full = inputs.validation_summary
    vs = _all_subset(full)
    if vs is None or vs.empty:
        return not_available("validation_summary.csv")
    modes = [m for m in MODE_LABELS if m in set(vs["mode"])] + sorted(set(vs["mode"]) - set(MODE_LABELS))
    fams = ["all"] + sorted(set(vs["family"]) - {"all"})
    metrics = ["n", "MdAPE", "MAPE", "within ±25%", "bias"]
    head = ("<tr><th rowspan=\"2\">family</th>" + "".join(
        f"<th colspan=\"{len(metrics)}\">{esc(MODE_LABELS.get(m, m))}</th>" for m in modes) + "</tr><tr>"
            + "".join(f"<th>{esc(x)}</th>" for _ in modes for x in metrics) + "</tr>")
    idx = vs.set_index(["mode", "family"])
    rows, classes = [], []
    for fam in fams:
        row: list[str] = [fam]
        for mode in modes:
            if (mode, fam) not in idx.index:
                row += ["-"] * len(metrics)
                continue
            r = idx.loc[(mode, fam)]
            row += [fmt_num(r["n"]), f"{r['mdape_pct']:.1f}%", f"{r['mape_pct']:.1f}%", f"{r['within_25_pct']:.0f}%",
                    f"{r['bias']:.2f}"]
        rows.append(row)
        classes.append("row-all" if fam == "all" else "")
    numeric = [False] + [True] * len(metrics) * len(modes)
    cal = inputs.host_profile.calibration if inputs.host_profile is not None else None
    return (_targets(vs, cal.suspect_families if cal else ()) + table([], rows, numeric=numeric, row_classes=classes, header_html=head)
            + "<p class=\"muted\">MdAPE / MAPE: median / mean |predicted − measured| / measured. Bias: geometric "
              "mean of measured / predicted (above 1: the prediction is optimistic). Calibrated errors are "
              "leave-one-out (each case predicted by a fit made without it).</p>")


def _measured(inputs: RunInputs) -> str:
    m = inputs.measured
    if m is None or m.empty:
        return not_available("measured.csv")
    rows = []
    for fam, g in m.groupby("family"):
        ok = g[g["status"] == "ok"]
        ach_f = ok["achieved_flop_per_s"].median() / GFLOP if "achieved_flop_per_s" in ok else float("nan")
        ach_b = ok["achieved_bytes_per_s"].median() / GB if "achieved_bytes_per_s" in ok else float("nan")
        rows.append([fam, len(ok), len(g) - len(ok), g["kernel"].nunique(), fmt_num(ok["cv"].median()),
                     fmt_num(ok["cv"].max()), fmt_num(ok["median_s"].median() * 1e3), fmt_num(ach_f), fmt_num(ach_b)])
    out = table(["family", "cases ok", "skipped", "kernels", "median CV", "max CV", "median time (ms)",
                 "median GFLOP/s", "median GB/s"], rows, numeric=[False] + [True] * 8)
    skipped = m[m["status"] != "ok"]
    if not skipped.empty and "skip_reason" in skipped:
        reasons = skipped["skip_reason"].fillna("(no reason)").value_counts()
        out += "<h3>Skipped cases</h3>" + table(["reason", "cases"], list(reasons.items()), numeric=[False, True])
    return out


def _figures(figs: dict[str, Any]) -> str:
    parts = [figure(*figs["kv_memory"])]
    parts.append("<h3>Rooflines</h3><p>" + esc(ROOFLINE_INTRO) + "</p><div class=\"grid\">"
                 + "".join(figure(*f) for f in figs["roofline"]) + "</div>")
    parts += [figure(*figs["op_breakdown"]), figure(*figs["hardware_comparison"])]
    parts.append("<h3>Measured</h3>")
    parts.append(figure(*figs["pred_vs_measured"]) if "pred_vs_measured" in figs
                 else not_available("Predicted vs measured (validation_cases.csv)"))
    parts.append(figure(*figs["expert_load"]) if "expert_load" in figs
                 else not_available("MoE expert load (expert_load.csv)"))
    return "".join(parts)


def _flatten(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Nested env.json -> (dotted key, text); lists of scalars joined, lists of mappings indexed."""
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, (dict, list, tuple)) for v in value):
            return [row for i, v in enumerate(value) for row in _flatten(v, f"{key}.{i}")]
        return [(key, ", ".join(map(str, value)))]
    if value is None:
        return [(key, "-")]
    if key.endswith("_bytes") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(key, f"{fmt_num(value)} ({fmt_num(value / GB)} GB)")]
    return [(key, str(value))]


def _environment(inputs: RunInputs) -> str:
    if inputs.env is None:
        return not_available("env.json")
    return table(["key", "value"], _flatten(inputs.env))


def _calibration_row(h: HardwareProfile, fam: str) -> list[str]:
    cal = h.calibration
    return [h.name, cal.run_id, fam, fmt_num(cal.compute_efficiency.get(fam)), fmt_num(cal.memory_efficiency.get(fam)),
            fmt_num(cal.overlap_exponent), fmt_num(cal.overhead_s_per_op * 1e6)]


def _provenance(profiles: list[HardwareProfile]) -> str:
    rows, classes = [], []
    for hw in profiles:
        for r in hw.provenance():
            extra = [f"{k}: {r[k]}" for k in ("formula", "note") if r.get(k)]
            if r.get("range_low") is not None:
                extra.append(f"range: {fmt_quantity(r['field'], r['range_low'])} – "
                             f"{fmt_quantity(r['field'], r['range_high'])}")
            source = esc(r["source"]) + "".join(f'<span class="muted">{esc(x)}</span>' for x in extra)
            rows.append([hw.name, r["field"], fmt_quantity(r["field"], r["value"]), badge(r["status"]),
                         f'<div class="source">{source}</div>'])
            classes.append("estimate" if r["status"] == "estimate" else "")
    n_est = classes.count("estimate")
    intro = (f"<p>Every hardware number the simulation used, with its status and source. {n_est} of {len(rows)} are "
             "<b>estimates</b> (highlighted): secondary or inferred figures, to be treated with care.</p>")
    cal_rows = [_calibration_row(h, fam) for h in profiles if h.calibration is not None
                for fam in sorted({*h.calibration.compute_efficiency, *h.calibration.memory_efficiency})]
    if cal_rows:
        intro += "<h3>Calibration blocks</h3>" + table(
            ["hardware", "run", "family", "compute efficiency", "memory efficiency", "overlap exponent p",
             "dispatch per op (µs)"], cal_rows, numeric=[False, False, False, True, True, True, True])
    return intro + "<h3>Sourced numbers</h3>" + table(
        ["hardware", "field", "value", "status", "source"], rows, numeric=[False, False, True, False, False],
        row_classes=classes, raw_columns=(3, 4))


# ---------------------------------------------------------------- entry point


def _resolve_known(names: Sequence[str], resolve, extra: Sequence = ()) -> list:
    """Configs of the names a predict step recorded (the run's own profile is passed in `extra`)."""
    known = {x.name: x for x in extra}
    out = []
    for n in names:
        try:
            out.append(known[n] if n in known else resolve(n))
        except ConfigError:
            continue
    return out


def write_report(run_dir: str | Path, *, models: Sequence[str | ModelConfig] | None = None,
                 hardware: Sequence[str | HardwareProfile] | None = None,
                 breakdown_model: str | ModelConfig | None = None,
                 breakdown_hardware: str | HardwareProfile | None = None,
                 out_dir: str | Path | None = None) -> Path:
    """Build `<out>/figures/*` and `<out>/report.html`; returns the report's path. `out` is the run
    folder for the run's own report (predictions from the run's predict files). A chosen selection
    of models / hardware never overwrites the run's own report or predict files: it is predicted
    and written into `out_dir` (default `<run_dir>/custom_report/`)."""
    inputs = load_run(run_dir)
    custom = any(x is not None for x in (models, hardware, breakdown_model, breakdown_hardware))
    out = Path(out_dir) if out_dir is not None else (inputs.run_dir / CUSTOM_REPORT if custom else inputs.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = None if custom else read_frames(inputs.run_dir)
    if frames is None:
        frames = simulate_frames(inputs.run_dir, models or DEFAULT_MODELS, hardware or DEFAULT_HARDWARE,
                                 breakdown_model or "deepseek-v3", breakdown_hardware or "h100-sxm")
        write_frames(out, frames)
    host = [inputs.host_profile] if inputs.host_profile is not None else []
    known = [*frames.configs, *host]
    model_cfgs = _resolve_known(frames.models, resolve_model, [c for c in known if isinstance(c, ModelConfig)])
    hw_known = [c for c in known if isinstance(c, HardwareProfile)]
    profiles = _resolve_known(frames.hardware, resolve_profile, hw_known)
    used = profiles + _resolve_known([frames.breakdown_hardware], resolve_profile, hw_known)
    used = list({h.name: h for h in used}.values())
    inputs.problems.update(frames.problems)
    figs = make_figures(inputs, frames, profiles, frames.breakdown_model, frames.breakdown_hardware,
                        out / FIGURES)
    plan_model = next(iter(_resolve_known([frames.breakdown_model], resolve_model) + model_cfgs), None)
    sections = [
        ("briefing", "Briefing", briefing(inputs, frames, used)),
        ("summary", "Summary", _summary(inputs, model_cfgs, profiles, frames.breakdown_model)),
        ("validation", "Validation errors", _validation(inputs)),
        ("measured", "Measured cases", _measured(inputs)),
        ("figures", "Figures", _figures(figs)),
        ("planning", "Planning: what to buy", plan_section(plan_model, profiles, out / FIGURES)),
        ("environment", "Environment", _environment(inputs)),
        ("provenance", "Hardware provenance", _provenance(used)),
        ("claims", "Claims checked", claims_section()),
    ]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html_text = page(f"Daedalus run report: {inputs.run_id}", sections,
                     subtitle=f"generated {generated} by `daedalus report`; figures as PNG and SVG in figures/")
    return write_atomic(out / REPORT, html_text)
