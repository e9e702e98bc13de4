"""Hardware profiles: frozen dataclasses loaded from `hardware_profiles/*.yaml`.

Every number keeps its provenance (`Sourced`). Link bandwidths are per direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .achievable import AchievableRates, check_against_peak, parse_achievable
from .checks import MAX_TOKENS, integer
from .errors import ConfigError
from .provenance import Sourced, parse_sourced
from .units import DTYPE_BYTES

PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")


@dataclass(frozen=True)
class Link:
    """A fabric: NVLink/HCCS/UB/Infinity Fabric (scale-up) or NICs (scale-out), per device."""

    fabric: str
    bandwidth_bytes_per_s_per_direction: Sourced
    domain_devices: Sourced | None = None
    latency_s: Sourced | None = None


CALIBRATION_VERSION = 3  # 3: no write-allocate term; tiled attention pairs in CPU cases


@dataclass(frozen=True)
class Calibration:
    """Measured on the device and fitted by `daedalus validate` (`simulators.fit`): what the calibrated
    mode of `simulators.roofline.time_s` evaluates. Curves are ((x, rate), ...) sorted by x."""

    run_id: str
    # measured: achieved GEMM FLOP/s by rows per reused operand, per dtype; streaming read bytes/s by
    # working-set bytes; dispatch time of one op
    rate_by_rows: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    bandwidth_by_bytes: tuple[tuple[float, float], ...] = ()
    overhead_s_per_op: float = 0.0
    # fitted: efficiency per benchmark family against those curves, one overlap exponent
    compute_efficiency: dict[str, float] = field(default_factory=dict)
    memory_efficiency: dict[str, float] = field(default_factory=dict)
    overlap_exponent: float = float("inf")
    # families whose fitted efficiency exceeds 1.1: the model form misses something there (cache
    # reuse, fusion, shape); their calibrated predictions are not to be read as meaningful factors
    suspect_families: tuple[str, ...] = ()


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    display_name: str
    vendor: str
    peak_flop_per_s: dict[str, Sourced]
    memory_bytes: Sourced
    memory_bandwidth_bytes_per_s: Sourced
    onchip_cache_bytes: Sourced | None = None
    scaleup: Link | None = None
    scaleout: Link | None = None
    tdp_w: Sourced | None = None
    price_usd: Sourced | None = None
    price_usd_per_hour: Sourced | None = None
    aliases: tuple[str, ...] = ()
    notes: str = ""
    path: str = ""
    calibration: Calibration | None = None
    # achievable rates of published kernels (simulators.achievable); capacity as software sees it
    achievable: AchievableRates = field(default_factory=AchievableRates)
    visible_memory_bytes: Sourced | None = None  # what the runtime reports (binary GiB), ECC etc. taken off
    reserved_memory_bytes: Sourced | None = None  # runtime, communication buffers, graphs: not for weights / KV

    def peak(self, dtype: str) -> float | None:
        """Dense peak FLOP/s for a dtype, or None when unsupported."""
        entry = self.peak_flop_per_s.get(dtype)
        return None if entry is None else entry.value

    def provenance(self) -> list[dict[str, Any]]:
        """One record per sourced number: field, value, status, source, formula, note."""
        rows: list[dict[str, Any]] = []

        def add(field_name: str, s: Sourced | None) -> None:
            if s is not None:
                rows.append(
                    {
                        "hardware": self.name,
                        "field": field_name,
                        "value": s.value,
                        "status": s.status,
                        "source": s.source,
                        "formula": s.formula,
                        "note": s.note,
                        "range_low": None if s.range is None else s.range[0],
                        "range_high": None if s.range is None else s.range[1],
                    }
                )

        for dtype, s in self.peak_flop_per_s.items():
            add(f"peak_flop_per_s.{dtype}", s)
        add("memory_bytes", self.memory_bytes)
        add("memory_bandwidth_bytes_per_s", self.memory_bandwidth_bytes_per_s)
        add("onchip_cache_bytes", self.onchip_cache_bytes)
        for prefix, link in (("scaleup", self.scaleup), ("scaleout", self.scaleout)):
            if link is not None:
                add(f"{prefix}.bandwidth_bytes_per_s_per_direction", link.bandwidth_bytes_per_s_per_direction)
                add(f"{prefix}.domain_devices", link.domain_devices)
                add(f"{prefix}.latency_s", link.latency_s)
        add("tdp_w", self.tdp_w)
        add("price_usd", self.price_usd)
        add("price_usd_per_hour", self.price_usd_per_hour)
        add("visible_memory_bytes", self.visible_memory_bytes)
        add("reserved_memory_bytes", self.reserved_memory_bytes)
        for key, r in self.achievable.provenance():
            rows.append({"hardware": self.name, "field": f"achievable.{key}",
                         "value": r.value if r.value is not None else (r.fraction if r.fraction is not None
                                                                       else r.points[-1][1]),
                         "status": r.status, "source": r.source, "formula": r.formula, "note": r.note,
                         "range_low": None, "range_high": None})
        return rows


_TOP_KEYS = {
    "name", "aliases", "display_name", "vendor", "peak_flop_per_s", "memory_bytes",
    "memory_bandwidth_bytes_per_s", "onchip_cache_bytes", "scaleup", "scaleout", "tdp_w",
    "price_usd", "price_usd_per_hour", "notes", "calibration",
    "achievable", "visible_memory_bytes", "reserved_memory_bytes",
}


def _link(raw: Any, where: str) -> Link | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    if "bandwidth_bytes_per_s_per_direction" not in raw:
        hint = ""
        if any("bandwidth" in k for k in raw):
            hint = " (give per-direction bandwidth; halve a bidirectional figure)"
        raise ConfigError(f"{where}: missing required field 'bandwidth_bytes_per_s_per_direction'{hint}")
    unknown = set(raw) - {"fabric", "bandwidth_bytes_per_s_per_direction", "domain_devices", "latency_s"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    opt = {k: parse_sourced(raw[k], f"{where}.{k}") for k in ("domain_devices", "latency_s") if raw.get(k) is not None}
    if "domain_devices" in opt:  # a count: 8.5 would be truncated to 8 where it is used
        integer(opt["domain_devices"].value, f"{where}.domain_devices.value", maximum=MAX_TOKENS)
    return Link(
        fabric=str(raw.get("fabric", "")),
        bandwidth_bytes_per_s_per_direction=parse_sourced(
            raw["bandwidth_bytes_per_s_per_direction"], f"{where}.bandwidth_bytes_per_s_per_direction"
        ),
        **opt,
    )


def _number(v: Any, where: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and (
        v > minimum if strict else v >= minimum)
    if not ok:
        raise ConfigError(f"{where}: expected a finite number {'>' if strict else '>='} {minimum:g}, got {v!r}")
    return float(v)


def _curve(raw: Any, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in raw):
        raise ConfigError(f"{where}: expected a list of [x, rate] pairs")
    pts = sorted((_number(x, f"{where}[{i}][0]", strict=True), _number(y, f"{where}[{i}][1]", strict=True))
                 for i, (x, y) in enumerate(raw))
    return tuple(pts)


_CALIBRATION_KEYS = {"run_id", "version", "rate_by_rows", "bandwidth_by_bytes", "overhead_s_per_op",
                     "compute_efficiency", "memory_efficiency", "overlap_exponent", "fit"}


def _calibration(raw: Any, where: str) -> Calibration | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "run_id" not in raw:
        raise ConfigError(f"{where}: expected a mapping with run_id")
    if raw.get("version") != CALIBRATION_VERSION:
        raise ConfigError(f"{where}: calibration block of an older daedalus (version {raw.get('version')!r}, "
                          f"expected {CALIBRATION_VERSION}); re-run `daedalus validate` on its run")
    unknown = set(raw) - _CALIBRATION_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")

    def factors(key: str) -> dict[str, float]:
        block = raw.get(key) or {}
        if not isinstance(block, dict):
            raise ConfigError(f"{where}.{key}: expected a mapping of op family to number")
        return {str(fam): _number(v, f"{where}.{key}.{fam}", strict=True) for fam, v in block.items()}

    rates = raw.get("rate_by_rows") or {}
    if not isinstance(rates, dict):
        raise ConfigError(f"{where}.rate_by_rows: expected a mapping of dtype to [rows, FLOP/s] pairs")
    p = raw.get("overlap_exponent", float("inf"))
    fit = raw.get("fit") or {}
    suspect = fit.get("suspect_families", []) if isinstance(fit, dict) else None
    if not isinstance(suspect, list) or not all(isinstance(f, str) for f in suspect):
        raise ConfigError(f"{where}.fit.suspect_families: expected a list of op family names")
    return Calibration(
        run_id=str(raw["run_id"]),
        rate_by_rows={str(dt): _curve(c, f"{where}.rate_by_rows.{dt}") for dt, c in rates.items()},
        bandwidth_by_bytes=_curve(raw.get("bandwidth_by_bytes") or [], f"{where}.bandwidth_by_bytes"),
        overhead_s_per_op=_number(raw.get("overhead_s_per_op", 0.0), f"{where}.overhead_s_per_op"),
        compute_efficiency=factors("compute_efficiency"),
        memory_efficiency=factors("memory_efficiency"),
        overlap_exponent=float("inf") if p in (None, "inf", ".inf") else _number(p, f"{where}.overlap_exponent", 1.0),
        suspect_families=tuple(suspect),
    )


def parse_profile(raw: Any, path: str) -> HardwareProfile:
    """Validate a parsed YAML document into a HardwareProfile. Errors name file and field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at top level")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("name", "peak_flop_per_s", "memory_bytes", "memory_bandwidth_bytes_per_s"):
        if key not in raw:
            raise ConfigError(f"{path}: missing required field '{key}'")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: field 'name': expected a non-empty string")
    peaks_raw = raw["peak_flop_per_s"]
    if not isinstance(peaks_raw, dict) or not peaks_raw:
        raise ConfigError(f"{path}: field 'peak_flop_per_s': expected a mapping of dtype to value")
    peaks: dict[str, Sourced] = {}
    for dtype, entry in peaks_raw.items():
        if dtype not in PEAK_DTYPES:
            raise ConfigError(
                f"{path}: field 'peak_flop_per_s.{dtype}': unknown dtype; expected one of {', '.join(PEAK_DTYPES)}"
            )
        peaks[dtype] = parse_sourced(entry, f"{path}: field 'peak_flop_per_s.{dtype}'")
    if "fp16" not in peaks and "bf16" in peaks:
        peaks["fp16"] = peaks["bf16"]

    def opt(key: str) -> Sourced | None:
        return None if raw.get(key) is None else parse_sourced(raw[key], f"{path}: field '{key}'")

    achievable = parse_achievable(raw.get("achievable"), f"{path}: field 'achievable'")
    check_against_peak(achievable, {k: v.value for k, v in peaks.items()},
                       parse_sourced(raw["memory_bandwidth_bytes_per_s"], f"{path}: field "
                                     "'memory_bandwidth_bytes_per_s'").value, f"{path}: field 'achievable'")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(f"{path}: field 'aliases': expected a list of strings")
    return HardwareProfile(
        name=name,
        display_name=str(raw.get("display_name", name)),
        vendor=str(raw.get("vendor", "")),
        peak_flop_per_s=peaks,
        memory_bytes=parse_sourced(raw["memory_bytes"], f"{path}: field 'memory_bytes'"),
        memory_bandwidth_bytes_per_s=parse_sourced(
            raw["memory_bandwidth_bytes_per_s"], f"{path}: field 'memory_bandwidth_bytes_per_s'"
        ),
        onchip_cache_bytes=opt("onchip_cache_bytes"),
        scaleup=_link(raw.get("scaleup"), f"{path}: field 'scaleup'"),
        scaleout=_link(raw.get("scaleout"), f"{path}: field 'scaleout'"),
        tdp_w=opt("tdp_w"),
        price_usd=opt("price_usd"),
        price_usd_per_hour=opt("price_usd_per_hour"),
        aliases=tuple(a.lower() for a in aliases),
        notes=str(raw.get("notes") or ""),
        path=path,
        calibration=_calibration(raw.get("calibration"), f"{path}: field 'calibration'"),
        achievable=achievable,
        visible_memory_bytes=opt("visible_memory_bytes"),
        reserved_memory_bytes=opt("reserved_memory_bytes"),
    )


def read_yaml(path: Path) -> Any:
    """Read a YAML/JSON file; every refusal is a one-line ConfigError naming the file (safe_load)."""
    from .safe_load import read_data

    return read_data(path)


def load_profile(path: str | Path) -> HardwareProfile:
    path = Path(path)
    return parse_profile(read_yaml(path), str(path))


def profiles_dir() -> Path:
    import hardware_profiles

    return Path(hardware_profiles.__file__).parent


def builtin_profiles() -> dict[str, Path]:
    """Name -> file of the shipped profiles, with aliases."""
    out: dict[str, Path] = {}
    for p in sorted(profiles_dir().glob("*.yaml")):
        out[p.stem] = p
    return out


def resolve_profile(name_or_path: str) -> HardwareProfile:
    """A shipped profile name (or alias), or a path to a hardware YAML."""
    from .safe_load import exists

    p = Path(name_or_path)
    if p.suffix.lower() in (".yaml", ".yml", ".json") or exists(p):
        if not exists(p):
            raise ConfigError(f"{name_or_path}: hardware file not found")
        return load_profile(p)
    key = name_or_path.strip().lower()
    files = builtin_profiles()
    if key in files:
        return load_profile(files[key])
    for path in files.values():
        prof = load_profile(path)
        if key in prof.aliases:
            return prof
    raise ConfigError(f"unknown hardware {name_or_path!r}; valid names: {', '.join(files)}")


assert set(PEAK_DTYPES) <= set(DTYPE_BYTES)
