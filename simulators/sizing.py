"""Costing deployment candidates for `simulators.plan`: workload and options, the search grid
(device counts x layouts x batches) and one vectorised evaluation per TP degree.

Per candidate: per-device roofline time of the step's ops (simulators.parallel.device_ops, the one
cost model) + communication (simulators.comm: TP all-reduce, EP dispatch / combine, PP send),
combined by overlap (max) or not (sum); a step of a P-stage pipeline takes P stage times.
Decode: S = 1 + MTP drafts query tokens per sequence over the average context (input + output/2);
memory must hold the longest context (input + output). Expected tokens per step with MTP
acceptance p and n drafts: 1 + p + ... + p^n. Prefill: the prompts' uncached tokens over the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .comm import Fabric, all_reduce_time_s, element_bytes, ep_time_s, send_time_s, step_time_s
from .errors import ConfigError
from .hardware import HardwareProfile
from .memory import DEFAULT_MEMORY_UTILIZATION, activation_bytes
from .model_config import ModelConfig
from .parallel import (
    Layout,
    device_ops,
    kv_bytes_per_token_per_device,
    layer_scale,
    stage_fraction,
    tp_shard,
    weight_bytes_per_device,
)
from .precision import Precision
from .predict import resolve_mla_mode
from .roofline import calibration_family, op_time
from .units import canonical_dtype, dtype_bytes

PHASES = ("prefill", "decode")
OBJECTIVES = ("devices", "throughput")
MTP_MODULE_LAYERS = 1  # DeepSeek-V3's MTP module: one extra transformer block per draft token
# DeepEP: high-throughput kernels (prefill) send a token once per remote node and forward over
# NVLink; low-latency kernels (decode) send every token-expert copy directly over RDMA.
EP_DEDUP_PER_DOMAIN = {"prefill": True, "decode": False}
DEFAULT_MAX_DEVICES = 1024
MAX_TP = 8  # tensor parallel stays inside one scale-up domain and at most 8 ways
BATCH_STEPS_PER_OCTAVE = 2  # batch grid: 2^(i/2)
MAX_DECODE_BATCH = 4096  # sequences per attention group per micro-batch
MAX_PREFILL_BATCH = 256  # prompts per attention group per micro-batch


@dataclass(frozen=True)
class Workload:
    input_len: int
    output_len: int
    ttft_s: float | None = None
    tpot_s: float | None = None
    request_rate_per_s: float | None = None
    mtp_acceptance: float = 0.0  # 0: no multi-token prediction
    mtp_drafts: int = 1
    cache_hit_rate: float = 0.0  # share of input tokens found in a prefix cache (not recomputed)

    def check(self) -> None:
        if self.input_len < 1 or self.output_len < 1:
            raise ConfigError(f"--input-len / --output-len: expected positive token counts, got "
                              f"{self.input_len} and {self.output_len}")
        for flag, v in (("--ttft-ms", self.ttft_s), ("--tpot-ms", self.tpot_s),
                        ("--request-rate", self.request_rate_per_s)):
            if v is not None and not v > 0:
                raise ConfigError(f"{flag}: expected a positive number, got {v}")
        if not 0.0 <= self.mtp_acceptance < 1.0:
            raise ConfigError(f"--mtp-acceptance: expected a probability in [0, 1), got {self.mtp_acceptance}")
        if self.mtp_drafts < 1:
            raise ConfigError(f"--mtp-drafts: expected a positive integer, got {self.mtp_drafts}")
        if not 0.0 <= self.cache_hit_rate < 1.0:
            raise ConfigError(f"--cache-hit-rate: expected a fraction in [0, 1), got {self.cache_hit_rate}")

    @property
    def drafts(self) -> int:
        return self.mtp_drafts if self.mtp_acceptance > 0 else 0

    @property
    def tokens_per_decode_step(self) -> float:
        """Expected tokens emitted per sequence per decode step: 1 + p + p^2 + ... + p^drafts."""
        return float(sum(self.mtp_acceptance**i for i in range(self.drafts + 1)))

    @property
    def decode_context_avg(self) -> float:
        return self.input_len + self.output_len / 2.0

    @property
    def context_max(self) -> int:
        return self.input_len + self.output_len

    @property
    def prefill_query_len(self) -> int:
        return max(1, round(self.input_len * (1.0 - self.cache_hit_rate)))


@dataclass(frozen=True)
class PlanOptions:
    max_devices: int = DEFAULT_MAX_DEVICES
    overlap: bool = True
    dispatch_dtype: str = "fp8"
    combine_dtype: str = "bf16"
    mode: str = "speed_of_light"
    mla_mode: str = "auto"
    routing_skew: float = 0.0
    memory_utilization: float = DEFAULT_MEMORY_UTILIZATION
    objective: str = "devices"
    redundant_experts: int = 0

    def check(self) -> None:
        if self.max_devices < 1:
            raise ConfigError(f"--max-devices: expected a positive integer, got {self.max_devices}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        canonical_dtype(self.dispatch_dtype, "--dispatch-dtype")
        canonical_dtype(self.combine_dtype, "--combine-dtype")
        if not 0 < self.memory_utilization <= 1:
            raise ConfigError(f"--memory-utilization: expected (0, 1], got {self.memory_utilization}")


# ------------------------------------------------------------------------------------------ grid


def device_counts(fabric: Fabric, max_devices: int) -> list[int]:
    """Powers of two and whole scale-up domains (nodes) up to the cap and the fabric's reach."""
    cap = int(min(max_devices, fabric.max_devices))
    counts = {2**i for i in range(int(math.log2(cap)) + 1)}
    if fabric.domain_devices > 1:
        counts |= set(range(fabric.domain_devices, cap + 1, fabric.domain_devices))
    return sorted(counts)


def layout_grid(m: ModelConfig, fabric: Fabric, max_devices: int) -> pd.DataFrame:
    """Layouts sensible for the model: MoE -> DP attention (+ TP inside a domain) with EP over the
    stage, or pure TP inside one domain; dense -> TP inside the domain, PP across domains."""
    H = m.num_attention_heads
    max_tp = min(MAX_TP, fabric.domain_devices, H)
    tps = [t for t in (1, 2, 4, 8) if t <= max_tp and H % t == 0]
    rows = []
    for n in device_counts(fabric, max_devices):
        for t in tps:
            if n % t:
                continue
            if m.is_moe:
                rows.append((n, t, n // t, 1, n))  # DP attention x TP, experts over the whole stage
                if n == t and n > 1:
                    rows.append((n, t, 1, 1, 1))  # pure TP, experts split like dense layers
            else:
                pp = n // t
                if pp & (pp - 1) == 0 and pp <= m.num_hidden_layers and (pp == 1 or t == max_tp):
                    rows.append((n, t, 1, pp, 1))
    return pd.DataFrame(rows, columns=["devices", "tp", "dp", "pp", "ep"]).drop_duplicates(ignore_index=True)


def batch_grid(maximum: int) -> np.ndarray:
    steps = int(math.log2(maximum) * BATCH_STEPS_PER_OCTAVE)
    return np.unique(np.round(2.0 ** (np.arange(steps + 1) / BATCH_STEPS_PER_OCTAVE)))


# ------------------------------------------------------------------------------------- evaluate


def evaluate(m: ModelConfig, p: Precision, hw: HardwareProfile, fabric: Fabric, cand: pd.DataFrame, phase: str,
             wl: Workload, opt: PlanOptions) -> pd.DataFrame:
    """Cost every candidate row (devices, tp, dp, pp, ep, batch) in `phase`. Adds step time,
    compute / memory / comm split, memory per device, latency and throughput columns."""
    if phase not in PHASES:
        raise ConfigError(f"phase {phase!r}: expected prefill or decode")
    mla = resolve_mla_mode(opt.mla_mode, phase)
    a_bytes, d = p.a_bytes, m.hidden_size
    if phase == "decode":
        S, L_time, L_cap = 1 + wl.drafts, wl.decode_context_avg, float(wl.context_max)
        mtp_factor = 1.0 + wl.drafts * MTP_MODULE_LAYERS / m.num_hidden_layers  # draft module cost
    else:
        S, L_time, L_cap = wl.prefill_query_len, float(wl.input_len), float(wl.input_len)
        mtp_factor = 1.0
    dispatch_b = element_bytes(dtype_bytes(opt.dispatch_dtype))
    combine_b = element_bytes(dtype_bytes(opt.combine_dtype))
    parts = []
    for t, grp in cand.groupby("tp", sort=False):
        t = int(t)
        g = grp.reset_index(drop=True)
        B, dp, pp, ep = (g[c].to_numpy(np.float64) for c in ("batch", "dp", "pp", "ep"))
        frac = stage_fraction(m, pp)
        ops = device_ops(m, p, t, dp, B, S, L_time, phase=phase, mla_mode=mla, routing_skew=opt.routing_skew)
        compute = np.zeros_like(B)
        memory = np.zeros_like(B)
        roof = np.zeros_like(B)
        compute_share = np.zeros_like(B)
        for o in ops:
            k = layer_scale(o, frac)
            ot = op_time(np.broadcast_to(o.flop, B.shape) * k, np.broadcast_to(o.bytes, B.shape) * k,
                         calibration_family(o.family, phase, m.attention), o.compute_dtype, hw, opt.mode)
            compute += ot.compute_time_s
            memory += ot.memory_time_s
            roof += ot.time_s
            compute_share += np.where(ot.compute_bound, ot.time_s, 0.0)
        roof *= mtp_factor
        # ---- communication per micro-batch on the fullest stage
        tokens = B * S  # this attention group's tokens
        layers_stage = m.num_hidden_layers * frac
        moe_stage = (m.n_moe_layers if m.is_moe else 0) * frac
        dense_stage = m.n_dense_layers * frac
        ar_bytes = tokens * d * a_bytes  # one hidden-state all-reduce
        ar_count = layers_stage + dense_stage + np.where(ep == 1, moe_stage, 0.0)  # attention out, FFN out
        tp_s = all_reduce_time_s(ar_bytes, t, fabric) * ar_count if t > 1 else np.zeros_like(B)
        if m.is_moe:
            disp, comb = ep_time_s(tokens / t, d, m.num_experts_per_tok, ep, fabric, dispatch_b, combine_b,
                                   dedup_per_domain=EP_DEDUP_PER_DOMAIN[phase])
            ep_s = np.where(ep > 1, (disp + comb) * moe_stage, 0.0)
        else:
            ep_s = np.zeros_like(B)
        cross = t * dp >= fabric.domain_devices  # consecutive stages sit in different domains
        pp_s = np.where(pp > 1, send_time_s(ar_bytes, fabric, cross), 0.0)
        comm = (tp_s + ep_s + pp_s) * mtp_factor
        stage_s = step_time_s(roof, comm, opt.overlap)
        step_s = pp * stage_s  # a micro-batch passes every stage; pp micro-batches are in flight
        # ---- memory per device
        w = weight_bytes_per_device(m, p, t, dp, pp, ep, opt.redundant_experts)
        kv_tok = kv_bytes_per_token_per_device(m, p, t, pp)
        act1 = activation_bytes(tp_shard(m, t), 1, S, p, phase)  # one sequence of this step
        usable = hw.memory_bytes.value * opt.memory_utilization
        per_seq = pp * L_cap * kv_tok + act1  # KV of its pp micro-batches' sequences + activations
        g["batch_cap"] = np.floor(np.maximum(usable - w, 0.0) / per_seq)
        g["weight_bytes_per_device"] = w
        g["kv_bytes_per_device"] = B * pp * L_cap * kv_tok
        g["memory_bytes_per_device"] = w + B * per_seq
        g["fits"] = g["memory_bytes_per_device"] <= usable
        g["compute_s"], g["memory_s"], g["roofline_s"] = compute, memory, roof
        g["tp_comm_s"], g["ep_comm_s"], g["pp_comm_s"], g["comm_s"] = tp_s, ep_s, pp_s, comm
        g["step_s"] = step_s
        bound = np.where(compute_share >= roof / mtp_factor - compute_share, "compute", "memory bandwidth")
        comm_dominates = comm >= roof if opt.overlap else comm >= 0.5 * (roof + comm)
        g["bound"] = np.where(comm_dominates, "interconnect", bound)
        concurrency = B * dp * pp
        g["concurrency"] = concurrency
        if phase == "decode":
            g["tpot_s"] = step_s / wl.tokens_per_decode_step
            g["tokens_per_s_per_user"] = 1.0 / g["tpot_s"]
            g["tokens_per_s_per_device"] = concurrency * wl.tokens_per_decode_step / step_s / g["devices"]
        else:
            g["ttft_s"] = step_s
            g["tokens_per_s_per_device"] = concurrency * wl.input_len / step_s / g["devices"]
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


def evaluate_layout(m: ModelConfig, p: Precision, hw: HardwareProfile, layout: Layout, batch: float, phase: str,
                    wl: Workload, opt: PlanOptions = PlanOptions(), fabric: Fabric | None = None) -> dict:
    """One candidate: `batch` sequences (decode) or prompts (prefill) per attention group per micro-batch."""
    layout.check(m)
    cand = pd.DataFrame([{"devices": layout.devices, "tp": layout.tp, "dp": layout.dp, "pp": layout.pp,
                          "ep": layout.ep, "batch": float(batch)}])
    opt = replace(opt, redundant_experts=layout.redundant_experts)
    return evaluate(m, p, hw, fabric or Fabric.from_profile(hw), cand, phase, wl, opt).iloc[0].to_dict()


def candidates(m: ModelConfig, fabric: Fabric, phase: str, max_devices: int) -> pd.DataFrame:
    layouts = layout_grid(m, fabric, max_devices)
    if layouts.empty:
        return layouts.assign(batch=[])
    batches = batch_grid(MAX_DECODE_BATCH if phase == "decode" else MAX_PREFILL_BATCH)
    return layouts.merge(pd.DataFrame({"batch": batches}), how="cross")


def with_cap_rows(m, p, hw, fabric, cand, phase, wl, opt) -> pd.DataFrame:
    """Evaluate the grid, then add each layout's exact memory-capacity batch as one more row."""
    df = evaluate(m, p, hw, fabric, cand, phase, wl, opt)
    keys = ["devices", "tp", "dp", "pp", "ep"]
    cap = df.groupby(keys, as_index=False)["batch_cap"].first()
    cap = cap[(cap["batch_cap"] >= 1) & ~cap["batch_cap"].isin(cand["batch"].unique())]
    if not cap.empty:
        extra = evaluate(m, p, hw, fabric, cap.rename(columns={"batch_cap": "batch"}), phase, wl, opt)
        df = pd.concat([df, extra], ignore_index=True)
    return df
