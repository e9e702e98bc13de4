"""One spec per benchmark kernel: its family, what the simulator counts for it, its reference check
and its builder. Adding a kernel = one `KernelSpec` here + its implementation under `kernels/`.

torch-free at import (the specs point at `bench.workloads` functions that are imported when first
called), so validation and the report can read families and roles without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulators.errors import ConfigError
from simulators.ops import CausalTiles

# PyTorch's CPU flash attention (pytorch/pytorch aten/src/ATen/native/cpu/FlashAttentionKernel.cpp,
# flash_attention_kernel_impl): query blocks of 256 rows from S 768, 64 from S 192, else 32; key
# blocks of 512; with is_causal each query block computes every key block it reaches, whole. Causal
# over full time, H 32, Dh 128, fp32, 2-vCPU AMD EPYC (Zen 4): S 512 1.00, 768 0.80, 1024 0.75,
# 1536 0.66, 2048 0.62 (`computed_pairs` / S^2: 1.00, 0.78, 0.75, 0.67, 0.625).
TORCH_CPU_FLASH_TILES = CausalTiles(q_tiles=((768, 256), (192, 64), (0, 32)), kv_tile=512)


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
    torch_sdpa: bool = False  # its attention is torch's scaled_dot_product_attention (tiles: `causal_tiles`)
    check: Callable = _lazy("check_case")  # (case, device) -> variant; raises KernelCheckError
    build: Callable = _lazy("build")  # (case, device, variant) -> Workload


_ATTN = ("attn_core",)
_MOE = ("moe_router", "moe_shared", "moe_routed")
_SPECS = (
    KernelSpec("mla_decode_absorbed", "mla_decode_absorbed", _ATTN),
    KernelSpec("mla_decode_absorbed_einsum", "mla_decode_absorbed", _ATTN, comparison=True),
    KernelSpec("mla_decode_absorbed_sdpa", "mla_decode_absorbed", _ATTN, comparison=True, torch_sdpa=True),
    KernelSpec("mla_decode_naive", "mla_decode_naive", _ATTN, mla_mode="naive", torch_sdpa=True),
    KernelSpec("mla_prefill", "mla_prefill", _ATTN, mla_mode="naive", torch_sdpa=True),
    KernelSpec("sdpa_decode", "attn_decode", _ATTN, torch_sdpa=True),
    KernelSpec("sdpa_gqa_decode", "attn_decode", _ATTN, comparison=True, torch_sdpa=True),
    KernelSpec("sdpa_repeat_decode", "attn_decode", _ATTN, comparison=True, torch_sdpa=True),
    KernelSpec("sdpa_prefill", "attn_prefill", _ATTN, torch_sdpa=True),
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


def causal_tiles(ks: KernelSpec, device_kind: str) -> CausalTiles | None:
    """The tiles of the kernel's attention on this device: PyTorch's CPU flash attention on a CPU;
    None elsewhere (exact causal pairs: no tile sizes are recorded for the CUDA or NPU kernels)."""
    return TORCH_CPU_FLASH_TILES if ks.torch_sdpa and device_kind == "cpu" else None


def spec(kernel: str) -> KernelSpec:
    try:
        return KERNELS[kernel]
    except KeyError:
        raise ConfigError(f"case kernel {kernel!r}: expected one of {', '.join(KERNELS)}") from None
