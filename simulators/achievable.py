"""Achievable rates: what published kernels reach on a device, per op family (the third prediction
mode of `simulators.roofline.time_s`, between speed of light and a host calibration).

A profile's `achievable:` block names, per op family, the rate a published kernel benchmark reached
on that device, with its source and status:

    gemm:                    {<dtype>: RATE}    dense weight GEMMs (projections, dense FFN, LM head)
    gemm_bandwidth:          RATE               weight-streaming bandwidth of small-M GEMMs
    grouped_gemm:            {<dtype>: RATE}    routed-expert grouped GEMMs (MoE)
    grouped_gemm_bandwidth:  RATE
    attention_decode_compute / attention_decode_bandwidth / attention_prefill_compute: RATE
    streaming_bandwidth:     RATE               norms, embeddings, copies
    scaleup_bandwidth:       RATE               effective all-to-all bandwidth per direction, scale-up
    scaleout_bandwidth:      RATE               effective EP all-to-all per direction over the NICs,
                                                low-latency kernels (decode)
    scaleout_bandwidth_high_throughput: RATE    the same, high-throughput kernels (prefill)
    all_reduce_bandwidth:    RATE               ring all-reduce bus bandwidth per direction, scale-up
    fp8_checkpoint_compute:  int8               FP8 checkpoints run as W8A8 INT8 GEMMs (Ascend)

RATE is a mapping with `status` and `source` and exactly one of
    value:    an absolute rate (FLOP/s or bytes/s), e.g. FlashMLA's 3000 GB/s;
    points:   [[rows, FLOP/s], ...], the rate by rows per reused operand (DeepGEMM's table by M);
    fraction: a share of the profile's nominal figure (peak, HBM or link bandwidth): the labelled
              default derate where nothing is published for the device.
A family missing from the block takes DEFAULT_FRACTION[family] of the nominal figure and is listed
in `AchievableRates.assumed` (shown by `plan` as an assumption). Nothing is ever copied from another
device silently: a figure measured elsewhere appears only with its own source line saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .provenance import STATUSES

Curve = tuple[tuple[float, float], ...]

# Labelled default derates (status estimate): used where no kernel benchmark for the device is
# published. Chosen near the published H800 fractions (DeepGEMM FP8 GEMM at M=4096: ~0.58 of the FP8
# peak; small-M GEMM bandwidth ~0.69 of HBM; FlashMLA 0.67 of BF16 peak and 0.90 of HBM; DeepEP
# low-latency RDMA 39 of 50 GB/s = 0.78, intranode 153-158 of the 200 GB/s NVLink per direction);
# they are not a measurement of any other device.
DEFAULT_FRACTION: dict[str, float] = {
    "gemm": 0.6,
    "gemm_bandwidth": 0.7,
    "grouped_gemm": 0.5,
    "grouped_gemm_bandwidth": 0.65,
    "attention_decode_compute": 0.6,
    "attention_decode_bandwidth": 0.85,
    "attention_prefill_compute": 0.6,
    "streaming_bandwidth": 0.85,
    "scaleup_bandwidth": 0.78,
    "scaleout_bandwidth": 0.78,
    "scaleout_bandwidth_high_throughput": 0.85,
    "all_reduce_bandwidth": 0.78,
}
DEFAULT_SOURCE = ("default derate: no published kernel measurement for this device and op family "
                  "(simulators/achievable.py DEFAULT_FRACTION)")
PER_DTYPE = ("gemm", "grouped_gemm")
RATE_KEYS = tuple(DEFAULT_FRACTION)
FP8_CHECKPOINT_PATHS = ("native", "int8")


@dataclass(frozen=True)
class Rate:
    """One achievable rate: absolute `value`, a curve of `points` by rows, or a `fraction` of nominal."""

    status: str
    source: str
    value: float | None = None
    points: Curve = ()
    fraction: float | None = None
    formula: str | None = None
    note: str | None = None

    def absolute(self, nominal: float) -> float:
        """The rate in FLOP/s or bytes/s (a curve gives its largest-rows point)."""
        if self.value is not None:
            return self.value
        if self.points:
            return self.points[-1][1]
        return float(self.fraction) * nominal

    def curve(self, nominal: float) -> Curve:
        """The rate by rows ((rows, rate), ...); a scalar is a one-point (flat) curve."""
        return self.points or ((1.0, self.absolute(nominal)),)


@dataclass(frozen=True)
class AchievableRates:
    rates: dict[str, Rate] = field(default_factory=dict)  # family -> Rate, or "gemm.fp8" -> Rate
    fp8_checkpoint_compute: str = "native"
    assumed: tuple[str, ...] = ()  # families filled from DEFAULT_FRACTION

    def rate(self, family: str, dtype: str | None = None) -> Rate:
        """The Rate of a family (per-dtype families look up `family.dtype`); the labelled default
        derate when the profile has none."""
        key = f"{family}.{dtype}" if family in PER_DTYPE and dtype else family
        if key in self.rates:
            return self.rates[key]
        return Rate(status="estimate", source=DEFAULT_SOURCE, fraction=DEFAULT_FRACTION[family])

    def provenance(self) -> list[tuple[str, Rate]]:
        return sorted(self.rates.items())


def _num(v: Any, where: str) -> float:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ConfigError(f"{where}: expected a positive number, got {v!r}")
    return float(v)


def parse_rate(raw: Any, where: str) -> Rate:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with status, source and one of value, points, fraction")
    unknown = set(raw) - {"value", "points", "fraction", "status", "source", "formula", "note"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("status", "source"):
        if not raw.get(key):
            raise ConfigError(f"{where}: missing required key '{key}'")
    if raw["status"] not in STATUSES:
        raise ConfigError(f"{where}.status: expected one of {', '.join(STATUSES)}, got {raw['status']!r}")
    given = [k for k in ("value", "points", "fraction") if raw.get(k) is not None]
    if len(given) != 1:
        raise ConfigError(f"{where}: expected exactly one of value, points, fraction; got {given or 'none'}")
    kw: dict[str, Any] = {"status": raw["status"], "source": str(raw["source"]).strip(),
                          "formula": raw.get("formula"), "note": raw.get("note")}
    if given[0] == "value":
        kw["value"] = _num(raw["value"], f"{where}.value")
    elif given[0] == "fraction":
        f = _num(raw["fraction"], f"{where}.fraction")
        if f > 1:
            raise ConfigError(f"{where}.fraction: expected a share of the nominal figure in (0, 1], got {f}")
        kw["fraction"] = f
    else:
        pts = raw["points"]
        if not isinstance(pts, list) or not pts or not all(isinstance(p, list) and len(p) == 2 for p in pts):
            raise ConfigError(f"{where}.points: expected a list of [rows, rate] pairs")
        kw["points"] = tuple(sorted((_num(x, f"{where}.points[{i}][0]"), _num(y, f"{where}.points[{i}][1]"))
                                    for i, (x, y) in enumerate(pts)))
    return Rate(**kw)


def parse_achievable(raw: Any, where: str) -> AchievableRates:
    """Validate an `achievable:` block (None: every family at its labelled default derate)."""
    if raw is None:
        return AchievableRates(assumed=RATE_KEYS)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of op family to rate")
    unknown = set(raw) - set(RATE_KEYS) - {"fp8_checkpoint_compute", "notes"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; expected some of "
                          f"{', '.join(RATE_KEYS)}, fp8_checkpoint_compute")
    rates: dict[str, Rate] = {}
    for fam in RATE_KEYS:
        entry = raw.get(fam)
        if entry is None:
            continue
        if fam in PER_DTYPE:
            if not isinstance(entry, dict) or "status" in entry:
                raise ConfigError(f"{where}.{fam}: expected a mapping of dtype to rate")
            for dt, r in entry.items():
                rates[f"{fam}.{dt}"] = parse_rate(r, f"{where}.{fam}.{dt}")
        else:
            rates[fam] = parse_rate(entry, f"{where}.{fam}")
    path = raw.get("fp8_checkpoint_compute", "native")
    if path not in FP8_CHECKPOINT_PATHS:
        raise ConfigError(f"{where}.fp8_checkpoint_compute: expected one of {', '.join(FP8_CHECKPOINT_PATHS)}, "
                          f"got {path!r}")
    assumed = tuple(f for f in RATE_KEYS if f not in rates and not any(k.startswith(f + ".") for k in rates))
    return AchievableRates(rates=rates, fp8_checkpoint_compute=path, assumed=assumed)


# -------------------------------------------------------------------- the roofline's view of it

def attention_or_gemm(calibration_family: str) -> str:
    """Achievable family of a roofline calibration family."""
    if calibration_family.startswith("mla_decode") or calibration_family == "attn_decode":
        return "attention_decode"
    if calibration_family in ("mla_prefill", "attn_prefill"):
        return "attention_prefill"
    if calibration_family == "moe":
        return "grouped_gemm"
    if calibration_family in ("read", "copy"):
        return "streaming"
    return "gemm"


def factors(ach: AchievableRates, calibration_family: str, dtype: str, peak_flop_per_s: float,
            bandwidth_bytes_per_s: float) -> tuple[float, float, Curve]:
    """(compute multiplier, memory multiplier, absolute rate-by-rows curve) of the time function in
    the achievable mode for ops of `calibration_family` computing in `dtype`."""
    fam = attention_or_gemm(calibration_family)
    if fam in ("gemm", "grouped_gemm"):
        r = ach.rate(fam, dtype)
        bw = ach.rate(f"{fam}_bandwidth").absolute(bandwidth_bytes_per_s)
        return 1.0, bw / bandwidth_bytes_per_s, r.curve(peak_flop_per_s)
    if fam == "attention_decode":
        c = ach.rate("attention_decode_compute").absolute(peak_flop_per_s)
        bw = ach.rate("attention_decode_bandwidth").absolute(bandwidth_bytes_per_s)
        return c / peak_flop_per_s, bw / bandwidth_bytes_per_s, ()
    if fam == "attention_prefill":
        c = ach.rate("attention_prefill_compute").absolute(peak_flop_per_s)
        bw = ach.rate("streaming_bandwidth").absolute(bandwidth_bytes_per_s)
        return c / peak_flop_per_s, bw / bandwidth_bytes_per_s, ()
    bw = ach.rate("streaming_bandwidth").absolute(bandwidth_bytes_per_s)
    c = ach.rate("gemm", dtype).absolute(peak_flop_per_s)
    return c / peak_flop_per_s, bw / bandwidth_bytes_per_s, ()


def check_against_peak(ach: AchievableRates, peaks: dict[str, float], bandwidth: float, where: str) -> None:
    """An achievable rate above its nominal figure is a data error (one line, naming the field)."""
    for key, r in ach.rates.items():
        fam, _, dt = key.partition(".")
        if fam in PER_DTYPE:
            nominal = peaks.get(dt)
            if nominal is None:
                raise ConfigError(f"{where}.{fam}.{dt}: the profile has no peak_flop_per_s.{dt}")
        elif fam.endswith("_compute"):
            nominal = peaks.get("bf16")
        elif fam in ("gemm_bandwidth", "grouped_gemm_bandwidth", "attention_decode_bandwidth",
                     "streaming_bandwidth"):
            nominal = bandwidth
        else:
            continue  # link rates are checked against the link by the comm model
        if nominal is not None and r.absolute(nominal) > nominal * (1 + 1e-9):
            raise ConfigError(f"{where}.{key}: achievable rate {r.absolute(nominal):.4g} exceeds the nominal "
                              f"{nominal:.4g}")
