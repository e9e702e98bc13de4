"""A DeepSeek MoE layer: router, shared experts and routed experts (per-expert loop or grouped).

Shape legend
    T   tokens this step (B * S)       d   hidden size
    E   routed experts                 K   experts per token (top-k)
    Ie  routed expert width            Is  total shared-expert width (n_shared * Ie)
    N   token-expert assignments (T * K)
    Ng  expert groups (n_group)        Kg  groups kept per token (topk_group)

Parameters
    w_gate [E, d], bias [E] or None (selection-only bias, DeepSeek-V3 auxiliary-loss-free balancing)
    w13 [E, 2*Ie, d]  gate and up projections of every routed expert, stacked (one GEMM for both)
    w2  [E, d, Ie]    down projections
    w13_shared [2*Is, d], w2_shared [d, Is]
Output: y [T, d] and the per-expert token counts [E] (the expert load).

Router as in DeepSeek-V3 inference/model.py `Gate`: softmax (V2) or sigmoid (V3) scores; the bias
is added for selection only; group-limited top-k keeps the Kg best of Ng groups (group score: max,
or sum of the top 2 with a bias); combine weights are the *unbiased* scores of the selected experts,
normalised over the selected when norm_topk (V3), times routed_scaling_factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .common import KernelCheckError, assert_close, random_tensor, seeded

SCORE_FUNCS = ("softmax", "sigmoid")
GROUPED_IMPLS = ("bmm", "grouped_mm")


@dataclass(frozen=True)
class RouterSpec:
    n_experts: int
    top_k: int
    n_group: int = 1
    topk_group: int = 1
    score_func: str = "softmax"
    route_scale: float = 1.0
    norm_topk: bool = False
    use_bias: bool = False  # noaux_tc: selection bias (DeepSeek-V3)


@dataclass(frozen=True)
class MoEDims:
    d: int
    Ie: int
    Is: int
    router: RouterSpec


def route(x: torch.Tensor, w_gate: torch.Tensor, bias: torch.Tensor | None, spec: RouterSpec):
    """x [T, d] -> combine weights [T, K] (x.dtype) and expert indices [T, K]."""
    T = x.shape[0]
    logits = torch.mm(x, w_gate.t())  # [T, E]
    if spec.score_func == "softmax":
        scores = logits.softmax(dim=-1, dtype=torch.float32)
    else:
        scores = logits.float().sigmoid()
    select = scores if bias is None else scores + bias.float()  # bias steers selection only
    if spec.n_group > 1:
        grouped = select.view(T, spec.n_group, -1)  # [T, Ng, E/Ng]
        group_scores = grouped.amax(dim=-1) if bias is None else grouped.topk(2, dim=-1)[0].sum(dim=-1)
        kept = group_scores.topk(spec.topk_group, dim=-1)[1]  # [T, Kg]
        dropped = torch.ones(T, spec.n_group, dtype=torch.bool, device=x.device).scatter_(1, kept, False)
        select = grouped.masked_fill(dropped[..., None], float("-inf")).flatten(1)  # [T, E]
    indices = select.topk(spec.top_k, dim=-1)[1]  # [T, K]
    weights = scores.gather(1, indices)  # unbiased scores of the selected experts
    if spec.norm_topk:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return (weights * spec.route_scale).to(x.dtype), indices


def swiglu(x: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """w2(silu(w1 x) * w3 x) with w1, w3 stacked in w13 [2I, d]: x [M, d] -> [M, d]."""
    gate, up = torch.mm(x, w13.t()).chunk(2, dim=-1)  # [M, I] each (views of one [M, 2I] result)
    return torch.mm(F.silu(gate, inplace=True).mul_(up), w2.t())


def moe_loop(x, p: dict, spec: RouterSpec):
    """Routed experts one at a time (DeepSeek-V3 MoE.forward): gather each expert's tokens, run it,
    scatter-add the weighted output. One pass over the routing table per expert hit."""
    weights, indices = route(x, p["w_gate"], p["bias"], spec)
    counts = torch.bincount(indices.flatten(), minlength=spec.n_experts)  # [E]
    y = torch.zeros_like(x)
    for e, n in enumerate(counts.tolist()):
        if n == 0:
            continue
        idx, top = torch.where(indices == e)  # tokens routed to e, and which of their K slots
        y.index_add_(0, idx, swiglu(x[idx], p["w13"][e], p["w2"][e]) * weights[idx, top, None])
    return y + swiglu(x, p["w13_shared"], p["w2_shared"]), counts


def _grouped_bmm(xs, counts, w13, w2, sorted_experts):
    """Padded batched GEMMs over the active experts: [Ea, M, d] @ [Ea, d, 2Ie], M = max tokens/expert."""
    active = torch.nonzero(counts).squeeze(1)  # [Ea]
    Ea, M = active.numel(), int(counts.max())
    slot = torch.full_like(counts, -1)
    slot[active] = torch.arange(Ea, device=counts.device)
    starts = torch.cumsum(counts, 0) - counts  # first sorted assignment of each expert
    rank = torch.arange(xs.shape[0], device=xs.device) - starts[sorted_experts]  # row within its expert
    rows = slot[sorted_experts]
    xp = xs.new_zeros(Ea, M, xs.shape[1])  # [Ea, M, d]
    xp[rows, rank] = xs
    if Ea < counts.numel():  # gather only the experts hit (decode); all of them at large T
        w13, w2 = w13[active], w2[active]
    gate, up = torch.bmm(xp, w13.transpose(1, 2)).chunk(2, dim=-1)  # [Ea, M, Ie] each
    out = torch.bmm(F.silu(gate, inplace=True).mul_(up), w2.transpose(1, 2))  # [Ea, M, d]
    return out[rows, rank]  # [N, d] in sorted order


def _grouped_mm(xs, counts, w13, w2, sorted_experts):
    """torch._grouped_mm over contiguous per-expert row blocks (no padding)."""
    offs = torch.cumsum(counts, 0).to(torch.int32)  # end row of each expert's block
    gate, up = torch._grouped_mm(xs, w13.transpose(1, 2), offs=offs).chunk(2, dim=-1)  # [N, Ie] each
    return torch._grouped_mm(F.silu(gate) * up, w2.transpose(1, 2), offs=offs)  # [N, d] (A must be contiguous)


def expert_chunks(ends: list[int], chunk_rows: int | None) -> list[tuple[int, int]]:
    """Consecutive expert ranges [e0, e1) of about `chunk_rows` sorted assignment rows each (one range:
    every expert, when chunk_rows is None). `ends[e]` is the end row of expert e's block."""
    E = len(ends)
    if not chunk_rows:
        return [(0, E)]
    out, e0, r0 = [], 0, 0
    for e, end in enumerate(ends):
        if end - r0 >= chunk_rows or e == E - 1:
            out.append((e0, e + 1))
            e0, r0 = e + 1, end
    return out


def moe_grouped(x, p: dict, spec: RouterSpec, impl: str = "grouped_mm", chunk_rows: int | None = None):
    """Routed experts as grouped computations: sort the N = T*K assignments by expert, run the
    experts as grouped GEMMs, then scatter-add the weighted rows back to their tokens.

    chunk_rows: run the experts in consecutive groups of about this many rows, so the gathered
    tokens and the [rows, 2*Ie] intermediate stay in cache (CPU); None: one group (accelerators).
    """
    if impl not in GROUPED_IMPLS:
        raise ValueError(f"grouped MoE impl {impl!r}: expected one of {', '.join(GROUPED_IMPLS)}")
    weights, indices = route(x, p["w_gate"], p["bias"], spec)
    K = indices.shape[1]
    flat = indices.flatten()  # [N]
    order = torch.argsort(flat, stable=True)  # assignments sorted by expert
    sorted_experts = flat[order]
    token = order // K  # token of each sorted assignment
    w_sorted = weights.flatten()[order]  # [N]
    counts = torch.bincount(flat, minlength=spec.n_experts)  # [E]
    run = _grouped_mm if impl == "grouped_mm" else _grouped_bmm
    y = torch.zeros_like(x)
    if chunk_rows is None:
        ranges = [(0, spec.n_experts, 0, flat.numel())]
    else:
        ends = torch.cumsum(counts, 0).tolist()
        ranges = [(e0, e1, ends[e0 - 1] if e0 else 0, ends[e1 - 1]) for e0, e1 in expert_chunks(ends, chunk_rows)]
    for e0, e1, r0, r1 in ranges:
        if r1 == r0:
            continue
        tok = token[r0:r1]
        out = run(x[tok], counts[e0:e1], p["w13"][e0:e1], p["w2"][e0:e1], sorted_experts[r0:r1] - e0)  # [rows, d]
        y.index_add_(0, tok, out.mul_(w_sorted[r0:r1, None]))
    return y + swiglu(x, p["w13_shared"], p["w2_shared"]), counts


def moe_reference(x, p: dict, spec: RouterSpec) -> torch.Tensor:
    """Dense float64 definition: every expert on every token, combined with a [T, E] weight matrix
    built from the router's choice (the routing decision itself is taken from `route`)."""
    weights, indices = route(x, p["w_gate"], p["bias"], spec)
    xd = x.double()
    combine = torch.zeros(x.shape[0], spec.n_experts, dtype=torch.float64, device=x.device)
    combine.scatter_(1, indices, weights.double())  # [T, E]
    y = swiglu(xd, p["w13_shared"].double(), p["w2_shared"].double())
    for e in range(spec.n_experts):
        y = y + combine[:, e, None] * swiglu(xd, p["w13"][e].double(), p["w2"][e].double())
    return y


def make_params(dims: MoEDims, device, dtype, seed: int = 0) -> dict:
    """Weights scaled so activations stay O(1): std 1/sqrt(fan_in)."""
    g = seeded(seed, device)
    E, d, Ie, Is = dims.router.n_experts, dims.d, dims.Ie, dims.Is
    return {
        "w_gate": random_tensor((E, d), device, dtype, d**-0.5, g),
        "bias": random_tensor((E,), device, torch.float32, 0.05, g) if dims.router.use_bias else None,
        "w13": random_tensor((E, 2 * Ie, d), device, dtype, d**-0.5, g),
        "w2": random_tensor((E, d, Ie), device, dtype, Ie**-0.5, g),
        "w13_shared": random_tensor((2 * Is, d), device, dtype, d**-0.5, g),
        "w2_shared": random_tensor((d, Is), device, dtype, Is**-0.5, g),
    }


def make_tokens(T: int, d: int, device, dtype, seed: int = 1) -> torch.Tensor:
    return random_tensor((T, d), device, dtype, 1.0, seeded(seed, device))


CHECK_DIMS = (
    MoEDims(d=32, Ie=16, Is=32, router=RouterSpec(n_experts=8, top_k=2)),  # V2-Lite-like: softmax
    MoEDims(d=32, Ie=16, Is=16, router=RouterSpec(n_experts=16, top_k=4, n_group=4, topk_group=2,
                                                  score_func="sigmoid", route_scale=2.5, norm_topk=True,
                                                  use_bias=True)),  # V3-like: sigmoid, groups, bias
)


def grouped_impls(device) -> list[str]:
    """Grouped implementations that run here (torch._grouped_mm exists in torch >= 2.8 only)."""
    return list(GROUPED_IMPLS) if hasattr(torch, "_grouped_mm") else ["bmm"]


def check(device, dtype, impls=None, dims_list=CHECK_DIMS, token_counts=(1, 5, 40)) -> None:
    """moe_loop against the dense float64 reference, and each grouped impl against moe_loop, for each
    MoEDims (toy widths, or a model's own) and token count."""
    for dims in dims_list:
        p = make_params(dims, device, dtype, seed=3)
        for T in token_counts:
            x = make_tokens(T, dims.d, device, dtype, seed=T)
            ref = moe_reference(x, p, dims.router)
            y_loop, c_loop = moe_loop(x, p, dims.router)
            assert_close(y_loop, ref, dtype, f"moe_loop vs float64 reference at T={T}")
            for impl in impls if impls is not None else grouped_impls(device):
                for chunk_rows in (None, 8):
                    y, c = moe_grouped(x, p, dims.router, impl, chunk_rows)
                    assert_close(y, y_loop, dtype, f"moe_grouped[{impl}, chunk_rows={chunk_rows}] vs moe_loop at T={T}")
                if not torch.equal(c, c_loop) or int(c.sum()) != T * dims.router.top_k:
                    raise KernelCheckError(f"moe_grouped[{impl}]: expert counts differ from moe_loop at T={T}")
