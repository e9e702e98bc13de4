"""Device selection (cpu, cuda, npu), per-device dtype, synchronize, out-of-memory detection,
cache flush and the noise probe's workloads. Nothing here needs a GPU."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from simulators.errors import ConfigError

from .timing import NoiseProbe

DEVICES = ("auto", "cpu", "cuda", "npu")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# fp32 on CPU: most CPUs have no fast bf16 path (AVX-512-BF16 / AMX hosts do: see `daedalus calibrate`)
DEFAULT_DTYPE = {"cpu": "fp32", "cuda": "bf16", "npu": "bf16"}
MiB = 2**20


def npu_available() -> bool:
    if importlib.util.find_spec("torch_npu") is None:
        return False
    import torch_npu  # noqa: F401  (registers torch.npu)

    return bool(getattr(torch, "npu", None) and torch.npu.is_available())


@dataclass(frozen=True)
class Device:
    kind: str  # cpu, cuda or npu
    dtype: str  # default compute dtype of the benchmarks on this device

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.kind if self.kind == "cpu" else f"{self.kind}:0")

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]

    def synchronize(self) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize()
        elif self.kind == "npu":
            torch.npu.synchronize()

    def empty_cache(self) -> None:
        if self.kind == "cuda":
            torch.cuda.empty_cache()
        elif self.kind == "npu":
            torch.npu.empty_cache()

    def name(self) -> str:
        if self.kind == "cuda":
            return torch.cuda.get_device_name(0)
        if self.kind == "npu":
            return str(torch.npu.get_device_name(0))
        return cpu_model_name()

    def last_level_cache_bytes(self) -> int | None:
        if self.kind == "cuda":
            return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0)) or None
        if self.kind == "cpu":
            return cpu_cache_bytes().get("L3") or cpu_cache_bytes().get("L2")
        return None

    def memory_bytes(self) -> int | None:
        if self.kind == "cuda":
            return int(torch.cuda.get_device_properties(0).total_memory)
        if self.kind == "npu":
            return int(torch.npu.get_device_properties(0).total_memory)
        return host_memory_bytes()


def resolve_device(name: str | None = "auto", dtype: str | None = None) -> Device:
    """--device auto|cpu|cuda|npu (auto: cuda, then npu, then cpu); --dtype overrides the default."""
    key = (name or "auto").strip().lower()
    if key not in DEVICES:
        raise ConfigError(f"--device: unknown device {name!r}; expected one of {', '.join(DEVICES)}")
    if key == "auto":
        key = "cuda" if torch.cuda.is_available() else "npu" if npu_available() else "cpu"
    elif key == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device: cuda requested but torch.cuda.is_available() is False (CPU-only torch build?)")
    elif key == "npu" and not npu_available():
        raise ConfigError("--device: npu requested but torch_npu is not importable or no NPU is visible")
    dt = dtype or DEFAULT_DTYPE[key]
    if dt not in TORCH_DTYPES:
        raise ConfigError(f"--dtype: unknown benchmark dtype {dt!r}; expected one of {', '.join(TORCH_DTYPES)}")
    return Device(key, dt)


def set_threads() -> int:
    """Fix the CPU thread count to the cores we have, so runs are comparable."""
    n = os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def is_oom(exc: BaseException) -> bool:
    """Out of memory on any device: torch.OutOfMemoryError, MemoryError, or a RuntimeError saying so."""
    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    if isinstance(exc, RuntimeError):
        msg = str(exc).lower()
        return "out of memory" in msg or "can't allocate memory" in msg or "failed to allocate" in msg
    return False


def cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _size_bytes(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG") or 0) * mult


def cpu_cache_bytes() -> dict[str, int]:
    """Cache sizes by level from sysfs (as the guest sees them), e.g. {"L1d": ..., "L2": ..., "L3": ...}."""
    out: dict[str, int] = {}
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (d / "level").read_text().strip()
            kind = (d / "type").read_text().strip()
            size = _size_bytes((d / "size").read_text())
        except OSError:
            continue
        key = f"L{level}" + ({"Data": "d", "Instruction": "i"}.get(kind, ""))
        out[key] = size
    return out


def host_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def flush_bytes(dev: Device) -> int:
    """Bytes to stream through to evict the last-level cache: twice its size, at least 64 MiB."""
    llc = dev.last_level_cache_bytes() or 32 * MiB
    return int(min(max(2 * llc, 64 * MiB), 2048 * MiB))


def stream_bytes(dev: Device) -> int:
    """Buffer size for the streaming copy / read calibration: twice the last-level cache rounded up to
    a power of two, within [256 MiB, 2 GiB] and at most 1/8 of the memory (1 GiB on accelerators)."""
    if dev.kind != "cpu":
        return 1024 * MiB
    want = 1 << max(0, int(2 * (dev.last_level_cache_bytes() or 0) - 1).bit_length())
    n = min(max(want, 256 * MiB), 2048 * MiB)
    mem = dev.memory_bytes()
    return int(min(n, mem // 8)) if mem else n


class CacheFlusher:
    """Reads and writes a buffer larger than the last-level cache: the next call starts cold."""

    def __init__(self, dev: Device, n_bytes: int | None = None):
        n = (n_bytes or flush_bytes(dev)) // 4
        self.buf = torch.ones(n, dtype=torch.float32, device=dev.torch_device)

    def __call__(self) -> None:
        self.buf.add_(1.0)


PROBE_READ_BYTES = 256 * MiB  # beyond the real LLC of the 2-vCPU host (64 MiB reads ran from cache)


def make_probe(dev: Device, **kw) -> NoiseProbe:
    """Noise probe on the device: 4 fp32 matmuls of 512^2 (compute; on a multi-core CPU also with one
    thread, for the parallel-speedup test) and a 256 MiB read (bandwidth)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = (torch.randn(512, 512, generator=g) / 512**0.5).to(dev.torch_device)
    buf = torch.ones(PROBE_READ_BYTES // 4, dtype=torch.float32, device=dev.torch_device)

    def compute() -> None:
        x = a
        for _ in range(4):
            x = torch.mm(x, a)

    serial = None
    if dev.kind == "cpu" and torch.get_num_threads() > 1:
        def serial() -> None:
            n = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                compute()
            finally:
                torch.set_num_threads(n)

    probe = NoiseProbe(compute, buf.sum, sync=dev.synchronize, compute_serial=serial, **kw)
    probe.memory_bytes = PROBE_READ_BYTES  # the bytes one memory probe reads
    return probe
