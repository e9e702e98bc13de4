"""Case -> a callable to time (inputs built on the device), and the correctness check that must pass
before a kernel is timed. Model dimensions come from the shipped model configs."""

from __future__ import annotations

from collections.abc import Callable
import statistics
import time
from dataclasses import dataclass, field

import torch

from .cases import Case, model_config
from .device import TORCH_DTYPES, Device
from .kernels import attention, calibrate, mla, moe, v4
from .kernels.common import KernelCheckError

MOE_GROUPED_PREFERENCE = ("grouped_mm", "bmm")  # first that passes its check on this device
# Grouped MoE on CPU runs ~3 experts at a time so the gathered tokens and the intermediate stay in
# cache: 1.02 s instead of 1.38 s at T = 2048 (V2-Lite) on the 2-vCPU host; 512-2048 rows all did.
CPU_MOE_CHUNK_ROWS = 512
SDPA_KERNELS = {"sdpa_decode": "sdpa", "sdpa_prefill": "sdpa", "sdpa_gqa_decode": "sdpa_enable_gqa",
                "sdpa_repeat_decode": "sdpa_repeat"}


@dataclass
class Workload:
    fn: Callable[[], object]
    variant: str = ""  # implementation detail worth a column (e.g. grouped_mm vs bmm)
    expert_load: list[int] | None = None  # tokens per routed expert (MoE)
    extra: dict = field(default_factory=dict)


def torch_dtype(case: Case) -> torch.dtype:
    return TORCH_DTYPES.get(case.dtype, torch.bfloat16)


def mla_dims(spec: str) -> mla.MLADims:
    m = model_config(spec)
    return mla.MLADims(H=m.num_attention_heads, C=m.kv_lora_rank, R=m.qk_rope_head_dim, Dn=m.qk_nope_head_dim,
                       Dv=m.v_head_dim)


def moe_dims(spec: str) -> moe.MoEDims:
    m = model_config(spec)
    router = moe.RouterSpec(
        n_experts=m.n_routed_experts,
        top_k=m.num_experts_per_tok,
        n_group=m.n_group,
        topk_group=m.topk_group,
        score_func=m.scoring_func,
        route_scale=m.routed_scaling_factor,
        norm_topk=m.norm_topk_prob,
        use_bias=m.topk_method == "noaux_tc",
    )
    return moe.MoEDims(d=m.hidden_size, Ie=m.moe_intermediate_size, Is=m.shared_expert_intermediate_size,
                       router=router)


def v4_dims(spec: str) -> v4.V4Dims:
    from simulators.kv_ledger import kind_ratio

    m = model_config(spec)
    return v4.V4Dims(d=m.hidden_size, H=m.num_attention_heads, c=m.head_dim, W=m.sliding_window,
                     Hi=m.index_n_heads, Di=m.index_head_dim, K=m.index_topk, hca_ratio=kind_ratio(m, "hca"),
                     n=m.hc_mult, iters=m.hc_sinkhorn_iters)


def _v4_kind(kernel: str) -> str:
    return "csa" if "csa" in kernel else "hca"


def check_v4(case: Case, device, dt) -> str:
    """V4 kernels against their float64 references at the model's own dims: the compressor over a
    few whole blocks, the indexer and the core attention with more compressed entries than top-k
    (a real selection) and a full window, mHC on a few tokens."""
    k, dims = case.kernel, v4_dims(case.model)
    over_k = v4.CSA_RATIO * (dims.K + 37)  # a context whose compressed entries exceed top-k
    if k.startswith("v4_compressor"):
        kind = _v4_kind(k)
        ratio = dims.ratio(kind)
        v4.check_compressor(device, dt, dims, kind, ((2, 3 * ratio),) if kind == "csa" else ((1, 2 * ratio),))
        return "gated_pool"
    if k == "v4_indexer_topk":
        v4.check_indexer(device, dt, dims, ((2, 1, over_k), (1, 3, over_k + 2)))
        return "bmm_topk"
    if k in ("v4_csa_decode", "v4_hca_decode"):
        kind = _v4_kind(k)
        L = over_k + 1 if kind == "csa" else 5 * dims.hca_ratio + 3
        v4.check_attention(device, dt, dims, kind, ((2, L),))
        return "dense_bmm" if kind == "hca" else "gather_bmm"
    v4.check_mhc(device, dt, dims, (1, 5))
    return "bmm"


# ---- checks ----------------------------------------------------------------------------------

def check_key(case: Case) -> tuple:
    """Cases sharing a key share one check (run once per run): the kernel at one model's dims. Reads
    are raced at each size: the fastest read form in cache need not be the fastest beyond it."""
    return (case.kernel, case.model, case.dtype) + ((case.n_bytes,) if case.kernel == "read" else ())


def _small(case: Case) -> tuple[int, int, int]:
    """(B, S, L) of the check: the case's own model dims at a small batch and context."""
    B = max(1, min(case.batch, 2))
    if case.phase == "prefill":
        L = max(2, min(case.context, 48))
        return B, L, L
    L = max(case.query_len, min(case.context, 96))
    return B, case.query_len or 1, L


def race(forms: dict[str, Callable[[], object]], rounds: int = 7) -> str:
    """The fastest of several correct forms of one computation: after a warm-up call of each, `rounds`
    rounds time every form once, in an order that rotates, and the lowest median wins. Interleaved,
    so a burst of a neighbour's load slows every form alike: timed back to back (3 calls of one form,
    then of the next) a burst once made the slower read form win at every size of a run."""
    names = list(forms)
    for fn in forms.values():
        fn()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(_wall(forms[name]))
    return min(names, key=lambda n: statistics.median(times[n]))


def _wall(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def check_case(case: Case, dev: Device) -> str:
    """Run the kernel's correctness check at the case's own model dimensions (small B and L); return
    the variant chosen. Raises KernelCheckError when the kernel disagrees with its reference."""
    device, dt = dev.torch_device, torch_dtype(case)
    k = case.kernel
    B, S, L = _small(case)
    if k.startswith("mla_"):
        dims = mla_dims(case.model)
        if k == "mla_decode_absorbed":  # both forms correct, then the faster one at a real size
            mla.check(device, dt, kernels=["mla_decode_absorbed", "mla_decode_absorbed_sdpa"], dims=dims,
                      shapes=((B, S, L),))
            x = mla.make_inputs(dims, 1, 1, min(case.context, 4096), device, dt)
            return race({name: (lambda f=f: (f(**x, scale=dims.softmax_scale), dev.synchronize()))
                         for name, f in mla.ABSORBED_FORMS.items()})
        mla.check(device, dt, kernels=[k], dims=dims, shapes=((B, S, L),))
        return {"mla_decode_absorbed_einsum": "einsum", "mla_decode_absorbed_sdpa": "sdpa"}.get(k, "sdpa")
    if k.startswith("sdpa"):
        m = model_config(case.model)
        name = SDPA_KERNELS[k]
        attention.check(device, dt, kernels=[name], shapes=((B, S, L, m.num_attention_heads, m.num_key_value_heads,
                                                             m.head_dim),))
        return {"sdpa": "fold_heads" if case.phase == "decode" else "enable_gqa", "sdpa_enable_gqa": "enable_gqa",
                "sdpa_repeat": "repeat_interleave"}[name]
    if k in ("moe_loop", "moe_grouped"):
        dims = moe_dims(case.model)
        counts = (1, 5, 40)
        if k == "moe_loop":
            moe.check(device, dt, impls=[], dims_list=(dims,), token_counts=counts)
            return "loop"
        errors = []
        for impl in [i for i in MOE_GROUPED_PREFERENCE if i in moe.grouped_impls(device)]:
            try:
                moe.check(device, dt, impls=[impl], dims_list=(dims,), token_counts=counts)
                return impl
            except (KernelCheckError, RuntimeError, NotImplementedError) as exc:
                errors.append(f"{impl}: {exc}")
        raise KernelCheckError("; ".join(errors))
    if k.startswith("v4_"):
        return check_v4(case, device, dt)
    if k == "dispatch":
        return "add_1"
    calibrate.check(device, case.dtype, kernels=[k])
    if k == "read":  # which form streams fastest depends on the CPU and the size (see calibrate.READ_FORMS)
        x = calibrate.make_stream_inputs(case.n_bytes, device)
        return race({name: (lambda f=f: (f(x["src"], x["ones"]), dev.synchronize()))
                     for name, f in calibrate.READ_FORMS.items()})
    return {"gemm": "scaled_mm" if case.dtype == "fp8" else "mm", "copy": "copy_"}[k]


def count_ops(fn: Callable[[], object]) -> int:
    """Ops one call dispatches (every aten op, views included): what the per-op overhead multiplies."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            _Count.n += 1
            return func(*args, **(kwargs or {}))

    with _Count():
        fn()
    return _Count.n


# ---- inputs ------------------------------------------------------------------------------------

_moe_params: dict[tuple, dict] = {}


def _moe_params_for(spec: str, dims: moe.MoEDims, dev: Device, dt: torch.dtype) -> dict:
    """Expert weights are GiB-sized: build them once per (model, dtype, device), keep only the last."""
    key = (spec, dt, dev.kind)
    if key not in _moe_params:
        _moe_params.clear()
        _moe_params[key] = moe.make_params(dims, dev.torch_device, dt)
    return _moe_params[key]


def release() -> None:
    _moe_params.clear()


def build(case: Case, dev: Device, variant: str = "") -> Workload:
    device, dt = dev.torch_device, torch_dtype(case)
    k = case.kernel
    if k.startswith("mla_"):
        dims = mla_dims(case.model)
        x = mla.make_inputs(dims, case.batch, case.query_len, case.context, device, dt)
        fn = mla.ABSORBED_FORMS.get(variant, mla.MLA_KERNELS[k]) if k == "mla_decode_absorbed" else mla.MLA_KERNELS[k]
        return Workload(lambda: fn(**x, scale=dims.softmax_scale), variant)
    if case.family in ("attn_decode", "attn_prefill"):
        m = model_config(case.model)
        x = attention.make_inputs(case.batch, case.query_len, case.context, m.num_attention_heads,
                                  m.num_key_value_heads, m.head_dim, device, dt)
        fn = attention.ATTENTION_KERNELS[SDPA_KERNELS[k]]
        return Workload(lambda: fn(**x), variant)
    if case.family == "moe":
        dims = moe_dims(case.model)
        chunk_rows = CPU_MOE_CHUNK_ROWS if dev.kind == "cpu" else None
        p = _moe_params_for(case.model, dims, dev, dt)
        x = moe.make_tokens(case.tokens, dims.d, device, dt)
        if k == "moe_loop":
            def fn():
                return moe.moe_loop(x, p, dims.router)
        else:
            impl = variant or "bmm"

            def fn():
                return moe.moe_grouped(x, p, dims.router, impl, chunk_rows)
        _, counts = fn()  # routing is deterministic: the load of every timed call
        load = counts.tolist()
        if k == "moe_grouped" and chunk_rows:
            variant = f"{variant}/chunk{chunk_rows}"
        return Workload(fn, variant, expert_load=load, extra={"distinct_experts": sum(1 for n in load if n)})
    if k.startswith("v4_"):
        return build_v4(case, device, dt, variant)
    if k == "gemm":
        x = calibrate.make_gemm_inputs(case.m, case.n, case.k, device, case.dtype)
        return Workload(lambda: calibrate.run_gemm(x), variant)
    if k == "dispatch":
        return Workload(calibrate.make_dispatch(device), variant)
    x = calibrate.make_stream_inputs(case.n_bytes, device)
    if k == "copy":
        return Workload(lambda: calibrate.copy(x["dst"], x["src"]), variant)
    read = calibrate.READ_FORMS.get(variant, calibrate.read)
    return Workload(lambda: read(x["src"], x["ones"]), variant)


def build_v4(case: Case, device, dt, variant: str) -> Workload:
    k, dims = case.kernel, v4_dims(case.model)
    if k.startswith("v4_compressor"):
        x = v4.make_compressor_inputs(dims, _v4_kind(k), case.batch, case.query_len, device, dt)
        return Workload(lambda: v4.compress(**x), variant)
    if k == "v4_indexer_topk":
        x = v4.make_indexer_inputs(dims, case.batch, case.query_len, case.context, device, dt)
        return Workload(lambda: v4.indexer_topk(**x), variant)
    if k in ("v4_csa_decode", "v4_hca_decode"):
        x = v4.make_attention_inputs(dims, _v4_kind(k), case.batch, case.context, device, dt)
        x.pop("window_tokens")  # the reference's copy of the window
        return Workload(lambda: v4.v4_decode_attention(**x), variant)
    x = v4.make_mhc_inputs(dims, case.tokens, device, dt)
    return Workload(lambda: v4.mhc_mix_post(**x), variant)
