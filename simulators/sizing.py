"""Costing deployment candidates for `simulators.plan`: workload and options, the search grid
(device counts x layouts x batches) and one vectorised evaluation per TP degree.

Per candidate: per-device time of the step's ops on the busiest EP rank (simulators.parallel.device_ops,
the one cost model, timed by simulators.roofline.time_s in the chosen mode; the rank's expert load from
simulators.expert_load, V4's hash-routed layers from the token frequency via simulators.hash_load;
FP4 experts in the dtype the device computes them in, precision.expert_compute_dtype) + communication (simulators.comm: TP all-reduce, EP dispatch / combine scaled
by the busiest rank's share, PP send), composed by the overlap option: none (the sum, default),
two-micro-batch (each half's dispatch / combine hidden behind the other half's compute, the TP
all-reduce on the critical path, halves costed at half the batch) or ideal (max: the speed-of-light
bound); a step of a P-stage pipeline takes P stage times. Memory: what the device exposes, less the
reserved buffers; MTP adds its module's weights and KV.
Decode: S = 1 + MTP drafts query tokens per sequence over the average context (input + output/2);
memory must hold the longest context (input + output). Expected tokens per step with MTP
acceptance p and n drafts: 1 + p + ... + p^n. Prefill: the prompts' uncached tokens over the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .comm import OVERLAPS, Fabric, all_reduce_time_s, element_bytes, ep_time_s, send_time_s, two_micro_batch_step_s
from . import checks as C
from .errors import ConfigError
from .expert_load import Routing, eplb_nodes, loads_by_policy, policy_names, rank_loads
from .hash_load import DEFAULT_TOKEN_ZIPF_EXPONENT
from .hardware import HardwareProfile
from .memory import DEFAULT_MEMORY_UTILIZATION, activation_bytes
from .model_config import ModelConfig
from .parallel import (
    Layout,
    device_ops,
    device_precision,
    kv_bytes_per_token_per_device,
    layer_scale,
    mtp_weight_bytes_per_device,
    stage_fraction,
    tp_shard,
    weight_bytes_per_device,
)
from .precision import Precision, expert_compute_dtype
from .predict import resolve_mla_mode
from .roofline import Mode, calibration_family, op_time
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
# ASSUMPTION (labelled default, not measured): runtime context, communication buffers and graphs per
# device where the profile gives no reserved_memory_bytes.
DEFAULT_RESERVED_BYTES = 2.0 * 2**30


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
        """Every field through the shared validators (simulators/checks.py): finite, in range, right type."""
        C.integer(self.input_len, "input_len", 1, C.MAX_TOKENS)
        C.integer(self.output_len, "output_len", 1, C.MAX_TOKENS)
        for flag, v in (("ttft_s", self.ttft_s), ("tpot_s", self.tpot_s),
                        ("request_rate_per_s", self.request_rate_per_s)):
            if v is not None:
                C.positive_number(v, flag)
        if not 0.0 <= C.number(self.mtp_acceptance, "mtp_acceptance") < 1.0:
            raise ConfigError(f"mtp_acceptance: expected a probability in [0, 1), got {self.mtp_acceptance}")
        C.integer(self.mtp_drafts, "mtp_drafts", 1, 64)
        if not 0.0 <= C.number(self.cache_hit_rate, "cache_hit_rate") < 1.0:
            raise ConfigError(f"cache_hit_rate: expected a fraction in [0, 1), got {self.cache_hit_rate}")

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
    overlap: str = "none"  # none | two-micro-batch | ideal (max(compute, comm): the speed-of-light bound)
    dispatch_dtype: str = "fp8"
    combine_dtype: str = "bf16"
    mode: str = "achievable"
    mla_mode: str = "auto"
    routing_skew: float = 0.0  # Zipf exponent; > 0 turns the routing model into zipf
    routing: str = "uniform"  # balanced | uniform | zipf | group-limited | histogram (expert_load)
    routing_histogram: tuple[float, ...] = ()
    # hash-routed layers (V4): token-frequency Zipf exponent (simulators.hash_load); None: the default
    # estimate DEFAULT_TOKEN_ZIPF_EXPONENT, listed under the plan's assumptions as such
    token_zipf_exponent: float | None = None
    memory_utilization: float = DEFAULT_MEMORY_UTILIZATION
    objective: str = "devices"
    redundant_experts: int = 0
    price_usd_per_hour: tuple[tuple[str, float], ...] = ()  # (hardware name, $ per device-hour) overrides
    decode_layout: Layout | None = None  # pin the decode unit's layout (and batch, if given)
    prefill_layout: Layout | None = None
    decode_batch: float | None = None
    prefill_batch: float | None = None

    def check(self) -> None:
        C.integer(self.max_devices, "max_devices", 1, C.MAX_TOKENS)
        C.integer(self.redundant_experts, "redundant_experts", 0, C.MAX_TOKENS)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective: expected one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.overlap not in OVERLAPS:
            raise ConfigError(f"overlap: expected one of {', '.join(OVERLAPS)}, got {self.overlap!r}")
        Mode.parse(self.mode, "mode")
        canonical_dtype(self.dispatch_dtype, "dispatch_dtype")
        canonical_dtype(self.combine_dtype, "combine_dtype")
        if not 0 < C.number(self.memory_utilization, "memory_utilization") <= 1:
            raise ConfigError(f"memory_utilization: expected (0, 1], got {self.memory_utilization}")
        C.number(self.routing_skew, "routing_skew", 0.0)
        if self.token_zipf_exponent is not None:
            C.number(self.token_zipf_exponent, "token_zipf_exponent", 0.0)
        for name, price in self.price_usd_per_hour:
            C.positive_number(price, f"price_per_hour {name}")
        for field in ("decode_batch", "prefill_batch"):
            if getattr(self, field) is not None:
                C.positive_number(getattr(self, field), field)

    @property
    def token_zipf(self) -> float:
        """The token-frequency Zipf exponent in use: the given one, else the default estimate."""
        return DEFAULT_TOKEN_ZIPF_EXPONENT if self.token_zipf_exponent is None else float(self.token_zipf_exponent)

    @property
    def routing_model(self) -> Routing:
        if self.routing_skew > 0:
            return Routing("zipf", skew=self.routing_skew)
        return Routing(self.routing, histogram=tuple(self.routing_histogram))


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


def capacity_bytes(hw: HardwareProfile, utilization: float) -> float:
    """Memory a device offers weights + KV + activations: what software sees (or the datasheet
    figure), times the utilization, less the reserved runtime / communication buffers."""
    visible = hw.visible_memory_bytes.value if hw.visible_memory_bytes is not None else hw.memory_bytes.value
    reserved = hw.reserved_memory_bytes.value if hw.reserved_memory_bytes is not None else DEFAULT_RESERVED_BYTES
    return max(visible * utilization - reserved, 0.0)


def _roofline(m, p, hw, t, dp, B, S, L, phase, mla, mode, frac, load, hash_load=None):
    """(time, compute-bound share, memory-bound share, raw compute time, raw memory time) of one
    micro-batch's ops on the fullest stage; `load`: the routed op's rank load or None; `hash_load`:
    the hash-routed layers' (V4) or None. FP4 experts run in `expert_compute_dtype`."""
    ops = device_ops(m, p, t, dp, B, S, L, phase=phase, mla_mode=mla, rank_load=load, hash_load=hash_load)
    expert_dtype = expert_compute_dtype(p, hw)
    total = np.zeros_like(B)
    c_share = np.zeros_like(B)
    comp = np.zeros_like(B)
    mem = np.zeros_like(B)
    for o in ops:
        k = layer_scale(o, frac)
        ot = op_time(np.broadcast_to(o.flop, B.shape) * k, np.broadcast_to(o.bytes, B.shape) * k,
                     calibration_family(o.family, phase, m.attention),
                     expert_dtype if o.family == "moe_routed" else o.compute_dtype, hw, mode,
                     rows=np.broadcast_to(o.rows, B.shape))
        total += ot.time_s
        c_share += np.where(ot.compute_bound, ot.time_s, 0.0)
        comp += ot.compute_time_s
        mem += ot.memory_time_s
    return total, c_share, total - c_share, comp, mem


def evaluate(m: ModelConfig, p: Precision, hw: HardwareProfile, fabric: Fabric | None, cand: pd.DataFrame,
             phase: str, wl: Workload, opt: PlanOptions) -> pd.DataFrame:
    """Cost every candidate row (devices, tp, dp, pp, ep, batch) in `phase`. Adds step time and its
    breakdown (compute-bound and memory-bound ops of the mean EP rank, the busiest rank's straggler excess,
    exposed communication: four parts that add up to the step), memory per
    device, latency and throughput columns. `fabric` None: the mode's (achievable links in the
    achievable mode, nominal otherwise)."""
    if phase not in PHASES:
        raise ConfigError(f"phase {phase!r}: expected prefill or decode")
    mode = Mode.parse(opt.mode, "mode")
    if fabric is None:
        fabric = Fabric.achievable(hw, phase) if mode is Mode.ACHIEVABLE else Fabric.from_profile(hw)
    p = device_precision(p, hw)
    mla = resolve_mla_mode(opt.mla_mode, phase)
    routing = opt.routing_model
    if routing.kind == "group-limited":  # the model's own groups (DeepSeek-V3: top-4 of 8)
        routing = replace(routing, n_group=m.n_group, topk_group=m.topk_group)
    a_bytes, d = p.a_bytes, m.hidden_size
    if phase == "decode":
        S, L_time, L_cap = 1 + wl.drafts, wl.decode_context_avg, float(wl.context_max)
        mtp_factor = 1.0 + wl.drafts * MTP_MODULE_LAYERS / m.num_hidden_layers  # draft module cost
    else:
        S, L_time, L_cap = wl.prefill_query_len, float(wl.input_len), float(wl.input_len)
        mtp_factor = 1.0
    dispatch_b = element_bytes(dtype_bytes(opt.dispatch_dtype))
    combine_b = element_bytes(dtype_bytes(opt.combine_dtype))
    halves = opt.overlap == "two-micro-batch"
    n_mb = 2.0 if halves else 1.0  # micro-batches the batch is split into
    parts = []
    for t, grp in cand.groupby("tp", sort=False):
        t = int(t)
        g = grp.reset_index(drop=True)
        B, dp, pp, ep = (g[c].to_numpy(np.float64) for c in ("batch", "dp", "pp", "ep"))
        frac = stage_fraction(m, pp)
        Bm = B / n_mb  # sequences per attention group per micro-batch
        # ---- expert load on the busiest EP rank (and the mean rank), per micro-batch
        load = mean_load = hash_load = hash_mean = None
        f_assign = np.ones_like(B)
        if m.is_moe:
            tokens_stage = Bm * S * dp  # tokens entering each MoE layer across the EP group
            ep_on = ep > 1
            nodes = eplb_nodes(routing, phase, ep, fabric.domain_devices, opt.redundant_experts)
            max_a, max_d, mean_a, mean_d = loads_by_policy(routing, nodes, tokens_stage, m.n_routed_experts,
                                                           m.num_experts_per_tok, np.where(ep_on, ep, 1),
                                                           opt.redundant_experts)
            g["eplb_policy"] = policy_names(nodes, ep, opt.redundant_experts)
            # ep = 1: experts split like dense layers over the tp ranks (each computes 1/tp of all)
            share = np.where(ep_on, 1.0, 1.0 / (t * dp))
            load = (max_a * share, max_d * share)
            mean_load = (mean_a * share, mean_d * share)
            f_assign = np.where(mean_a > 0, max_a / np.maximum(mean_a, 1e-30), 1.0)
            layers = m.moe_routing_layers
            if layers["hash"]:  # V4's hash-routed layers: load from the token frequency
                hr = Routing("hash", skew=opt.token_zipf, vocab=m.vocab_size)
                h_a, h_d, _, _ = rank_loads(hr, tokens_stage, m.n_routed_experts, m.num_experts_per_tok,
                                            np.where(ep_on, ep, 1), opt.redundant_experts)
                hash_load, hash_mean = (h_a * share, h_d * share), mean_load
                f_hash = np.where(mean_a > 0, h_a / np.maximum(mean_a, 1e-30), 1.0)
                # the EP all-to-all's busiest rank, averaged over the MoE layers of each kind
                f_assign = (f_assign * layers["router"] + f_hash * layers["hash"]) / m.n_moe_layers
        roof, c_share, m_share, compute, memory = _roofline(m, p, hw, t, dp, Bm, S, L_time, phase, mla, mode,
                                                           frac, load, hash_load)
        # the mean EP rank's roofline: the breakdown's compute / memory parts (the straggler excess apart)
        roof_mean, c_mean, m_mean = _roofline(m, p, hw, t, dp, Bm, S, L_time, phase, mla, mode, frac,
                                              mean_load, hash_mean)[:3] if m.is_moe else (roof, c_share, m_share)
        roof, roof_mean = roof * mtp_factor, roof_mean * mtp_factor
        # ---- communication per micro-batch on the fullest stage
        tokens = Bm * S  # this attention group's tokens in one micro-batch
        layers_stage = m.num_hidden_layers * frac
        moe_stage = (m.n_moe_layers if m.is_moe else 0) * frac
        dense_stage = m.n_dense_layers * frac
        ar_bytes = tokens * d * a_bytes  # one hidden-state all-reduce
        ar_count = layers_stage + dense_stage + np.where(ep == 1, moe_stage, 0.0)  # attention out, FFN out
        tp_s = all_reduce_time_s(ar_bytes, t, fabric) * ar_count * mtp_factor if t > 1 else np.zeros_like(B)
        if m.is_moe:
            disp, comb = ep_time_s(tokens / t, d, m.num_experts_per_tok, ep, fabric, dispatch_b, combine_b,
                                   dedup_per_domain=EP_DEDUP_PER_DOMAIN[phase])
            # the busiest rank receives (and sends back) f_assign times the mean rank's copies
            ep_s = np.where(ep > 1, (disp + comb) * moe_stage * f_assign, 0.0) * mtp_factor
        else:
            ep_s = np.zeros_like(B)
        cross = t * dp >= fabric.domain_devices  # consecutive stages sit in different domains
        pp_s = np.where(pp > 1, send_time_s(ar_bytes, fabric, cross), 0.0)
        if opt.overlap == "two-micro-batch":
            stage_s = two_micro_batch_step_s(roof, tp_s, ep_s + pp_s)
        elif opt.overlap == "ideal":
            stage_s = np.maximum(roof, tp_s + ep_s + pp_s)
        else:
            stage_s = roof + tp_s + ep_s + pp_s
        step_s = pp * stage_s  # a micro-batch passes every stage; pp micro-batches are in flight
        compute_stream = n_mb * roof  # the compute stream's busy time per stage
        # ---- memory per device
        w = weight_bytes_per_device(m, p, t, dp, pp, ep, opt.redundant_experts)
        if wl.drafts:
            w = w + mtp_weight_bytes_per_device(m, p, t, dp, ep, opt.redundant_experts, wl.drafts)
        kv_layers = m.num_hidden_layers * frac
        kv_tok = kv_bytes_per_token_per_device(m, p, t, pp) * (kv_layers + wl.drafts * MTP_MODULE_LAYERS) / kv_layers
        act1 = activation_bytes(tp_shard(m, t), 1, S, p, phase) / n_mb  # one sequence's live activations
        usable = capacity_bytes(hw, opt.memory_utilization)
        per_seq = pp * L_cap * kv_tok + act1  # KV of its pp micro-batches' sequences + activations
        g["batch_cap"] = np.floor(np.maximum(usable - w, 0.0) / per_seq)
        g["weight_bytes_per_device"] = w
        g["kv_bytes_per_device"] = B * pp * L_cap * kv_tok
        g["memory_bytes_per_device"] = w + B * per_seq
        g["usable_bytes_per_device"] = usable
        g["fits"] = g["memory_bytes_per_device"] <= usable
        g["compute_s"], g["memory_s"], g["roofline_s"] = compute * n_mb * pp, memory * n_mb * pp, compute_stream * pp
        # step = compute-bound + memory-bound (mean EP rank) + straggler excess + exposed communication
        g["compute_bound_s"] = c_mean * mtp_factor * n_mb * pp  # time of compute-bound ops (mean rank)
        g["memory_bound_s"] = m_mean * mtp_factor * n_mb * pp
        g["straggler_s"] = (roof - roof_mean) * n_mb * pp  # busiest EP rank's excess over the mean rank
        comm = (tp_s + ep_s + pp_s) * n_mb
        g["tp_comm_s"], g["ep_comm_s"], g["pp_comm_s"], g["comm_s"] = tp_s * n_mb, ep_s * n_mb, pp_s * n_mb, comm
        g["exposed_comm_s"] = np.maximum(step_s - compute_stream * pp, 0.0)
        g["step_s"] = step_s
        g["straggler_factor"] = f_assign
        bound = np.where(c_share >= m_share, "compute", "memory bandwidth")
        # interconnect-bound where the communication stream, not the compute stream, sets the stage
        comm_sets = (ep_s + pp_s >= roof + tp_s) if halves else (tp_s + ep_s + pp_s >= roof)
        g["bound"] = np.where(comm_sets, "interconnect", bound)
        g["overlap"] = opt.overlap
        g["mode"] = mode.value
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
    return evaluate(m, p, hw, fabric, cand, phase, wl, opt).iloc[0].to_dict()


def candidates(m: ModelConfig, fabric: Fabric, phase: str, max_devices: int, layout: Layout | None = None,
               batch: float | None = None) -> pd.DataFrame:
    """The search grid; a pinned `layout` (and `batch`) replaces it by that one layout."""
    if layout is not None:
        layout.check(m)
        layouts = pd.DataFrame([{"devices": layout.devices, "tp": layout.tp, "dp": layout.dp, "pp": layout.pp,
                                 "ep": layout.ep}])
    else:
        layouts = layout_grid(m, fabric, max_devices)
    if layouts.empty:
        return layouts.assign(batch=[])
    if batch is not None:
        return layouts.assign(batch=float(batch))
    batches = batch_grid(MAX_DECODE_BATCH if phase == "decode" else MAX_PREFILL_BATCH)
    return layouts.merge(pd.DataFrame({"batch": batches}), how="cross")


def with_cap_rows(m, p, hw, fabric, cand, phase, wl, opt, pinned_batch: bool = False) -> pd.DataFrame:
    """Evaluate the grid, then add each layout's exact memory-capacity batch as one more row."""
    df = evaluate(m, p, hw, fabric, cand, phase, wl, opt)
    if pinned_batch:
        return df
    keys = ["devices", "tp", "dp", "pp", "ep"]
    cap = df.groupby(keys, as_index=False)["batch_cap"].first()
    cap = cap[(cap["batch_cap"] >= 1) & ~cap["batch_cap"].isin(cand["batch"].unique())]
    if not cap.empty:
        extra = evaluate(m, p, hw, fabric, cap.rename(columns={"batch_cap": "batch"}), phase, wl, opt)
        df = pd.concat([df, extra], ignore_index=True)
    return df
