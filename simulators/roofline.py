"""Roofline: the one time function of an op on a hardware profile, in every prediction mode.

    rate      = peak[dtype]                          (speed of light)
              = rate_by_rows[dtype](rows)            (calibrated: the measured GEMM rate at the op's
                                                      rows per reused operand, log-log interpolated)
    bandwidth = memory_bandwidth                     (speed of light)
              = bandwidth_by_bytes(bytes)            (calibrated: the measured streaming-read rate at
                                                      the op's working set, cache- to DRAM-resident)
    compute_s = flop / (rate * compute_efficiency)
    memory_s  = bytes / (bandwidth * memory_efficiency)
    time_s    = (compute_s**p + memory_s**p) ** (1/p) + n_ops * overhead_s

p is the compute/memory overlap exponent (p = inf: max, full overlap; p = 1: the sum, none), fitted
once per device; overhead_s is the measured dispatch time of one op; the efficiencies are fitted per
benchmark family by `simulators.fit`. Speed of light is the same function with every factor 1, no
curves, p = inf and no overhead: a lower bound on time. The achievable mode is the same function with
the rates published kernels reach on the device (`simulators.achievable`: rate-by-rows curves of
DeepGEMM-like GEMMs, FlashMLA-like attention bandwidth and compute), p = inf, no overhead. Between the two bounds of the field's reasoning (max and sum, jax-ml/scaling-book `roofline.md`), `t_lower_s`/`t_upper_s` are reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .achievable import factors as achievable_factors
from .errors import ConfigError
from .hardware import HardwareProfile
from .units import COMPUTE_FALLBACK


class Mode(str, Enum):
    """Prediction modes, named once."""

    SPEED_OF_LIGHT = "speed_of_light"  # datasheet peaks (or measured peaks, for a measured profile)
    CALIBRATED = "calibrated"  # measured rate curves and fitted efficiencies of the profile's calibration
    ACHIEVABLE = "achievable"  # rates published kernels reach on the device (profile `achievable:` block)

    @classmethod
    def parse(cls, value: str | Mode, what: str = "mode") -> Mode:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"{what} {value!r}: expected one of {', '.join(m.value for m in cls)}") from None


MODES = tuple(m.value for m in Mode)
ALL_FAMILIES = "all"  # calibration key that applies to families without their own factor

# Calibration families: the kernel families the benchmark measures. Simulator ops map onto them so a
# fitted host calibration applies to whole-model predictions too.
CALIBRATION_FAMILIES = ("mla_decode_absorbed", "mla_decode_naive", "mla_prefill", "attn_decode", "attn_prefill",
                        "moe", "v4_compressor", "v4_indexer", "v4_attn", "v4_mhc", "gemm", "read", "copy")
_MOE_OPS = ("moe_router", "moe_shared", "moe_routed")
_STREAMING_OPS = ("norm", "embed", "copy")


def calibration_family(op_family: str, phase: str, attention: str, mla_mode: str = "absorbed") -> str:
    """The benchmark family whose fitted efficiency applies to a simulator op. DeepSeek-V4
    (attention csa_hca): its core attention (CSA, HCA and window-only layers, both phases; measured
    at decode), the indexer (measured: the scores + top-k; its projections, a small share at long
    context, take the same factor), the compressors and mHC have their own families."""
    if op_family == "compressor":
        return "v4_compressor"
    if op_family == "mhc":
        return "v4_mhc"
    if attention == "csa_hca" and op_family in ("attn_core", "indexer"):
        return "v4_attn" if op_family == "attn_core" else "v4_indexer"
    if op_family == "attn_core":
        if attention == "mla":
            return f"mla_decode_{mla_mode}" if phase == "decode" else "mla_prefill"
        return f"attn_{phase}"
    if op_family in _MOE_OPS:
        return "moe"
    if op_family in _STREAMING_OPS:
        return "read"
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


Curve = tuple[tuple[float, float], ...]  # ((x, rate), ...) sorted by x


@dataclass(frozen=True)
class Efficiency:
    """Everything the time function needs beyond FLOPs and bytes: one type for every mode."""

    compute: float = 1.0
    memory: float = 1.0
    overlap_exponent: float = math.inf  # inf: max(compute, memory); 1: compute + memory
    overhead_s: float = 0.0  # per dispatched op
    rate_by_rows: Curve = ()  # achieved FLOP/s by rows per reused operand, for the op's dtype
    bandwidth_by_bytes: Curve = ()  # achieved streaming bytes/s by working-set bytes
    # Written bytes move once, as read ones do: no write-allocate term. Beyond the last-level cache a
    # torch copy_ moves its read + written bytes at about the read bandwidth on every host kind
    # measured, where a write-allocate cache would give ~0.67 of it (copy / paired probe read on the
    # 2-vCPU AMD EPYC Zen 4: 1.00-1.23 over 12 copies of three runs, 0.66-0.98 over 6 of two earlier
    # ones; Ice Lake 17.7 vs 18.5 GB/s, Xeon AMX 26.8 vs 30, the older AMD 34-37 vs its mv-based read).


def interp_curve(x, curve: Curve, default: float) -> np.ndarray:
    """Piecewise log-log interpolation of a measured rate curve, clamped at its ends; `default` where
    the curve is empty. x = inf takes the last point (the largest measured size)."""
    x = np.asarray(x, dtype=np.float64)
    if not curve:
        return np.broadcast_arrays(x, np.asarray(default, dtype=np.float64))[1].astype(np.float64)
    xs = np.log([c[0] for c in curve])
    ys = np.log([c[1] for c in curve])
    lx = np.log(np.clip(x, np.exp(xs[0]), np.exp(xs[-1])))
    return np.exp(np.interp(lx, xs, ys))


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


@dataclass(frozen=True)
class OpTime:
    compute_dtype: str
    compute_time_s: np.ndarray
    memory_time_s: np.ndarray
    time_s: np.ndarray
    compute_bound: np.ndarray  # bool

    @property
    def t_lower_s(self) -> np.ndarray:
        """Full overlap: max(compute, memory)."""
        return np.maximum(self.compute_time_s, self.memory_time_s)

    @property
    def t_upper_s(self) -> np.ndarray:
        """No overlap: compute + memory."""
        return self.compute_time_s + self.memory_time_s


def dram_share(working_set_bytes, cache_bytes: float) -> np.ndarray:
    """Share of a working set that cannot stay in a cache of `cache_bytes` (0 inside, -> 1 far beyond)."""
    ws = np.asarray(working_set_bytes, dtype=np.float64)
    if not np.isfinite(cache_bytes):
        return np.zeros_like(ws)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.where(ws > 0, 1.0 - cache_bytes / ws, 0.0), 0.0, 1.0)


def time_s(flop, bytes_, peak_flop_per_s: float, bandwidth_bytes_per_s: float, eff: Efficiency, *,
           rows=np.inf, n_ops=1.0, working_set_bytes=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """THE time function: (compute_s, memory_s, time_s) of ops with `flop` and `bytes_` (read +
    written; arrays broadcast). `rows` (rows per reused operand) picks the compute rate on the measured
    curve, `working_set_bytes` the bandwidth (default: bytes_; inf: DRAM-resident, e.g. a case measured
    after a cache flush)."""
    rate = interp_curve(rows, eff.rate_by_rows, peak_flop_per_s)
    ws = bytes_ if working_set_bytes is None else working_set_bytes
    bw = interp_curve(ws, eff.bandwidth_by_bytes, bandwidth_bytes_per_s)
    compute_s = np.asarray(flop, dtype=np.float64) / (rate * eff.compute)
    memory_s = np.asarray(bytes_, dtype=np.float64) / (bw * eff.memory)
    total = combine(compute_s, memory_s, eff.overlap_exponent) + np.asarray(n_ops, dtype=np.float64) * eff.overhead_s
    return compute_s, memory_s, total


def efficiency(hw: HardwareProfile, family: str, mode: str | Mode, compute_dtype: str | None = None) -> Efficiency:
    """The Efficiency of `family` ops in `mode` on `hw` (the rate curve of `compute_dtype`)."""
    mode = Mode.parse(mode)
    if mode is Mode.SPEED_OF_LIGHT:
        return Efficiency()
    if mode is Mode.ACHIEVABLE:  # published kernel rates; max(compute, memory); no dispatch overhead
        dtype = compute_dtype or "bf16"
        peak = resolve_peak(hw, dtype)[1]
        c, m, curve = achievable_factors(hw.achievable, family, dtype, peak, hw.memory_bandwidth_bytes_per_s.value)
        return Efficiency(compute=c, memory=m, rate_by_rows=curve)
    cal = hw.calibration
    if cal is None or not cal.compute_efficiency:
        raise ConfigError(
            f"{hw.path or hw.name}: mode 'calibrated' needs a fitted 'calibration' block "
            "(run `daedalus run`, or `daedalus calibrate`, `bench` and `validate`, on this hardware first)"
        )

    def pick(table: dict[str, float]) -> float:
        return table.get(family, table.get(ALL_FAMILIES, 1.0))

    return Efficiency(
        compute=pick(cal.compute_efficiency),
        memory=pick(cal.memory_efficiency),
        overlap_exponent=cal.overlap_exponent,
        overhead_s=cal.overhead_s_per_op,
        rate_by_rows=cal.rate_by_rows.get(compute_dtype or "", ()),
        bandwidth_by_bytes=cal.bandwidth_by_bytes,
    )


def op_time(flop, bytes_, family: str, compute_dtype: str, hw: HardwareProfile,
            mode: str | Mode = Mode.SPEED_OF_LIGHT, *, rows=np.inf, n_ops=1.0, working_set_bytes=None) -> OpTime:
    dtype_used, peak = resolve_peak(hw, compute_dtype)
    eff = efficiency(hw, family, mode, dtype_used)
    c, m, t = time_s(flop, bytes_, peak, hw.memory_bandwidth_bytes_per_s.value, eff, rows=rows, n_ops=n_ops,
                     working_set_bytes=working_set_bytes)
    return OpTime(compute_dtype=dtype_used, compute_time_s=c, memory_time_s=m, time_s=t, compute_bound=c >= m)


def ridge_point_flop_per_byte(hw: HardwareProfile, dtype: str) -> float:
    """Arithmetic intensity where compute and memory time are equal."""
    return resolve_peak(hw, dtype)[1] / hw.memory_bandwidth_bytes_per_s.value
