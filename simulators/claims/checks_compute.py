"""Claim checks about compute: parameter counts, training FLOPs per token, MoE granularity, decode
throughput (per device and per node), multi-token prediction, and one model on two devices.

Every number comes from the simulator (`params.count_params`, `model_cost.step_ops`,
`predict.simulate`, `sizing.evaluate`); nothing here re-derives a cost.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..comm import Fabric, ep_time_s
from ..hardware import HardwareProfile, resolve_profile
from ..model_cost import step_ops
from ..params import count_params
from ..parallel import Layout
from ..precision import Precision
from ..predict import simulate
from ..provenance import Sourced
from ..sizing import PlanOptions, Workload, batch_grid, evaluate
from .outcome import Outcome, need_model

TRAINING_PASSES = 3  # forward + backward (activation and weight gradients: 2x forward)
SECONDS_PER_HOUR = 3600.0


def params_total(model: str) -> Outcome:
    m = need_model(model)
    return Outcome(float(count_params(m).total), f"{m.name}: recount incl. embedding and head")


def params_active(model: str) -> Outcome:
    m = need_model(model)
    return Outcome(float(count_params(m).active), f"{m.name}: recount incl. embedding and head")


def activated_share(model: str) -> Outcome:
    pc = count_params(need_model(model))
    return Outcome(pc.active / pc.total, f"{model}: activated / total parameters")


def forward_flop_per_token(model: str, seq: int) -> float:
    """Forward FLOPs per token of one training sequence of `seq` tokens: every op of a step with
    S = L = seq, logits for every token, MLA up-projected (naive) as in training."""
    m = need_model(model)
    p = Precision.of("bf16")
    # phase "decode" computes logits for all S tokens, as training does (prefill: last token only)
    ops = step_ops(m, 1, seq, seq, p, phase="decode", mla_mode="naive")
    return sum(float(np.sum(o.flop)) * o.n_layers for o in ops) / seq


def training_flop_per_token(model: str, seq: int = 4096) -> Outcome:
    f = TRAINING_PASSES * forward_flop_per_token(model, seq)
    return Outcome(f, f"{model}: {TRAINING_PASSES} x forward FLOPs per token at sequence {seq:,}")


def training_flop_saving(model: str, baseline: str, seq: int = 4096) -> Outcome:
    """1 - training FLOPs per token of model / baseline: what the saving would be at equal utilisation."""
    r = forward_flop_per_token(model, seq) / forward_flop_per_token(baseline, seq)
    return Outcome(1.0 - r, f"{model} vs {baseline}, FLOPs per token at sequence {seq:,}, equal utilisation assumed")


def training_utilisation(model: str, tokens: float, gpu_hours: float, hardware: str, dtype: str,
                         seq: int = 4096) -> Outcome:
    """Share of the device peak the published GPU hours imply: FLOPs of all tokens / (hours x peak)."""
    hw = resolve_profile(hardware)
    peak = hw.peak(dtype)
    flop = TRAINING_PASSES * forward_flop_per_token(model, seq) * tokens
    u = flop / (gpu_hours * SECONDS_PER_HOUR * peak)
    return Outcome(u, f"{flop:.3g} FLOP over {gpu_hours / 1e6:.3f}M GPU hours at the {hw.name} {dtype} peak "
                      f"{peak / 1e12:.0f} TFLOP/s")


def expert_width_share(model: str) -> Outcome:
    m = need_model(model)
    return Outcome(m.moe_intermediate_size / m.intermediate_size,
                   f"{m.name}: {m.n_routed_experts} routed experts of width {m.moe_intermediate_size} vs dense FFN "
                   f"width {m.intermediate_size}")


def routed_experts_per_token(model: str) -> Outcome:
    m = need_model(model)
    return Outcome(float(m.num_experts_per_tok), f"{m.name}: top-{m.num_experts_per_tok} of {m.n_routed_experts} "
                                                 f"routed (+{m.n_shared_experts} shared), {m.scoring_func} scores")


def shared_experts(model: str) -> Outcome:
    m = need_model(model)
    return Outcome(float(m.n_shared_experts), f"{m.name}: {m.n_shared_experts} shared + {m.n_routed_experts} routed")


def decode_memory_bound_share(model: str, hardware: str, batch: int, context: int) -> Outcome:
    """Share of one decode step's roofline time spent in memory-bound ops."""
    m = need_model(model)
    ops = simulate([m], [resolve_profile(hardware)], batches=(batch,), contexts=(context,)).ops
    share = ops.loc[ops["bound"] == "memory", "time_s"].sum() / ops["time_s"].sum()
    return Outcome(float(share), f"{m.name} on {hardware}, decode batch {batch}, context {context:,}, speed of light")


def _max_node_tokens_per_s(m, p: Precision, hw: HardwareProfile, layout: Layout, wl: Workload) -> float:
    """Largest decode throughput of one layout over the batch grid among the batches that fit."""
    cand = pd.DataFrame([{"devices": layout.devices, "tp": layout.tp, "dp": layout.dp, "pp": layout.pp,
                          "ep": layout.ep, "batch": float(b)} for b in batch_grid(4096)])
    df = evaluate(m, p, hw, Fabric.from_profile(hw), cand, "decode", wl, PlanOptions())
    fit = df[df["fits"]]
    return float((fit["tokens_per_s_per_device"] * fit["devices"]).max()) if len(fit) else float("nan")


def max_generation_throughput_ratio(model: str, baseline: str, hardware: str, model_precision: list[str],
                                    baseline_precision: list[str], model_layout: dict, baseline_layout: dict,
                                    workloads: list[list[int]]) -> Outcome:
    """Max decode tokens/s of model / baseline on one node, over workloads the source does not state:
    a (low, high) range."""
    hw = resolve_profile(hardware)
    m, b = need_model(model), need_model(baseline)
    pm, pb = Precision.of(*model_precision), Precision.of(*baseline_precision)
    ratios = []
    for inp, out in workloads:
        wl = Workload(inp, out)
        ratios.append(_max_node_tokens_per_s(m, pm, hw, Layout(**model_layout), wl)
                      / _max_node_tokens_per_s(b, pb, hw, Layout(**baseline_layout), wl))
    return Outcome((min(ratios), max(ratios)),
                   f"{hw.name} node, speed of light; {model} {'/'.join(model_precision)} {model_layout}, {baseline} "
                   f"{'/'.join(baseline_precision)} {baseline_layout}; in/out {workloads}")


def mtp_speedup(model: str, hardware: str, acceptance: list[float], batch: int, context: int) -> Outcome:
    """Decode tokens/s with one MTP draft over without: expected tokens per step (1 + p) over the
    step-time ratio of 2 query tokens to 1; a range over the acceptance rates."""
    m, hw = need_model(model), resolve_profile(hardware)
    t = {s: float(simulate([m], [hw], batches=(batch,), contexts=(context,), decode_tokens=s,
                           per_op=False).totals["time_s"].iloc[0]) for s in (1, 2)}
    speed = [Workload(1, 1, mtp_acceptance=a).tokens_per_decode_step / (t[2] / t[1]) for a in acceptance]
    return Outcome((min(speed), max(speed)), f"{m.name} on {hw.name}, decode batch {batch}, context {context:,}, "
                                             f"acceptance {acceptance}, step-time ratio {t[2] / t[1]:.3f}")


def speculative_break_even(model: str, hardware: str, tokens_per_step: int, batch: int, context: int,
                           speedup: float) -> Outcome:
    """Accepted tokens per verification step a speculative decoder needs for `speedup`: speedup x the
    step-time ratio of `tokens_per_step` query tokens to 1."""
    m, hw = need_model(model), resolve_profile(hardware)
    t = {s: float(simulate([m], [hw], batches=(batch,), contexts=(context,), decode_tokens=s,
                           per_op=False).totals["time_s"].iloc[0]) for s in (1, tokens_per_step)}
    return Outcome(speedup * t[tokens_per_step] / t[1],
                   f"{m.name} on {hw.name}, batch {batch}, context {context:,}: verifying {tokens_per_step} tokens "
                   f"costs {t[tokens_per_step] / t[1]:.2f}x one")


def profile_at(hw: HardwareProfile, end: str) -> HardwareProfile:
    """The profile with every contested number (one with a range) at the low or high end of its range."""
    def pick(s: Sourced | None) -> Sourced | None:
        if s is None or s.range is None:
            return s
        return dataclasses.replace(s, value=s.range[0] if end == "low" else s.range[1])

    return dataclasses.replace(hw, name=f"{hw.name} ({end})",
                               peak_flop_per_s={k: pick(v) for k, v in hw.peak_flop_per_s.items()},
                               memory_bytes=pick(hw.memory_bytes),
                               memory_bandwidth_bytes_per_s=pick(hw.memory_bandwidth_bytes_per_s))


def decode_tokens_per_s_ratio(model: str, hardware: str, baseline_hardware: str, batch: int, context: int) -> Outcome:
    """Per-device decode tokens/s on hardware / baseline hardware (speed of light), with the range the
    contested figures of both profiles span."""
    m = need_model(model)
    hw, base = resolve_profile(hardware), resolve_profile(baseline_hardware)

    def rate(h: HardwareProfile) -> float:
        return float(simulate([m], [h], batches=(batch,), contexts=(context,), per_op=False).totals["tokens_per_s"].iloc[0])

    point = rate(hw) / rate(base)
    ends = [rate(profile_at(hw, a)) / rate(profile_at(base, b)) for a in ("low", "high") for b in ("low", "high")]
    return Outcome(point, f"{m.name}, decode batch {batch}, context {context:,}, speed of light; contested figures "
                          f"span {min(ends):.3f}-{max(ends):.3f}")


def isca_ep_tpot_s(tokens_per_device: int, hidden: int, copies: int, layers: int, scaleout_bytes_per_s: float,
                   ep: int) -> Outcome:
    """ISCA'25 §2.3.2 speed limit through `comm.ep_time_s`: FP8 dispatch + BF16 combine per layer, two
    micro-batches with compute hidden, every copy over the NIC (latency excluded)."""
    ib = Fabric("ib", scaleup_bytes_per_s=0.0, scaleup_latency_s=0.0, domain_devices=1,
                scaleout_bytes_per_s=scaleout_bytes_per_s, scaleout_latency_s=0.0)
    dispatch, combine = ep_time_s(tokens_per_device, hidden, copies, ep, ib, 1.0, 2.0)
    micro_batches = 2
    return Outcome(float(layers * micro_batches * (dispatch + combine)),
                   f"{tokens_per_device} tokens/device, hidden {hidden}, {copies} copies, EP{ep}, "
                   f"{scaleout_bytes_per_s / 1e9:.0f} GB/s per direction")


CHECKS = {f.__name__: f for f in (params_total, params_active, activated_share, training_flop_per_token,
                                  training_flop_saving, training_utilisation, expert_width_share,
                                  routed_experts_per_token, shared_experts, decode_memory_bound_share,
                                  max_generation_throughput_ratio, mtp_speedup, speculative_break_even,
                                  decode_tokens_per_s_ratio, isca_ep_tpot_s)}
