"""Roofline: time of an op on a hardware profile.

compute_time = flop / (peak[dtype] * compute_efficiency)
memory_time  = bytes / (memory_bandwidth * memory_efficiency * cache_factor)
time         = (compute_time**p + memory_time**p) ** (1/p) + overhead

cache_factor applies only when the op's bytes fit in the profile's onchip_cache_bytes (else 1); p is the
overlap exponent: p = inf is the classic max() roofline (full compute/memory overlap), p = 1 the sum (no
overlap). Speed of light: all factors 1, p = inf, no overhead (a lower bound).

Modes: `speed_of_light` uses the profile's peaks as they are (datasheet, or measured for the
host); `calibrated` applies the per-family efficiencies and per-op overheads fitted by
`daedalus validate` and stored in the profile's `calibration` block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .hardware import HardwareProfile
from .units import COMPUTE_FALLBACK

MODES = ("speed_of_light", "calibrated")
ALL_FAMILIES = "all"  # calibration key that applies to families without their own factor


# Calibration families: the kernel families the benchmark measures. Simulator ops map onto them so a
# fitted host calibration applies to whole-model predictions too.
CALIBRATION_FAMILIES = ("mla_decode", "mla_prefill", "attn_decode", "attn_prefill", "moe", "gemm", "copy")
_MOE_OPS = ("moe_router", "moe_shared", "moe_routed")
_STREAMING_OPS = ("norm", "embed", "copy")


def calibration_family(op_family: str, phase: str, attention: str) -> str:
    """The benchmark family whose fitted efficiency applies to a simulator op."""
    if op_family == "attn_core":
        return ("mla_" if attention == "mla" else "attn_") + phase
    if op_family in _MOE_OPS:
        return "moe"
    if op_family in _STREAMING_OPS:
        return "copy"
    return "gemm"  # projections, dense FFN, LM head, indexer: weight GEMMs


def resolve_peak(hw: HardwareProfile, dtype: str) -> tuple[str, float]:
    """The dtype the device actually computes in (widening when unsupported) and its peak."""
    seen = dtype
    while True:
        peak = hw.peak(seen)
        if peak is not None:
            return seen, peak
        if seen not in COMPUTE_FALLBACK:
            raise ConfigError(f"{hw.path or hw.name}: no peak_flop_per_s for {dtype} or any wider dtype")
        seen = COMPUTE_FALLBACK[seen]


@dataclass(frozen=True)
class Efficiency:
    compute: float = 1.0
    memory: float = 1.0
    overhead_s: float = 0.0
    overlap_exponent: float = float("inf")  # inf: max(compute, memory); 1: compute + memory
    cache_factor: float = 1.0  # extra memory efficiency for ops whose bytes fit in the on-chip cache


def combine(compute_s, memory_s, overlap_exponent: float) -> np.ndarray:
    """(c**p + m**p) ** (1/p), computed stably; p = inf gives max(c, m)."""
    c = np.asarray(compute_s, dtype=np.float64)
    m = np.asarray(memory_s, dtype=np.float64)
    hi = np.maximum(c, m)
    if not np.isfinite(overlap_exponent):
        return hi
    p = float(overlap_exponent)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_over_hi = np.where(hi > 0, np.minimum(c, m) / hi, 0.0)
    return hi * (1.0 + lo_over_hi**p) ** (1.0 / p)


def fits_in_cache(bytes_, hw: HardwareProfile) -> np.ndarray:
    """Whether an op's working set fits in the profile's on-chip (last-level) cache."""
    b = np.asarray(bytes_, dtype=np.float64)
    if hw.onchip_cache_bytes is None:
        return np.zeros(b.shape, dtype=bool)
    return b <= hw.onchip_cache_bytes.value


def efficiency(hw: HardwareProfile, family: str, mode: str) -> Efficiency:
    if mode not in MODES:
        raise ConfigError(f"prediction mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "speed_of_light":
        return Efficiency()
    cal = hw.calibration
    if cal is None:
        raise ConfigError(
            f"{hw.path or hw.name}: mode 'calibrated' needs a 'calibration' block "
            "(run `daedalus calibrate` and `daedalus validate` on this hardware first)"
        )

    def pick(table: dict[str, float], default: float) -> float:
        return table.get(family, table.get(ALL_FAMILIES, default))

    return Efficiency(
        compute=pick(cal.compute_efficiency, 1.0),
        memory=pick(cal.memory_efficiency, 1.0),
        overhead_s=pick(cal.overhead_s, 0.0),
        overlap_exponent=pick(cal.overlap_exponent, float("inf")),
        cache_factor=pick(cal.cache_bandwidth_factor, 1.0),
    )


@dataclass(frozen=True)
class OpTime:
    compute_dtype: str
    compute_time_s: np.ndarray
    memory_time_s: np.ndarray
    time_s: np.ndarray
    compute_bound: np.ndarray  # bool


def op_time(flop, bytes_, family: str, compute_dtype: str, hw: HardwareProfile,
            mode: str = "speed_of_light") -> OpTime:
    dtype_used, peak = resolve_peak(hw, compute_dtype)
    eff = efficiency(hw, family, mode)
    compute_s = np.asarray(flop, dtype=np.float64) / (peak * eff.compute)
    memory_eff = eff.memory * np.where(fits_in_cache(bytes_, hw), eff.cache_factor, 1.0)
    memory_s = np.asarray(bytes_, dtype=np.float64) / (hw.memory_bandwidth_bytes_per_s.value * memory_eff)
    return OpTime(
        compute_dtype=dtype_used,
        compute_time_s=compute_s,
        memory_time_s=memory_s,
        time_s=combine(compute_s, memory_s, eff.overlap_exponent) + eff.overhead_s,
        compute_bound=compute_s >= memory_s,
    )


def ridge_point_flop_per_byte(hw: HardwareProfile, dtype: str) -> float:
    """Arithmetic intensity where compute and memory time are equal."""
    return resolve_peak(hw, dtype)[1] / hw.memory_bandwidth_bytes_per_s.value
