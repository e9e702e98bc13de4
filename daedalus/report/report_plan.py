"""The report's planning section: what to buy, per hardware profile, answered by the planner itself
(`simulators.plan.plan`, the call behind `daedalus plan`): the chosen prefill + decode deployment with
its throughput, latency, cost and bottleneck, why that layout, the step-time breakdown (compute-bound
ops, memory-bound ops, straggler excess, exposed communication) and the decode Pareto front.

Nothing here computes a time or a count: every number shown is a column of the plan table, formatted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile
from simulators.model_config import ModelConfig
from simulators.plan import PlanOptions, PlanResult, Workload, plan

from .plot_style import save_figure
from .report_html import esc, figure, fmt_num, is_missing, not_available, table

HOST_VENDOR = "host"
# The README's planning example (`daedalus plan ... --input-len 4096 --output-len 1024 --ttft-ms 2000
# --tpot-ms 50 --request-rate 100`), with the planner's default options.
PLAN_WORKLOAD = Workload(input_len=4096, output_len=1024, ttft_s=2.0, tpot_s=0.050, request_rate_per_s=100.0)
PLAN_OPTIONS = PlanOptions()  # achievable rates, no overlap, uniform routing
PHASES = ("decode", "prefill")
BREAKDOWN_PARTS = (("compute_bound", "compute-bound ops"), ("memory_bound", "memory-bound ops"),
                   ("straggler", "straggler excess"), ("exposed_comm", "exposed communication"))
MS = 1e-3


def plan_command(model: ModelConfig, profiles: Sequence[HardwareProfile]) -> str:
    """The `daedalus plan` command line that prints the same answer."""
    wl = PLAN_WORKLOAD
    hw = " ".join(f"--hardware {h.name}" for h in profiles)
    return (f"daedalus plan --model {model.name} {hw} --input-len {wl.input_len} --output-len {wl.output_len} "
            f"--ttft-ms {wl.ttft_s / MS:g} --tpot-ms {wl.tpot_s / MS:g} --request-rate {wl.request_rate_per_s:g}")


def accelerators(profiles: Sequence[HardwareProfile]) -> list[HardwareProfile]:
    return [h for h in profiles if h.vendor != HOST_VENDOR]


def plan_result(model: ModelConfig, profiles: Sequence[HardwareProfile]) -> PlanResult:
    """The plan the section shows: the README example's workload on the report's accelerators."""
    return plan(model, accelerators(profiles), PLAN_WORKLOAD, PLAN_OPTIONS)


def _ms(v) -> str:
    return "-" if is_missing(v) or pd.isna(v) else fmt_num(v / MS)


def _int(v) -> str:
    return "-" if pd.isna(v) else fmt_num(int(v))


def _layout(r: pd.Series, prefix: str = "") -> str:
    if pd.isna(r[f"{prefix}tp"]):
        return "-"
    return (f"{_int(r[f'{prefix}devices'] if prefix else r['decode_devices'])} devices: tp{_int(r[f'{prefix}tp'])} "
            f"dp{_int(r[f'{prefix}dp'])} ep{_int(r[f'{prefix}ep'])} pp{_int(r[f'{prefix}pp'])}")


def _answer_table(t: pd.DataFrame) -> str:
    def units(r: pd.Series, phase: str) -> str:
        return "" if pd.isna(r[f"{phase}_units"]) else f"{_int(r[f'{phase}_units'])} x "

    rows = []
    for _, r in t.iterrows():
        rows.append([_int(r["rank"]), r["hardware"], _int(r["devices"]),
                     units(r, "decode") + _layout(r), units(r, "prefill") + _layout(r, "prefill_"),
                     fmt_num(r["batch_per_device"]), fmt_num(r["decode_tokens_per_s_per_device"]),
                     fmt_num(r["prefill_tokens_per_s_per_device"]), _ms(r["ttft_s"]), _ms(r["tpot_s"]),
                     r["bottleneck"] or "-", fmt_num(r["usd_per_mtok_output"]), r["reason"] or ""])
    return table(["rank", "hardware", "devices (prefill + decode)", "decode unit", "prefill unit",
                  "decode batch per device", "decode tokens/s per device", "prefill tokens/s per device",
                  "TTFT (ms)", "TPOT (ms)", "decode bottleneck", "USD / Mtok output", "why not"], rows,
                 numeric=[True, False, True, False, False, True, True, True, True, True, False, True, False],
                 css_class="plan-answer")


def _breakdown_table(t: pd.DataFrame) -> str:
    rows = []
    for _, r in t[t["feasible"].astype(bool)].iterrows():
        for phase in PHASES:
            rows.append([r["hardware"], phase, _ms(r[f"{phase}_step_s"])]
                        + [_ms(r[f"{phase}_{key}_s"]) for key, _ in BREAKDOWN_PARTS] + [r[f"{phase}_why"]])
    parts = [f"{label} (ms)" for _, label in BREAKDOWN_PARTS]
    header = ["hardware", "phase", "step (ms)", *parts, "why this layout"]
    return table(header, rows, numeric=[False, False] + [True] * (1 + len(BREAKDOWN_PARTS)) + [False],
                 css_class="plan-breakdown")


def _assumed(t: pd.DataFrame) -> str:
    rows = [[r["hardware"], (r["assumptions"] or "none").replace(",", ", ")] for _, r in t.iterrows()]
    return table(["hardware", "assumed (default derates and latencies, not published for the device)"], rows)


def plan_section(model: ModelConfig | None, profiles: Sequence[HardwareProfile], fig_dir: Path) -> str:
    """The section's HTML; the Pareto figure goes to `fig_dir/plan_pareto.png / .svg`."""
    accel = accelerators(profiles)
    if model is None or not accel:
        return not_available("Planning (no simulated model, or no accelerator among the simulated hardware)")
    wl, opt = PLAN_WORKLOAD, PLAN_OPTIONS
    intro = (f"<p>What to buy for <b>{esc(model.name)}</b>: {wl.input_len:,} tokens in, {wl.output_len:,} out, "
             f"TTFT ≤ {wl.ttft_s / MS:g} ms, TPOT ≤ {wl.tpot_s / MS:g} ms, {wl.request_rate_per_s:g} requests/s; "
             f"disaggregated prefill and decode fleets; mode <b>{esc(opt.mode.replace('_', ' '))}</b> (the rates "
             f"published kernels reach: the profiles' <code>achievable:</code> blocks), overlap "
             f"<b>{esc(opt.overlap)}</b>, routing {esc(opt.routing_model.kind)}. The same answer on the console: "
             f"<code>{esc(plan_command(model, accel))}</code>. Published deployments (DeepSeek day-6 and profile "
             "data, SGLang on 96 H100) check this mode in <code>tests/test_deployments.py</code>; they never set a "
             "rate.</p>")
    try:
        result = plan_result(model, accel)
    except ConfigError as exc:
        return intro + f'<p class="na">{esc(exc)}</p>'
    t = result.table
    from .plots_plan import pareto_figure

    fig = pareto_figure(result.pareto, chosen=t, tpot_target_s=wl.tpot_s,
                        title=f"{model.name}: decode Pareto front ({opt.mode.replace('_', ' ')})")
    png, _ = save_figure(fig, fig_dir, "plan_pareto")
    return (intro + "<h3>The answer per hardware</h3>" + _answer_table(t)
            + "<p class=\"muted\">Ranked by $ per million output tokens (the prefill and the decode fleet "
              "together); profiles without a price come last. Units: how many copies of the unit the request "
              "rate needs.</p>"
            + "<h3>Step-time breakdown</h3><p>The four parts add up to the step: compute-bound and memory-bound "
              "ops of the mean expert-parallel rank, the busiest rank's excess over it (straggler), and the "
              "communication not hidden behind compute (all of it with overlap none).</p>"
            + _breakdown_table(t) + "<h3>Assumed rates</h3>" + _assumed(t)
            + figure("Decode Pareto front", "Tokens/s per device against tokens/s per user for every layout and "
                     "batch that fits; circles: the chosen decode deployments; dashed: the TPOT target. Look for: "
                     "how much per-device throughput a looser TPOT buys.", png))
