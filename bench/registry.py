"""One spec per benchmark kernel: its family, what the simulator counts for it, its reference check
and its builder. Adding a kernel = one `KernelSpec` here + its implementation under `kernels/`.

torch-free at import (the specs point at `bench.workloads` functions that are imported when first
called), so validation and the report can read families and roles without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulators.errors import ConfigError


def _lazy(name: str) -> Callable:
    """`bench.workloads.<name>`, imported on first call (torch only when measuring)."""

    def call(*args, **kwargs):
        from . import workloads

        return getattr(workloads, name)(*args, **kwargs)

    call.__name__ = name
    return call


@dataclass(frozen=True)
class KernelSpec:
    name: str
    family: str  # the benchmark family: scored and fitted as one (simulators.roofline.CALIBRATION_FAMILIES)
    sim_families: tuple[str, ...] = ()  # simulator op families one call executes (() = gemm/stream cost)
    sim_ops: tuple[str, ...] = ()  # only these ops of those families (e.g. csa_core of attn_core); () = all
    mla_mode: str = "absorbed"  # how the simulator costs an MLA kernel
    comparison: bool = False  # an alternative form timed for comparison, left out of scores
    check: Callable = _lazy("check_case")  # (case, device) -> variant; raises KernelCheckError
    build: Callable = _lazy("build")  # (case, device, variant) -> Workload


_ATTN = ("attn_core",)
_MOE = ("moe_router", "moe_shared", "moe_routed")
_SPECS = (
    KernelSpec("mla_decode_absorbed", "mla_decode_absorbed", _ATTN),
    KernelSpec("mla_decode_absorbed_einsum", "mla_decode_absorbed", _ATTN, comparison=True),
    KernelSpec("mla_decode_absorbed_sdpa", "mla_decode_absorbed", _ATTN, comparison=True),
    KernelSpec("mla_decode_naive", "mla_decode_naive", _ATTN, mla_mode="naive"),
    KernelSpec("mla_prefill", "mla_prefill", _ATTN, mla_mode="naive"),
    KernelSpec("sdpa_decode", "attn_decode", _ATTN),
    KernelSpec("sdpa_gqa_decode", "attn_decode", _ATTN, comparison=True),
    KernelSpec("sdpa_repeat_decode", "attn_decode", _ATTN, comparison=True),
    KernelSpec("sdpa_prefill", "attn_prefill", _ATTN),
    KernelSpec("moe_loop", "moe", _MOE),
    KernelSpec("moe_grouped", "moe", _MOE),
    # DeepSeek-V4 (bench/kernels/v4.py): one kernel = one simulator op of one layer kind
    KernelSpec("v4_compressor_csa", "v4_compressor", ("compressor",), sim_ops=("csa_compressor",)),
    KernelSpec("v4_compressor_hca", "v4_compressor", ("compressor",), sim_ops=("hca_compressor",)),
    KernelSpec("v4_indexer_topk", "v4_indexer", ("indexer",), sim_ops=("indexer_scores",)),
    KernelSpec("v4_csa_decode", "v4_attn", _ATTN, sim_ops=("csa_core",)),
    KernelSpec("v4_hca_decode", "v4_attn", _ATTN, sim_ops=("hca_core",)),
    KernelSpec("v4_mhc", "v4_mhc", ("mhc",)),  # mhc_mix + mhc_post of one sub-layer
    KernelSpec("gemm", "gemm"),
    KernelSpec("copy", "copy"),
    KernelSpec("read", "read"),
    KernelSpec("dispatch", "dispatch"),  # many tiny ops: the per-op dispatch time (a reference row only)
)
KERNELS: dict[str, KernelSpec] = {s.name: s for s in _SPECS}
COMPARISON_KERNELS = frozenset(s.name for s in _SPECS if s.comparison)


def spec(kernel: str) -> KernelSpec:
    try:
        return KERNELS[kernel]
    except KeyError:
        raise ConfigError(f"case kernel {kernel!r}: expected one of {', '.join(KERNELS)}") from None
