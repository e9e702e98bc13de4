"""Auxiliary-loss-free balancing measured on the bench's own MoE layer (issue: "measured on the host
too: the bench MoE layer already has the bias").

What is measured, and against what:
  * routing: the real router (`bench.kernels.moe.route`, DeepSeek-V3 gating: sigmoid scores, the
    bias added for selection only) on a skewed token stream, `steps` batches of T fresh tokens,
    under no balancing and under DeepSeek-V3's bias update (b_i -= gamma if expert i is above the
    mean load, += gamma below). The skew is put into the tokens, not the router: every token carries
    a mean direction mu with W mu = base (base_i = -skew * log(rank_i + 1), the Zipf-like preference
    `simulators.balancing` assumes), so the router's logits are base + W z with z ~ N(0, I) and
    w_i ~ N(0, 1/d): base + N(0, ~1) noise, the simulator's own router. The per-step MaxVio of the
    real router is set beside `simulators.balancing.simulate` at the same E, k, T, skew, gamma and
    steps: an independent check of the simulated trajectory (nothing is fitted).
  * time: the MoE layer (`moe_grouped` in the form the caller names) with the routing of the first
    step (skewed) and of the last (balanced) at the same T, on this host. On one device every
    assignment is computed either way, so only the kernel's own sensitivity to imbalance (padding
    to the busiest expert in the `bmm` form, per-expert GEMM shapes) shows; the EP straggler gain
    (the busiest rank sets the step) is the simulator's `expert_load` model, not measured here.

Shape legend: T tokens per step, d hidden, E routed experts, k experts per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from simulators import balancing as sim

from .contention import wait_for_quiet
from .kernels import moe
from .kernels.common import seeded
from .timing import TimingConfig, measure, summarize

POLICIES = ("none", "aux-free")  # an auxiliary loss needs training; the bench layer has none


@dataclass(frozen=True)
class HostBalancing:
    trajectory: pd.DataFrame  # step, policy, source (host / simulated), max_violation
    timing: pd.DataFrame  # routing (skewed / balanced), max_over_mean, median_s, cv, variant


def preferred_direction(w_gate: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """mu [d] with W mu = base: the least-norm solution W^T (W W^T)^-1 base (E < d)."""
    W = w_gate.detach().double().cpu()
    return W.t() @ torch.linalg.solve(W @ W.t(), base.double())


def skewed_tokens(mu: torch.Tensor, T: int, g: torch.Generator, dtype: torch.dtype, device="cpu") -> torch.Tensor:
    """x [T, d] = z + mu, z ~ N(0, I) (drawn on the CPU, seeded, then moved)."""
    return (torch.randn(T, mu.shape[0], generator=g, dtype=torch.float64) + mu).to(device=device, dtype=dtype)


def _preference(E: int, skew: float, seed: int) -> torch.Tensor:
    rank = torch.randperm(E, generator=torch.Generator().manual_seed(seed))
    return -skew * torch.log(rank.double() + 1.0)


def route_steps(dims: moe.MoEDims, w_gate: torch.Tensor, policy: str, T: int, steps: int, skew: float,
                gamma: float, seed: int = 0) -> tuple[np.ndarray, list[torch.Tensor], torch.Tensor]:
    """Loads [steps, E] of the real router over a skewed stream, and the tokens of the first and last
    step (for timing)."""
    spec = host_router(dims)
    E = spec.n_experts
    mu = preferred_direction(w_gate, _preference(E, skew, seed))
    bias = torch.zeros(E, device=w_gate.device)
    g = seeded(seed + 1, "cpu")
    loads = np.zeros((steps, E))
    kept: list[torch.Tensor] = []
    for step in range(steps):
        x = skewed_tokens(mu, T, g, w_gate.dtype, w_gate.device)
        _, idx = moe.route(x, w_gate, bias, spec)
        load = torch.bincount(idx.flatten(), minlength=E).double()
        loads[step] = load.cpu().numpy()
        if policy == "aux-free":
            bias += gamma * torch.sign(load.mean() - load).float()
        if step in (0, steps - 1):
            kept.append(x)
    return loads, kept, bias


def host_router(dims: moe.MoEDims) -> moe.RouterSpec:
    """The model's router with DeepSeek-V3 gating (sigmoid scores, a selection bias): the gating the
    bias rule and the simulator are written for. V2-Lite's own softmax scores sum to 1 over 64
    experts, so a fixed gamma would move them ~64x faster relative to their spread."""
    return replace(dims.router, score_func="sigmoid", use_bias=True)


def measure_host(dims: moe.MoEDims, params: dict, T: int = 512, steps: int = 300, skew: float = 1.0,
                 gamma: float = sim.DEFAULT_GAMMA, impl: str = "bmm", chunk_rows: int | None = None,
                 timing: TimingConfig = TimingConfig(), seed: int = 0, time_layer: bool = True,
                 sync=lambda: None, contention: bool = False) -> HostBalancing:
    """Trajectories of both policies (host router and simulator), then the layer timed at the first
    (skewed) and last (balanced) aux-free routing; `contention` (CPU hosts): wait for other
    processes to go quiet before each timing and flag it noisy if they did not."""
    frames, last = [], {}
    for policy in POLICIES:
        loads, kept, bias = route_steps(dims, params["w_gate"], policy, T, steps, skew, gamma, seed)
        last[policy] = (kept, bias)
        s = sim.simulate(policy, dims.router.n_experts, dims.router.top_k, T, steps, skew, gamma, seed=seed)
        host = sim.BalancingResult(policy, loads, bias.cpu().numpy())
        for source, mv in (("host", host.max_violation), ("simulated", s.max_violation)):
            frames.append(pd.DataFrame({"step": np.arange(steps), "policy": policy, "source": source,
                                        "max_violation": mv}))
    rows = []
    if time_layer:
        spec = host_router(dims)
        (first_x, last_x), bias = last["aux-free"]
        for routing, x, b in (("skewed", first_x, torch.zeros_like(bias)), ("balanced", last_x, bias)):
            p = {**params, "bias": b}
            _, counts = moe.moe_grouped(x, p, spec, impl, chunk_rows)
            quiet = wait_for_quiet() if contention else None  # another process's CPU use slows 2 threads
            meas = measure(lambda: moe.moe_grouped(x, p, spec, impl, chunk_rows), sync, timing)
            after = wait_for_quiet(max_wait_s=0.0) if contention else None
            st = summarize(meas.samples_s)
            c = counts.double()
            rows.append({"routing": routing, "tokens": T, "max_over_mean": float(c.max() / c.mean()),
                         "distinct_experts": int((c > 0).sum()), "median_s": st.median_s, "cv": st.cv,
                         "min_s": st.min_s, "n_samples": st.n_samples,
                         "noisy": bool(contention and not (quiet.quiet and after.quiet)) or st.cv > timing.cv_retry,
                         "variant": f"{impl}" + (f"/chunk{chunk_rows}" if chunk_rows else "")})
    return HostBalancing(pd.concat(frames, ignore_index=True), pd.DataFrame(rows))


def summary(result: HostBalancing, last: int = 50) -> pd.DataFrame:
    """Mean MaxVio over the first and the last `last` steps, per policy and source."""
    t = result.trajectory
    steps = int(t["step"].max()) + 1
    out = []
    for (policy, source), g in t.groupby(["policy", "source"]):
        mv = g.sort_values("step")["max_violation"].to_numpy()
        n = min(last, steps)
        out.append({"policy": policy, "source": source, "first_mean_max_violation": float(mv[:n].mean()),
                    "last_mean_max_violation": float(mv[-n:].mean())})
    return pd.DataFrame(out)


def ratio_balanced_over_skewed_s(result: HostBalancing) -> float:
    t = result.timing.set_index("routing")["median_s"]
    return float(t["balanced"] / t["skewed"]) if {"balanced", "skewed"} <= set(t.index) else math.nan
