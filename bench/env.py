"""The environment recorded with every run (env.json): device, cores, threads, versions, git
commit, time, and on NVIDIA GPUs the driver, clocks, power and temperature through NVML."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from .device import Device, cpu_cache_bytes, cpu_model_name, host_memory_bytes

CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile")
REPO_ROOT = Path(__file__).resolve().parent.parent


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """HEAD commit and whether the tree has changes; None where git or commits are missing."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in CPU_FLAGS_OF_INTEREST if f in have]
    except OSError:
        pass
    return []


LSCPU_LEFT_OUT = ("Flags", "Vulnerability")  # flags: cpu_flags keeps those that pick kernels


def lscpu() -> dict[str, str] | None:
    """`lscpu` as field -> value (family, model, stepping, caches, hypervisor...): the CPU kind changes
    between machines that print the same model name ('AMD EPYC' is Zen 3 on one guest, Zen 4 on
    another). None where lscpu is missing."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    fields = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and value.strip() and not key.startswith(LSCPU_LEFT_OUT):
            fields[key] = value.strip()
    return fields


def torch_cpu_capability() -> str | None:
    """The vector ISA that ATen's CPU kernels dispatch to here (DEFAULT, AVX2, AVX512, ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return None


def nvml_info() -> dict[str, Any]:
    """Driver, clocks (MHz), power (W) and temperature (C) per GPU; {"available": False, ...} when NVML
    cannot load (no driver: pynvml.nvmlInit raises NVMLError_LibraryNotFound)."""
    try:
        import pynvml
    except ImportError as exc:
        return {"available": False, "error": f"pynvml not importable: {exc}"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    try:
        def get(fn, *args):
            try:
                v = fn(*args)
                return v.decode() if isinstance(v, bytes) else v
            except Exception:
                return None

        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            power_mw = get(pynvml.nvmlDeviceGetPowerUsage, h)
            limit_mw = get(pynvml.nvmlDeviceGetEnforcedPowerLimit, h)
            gpus.append({
                "index": i,
                "name": get(pynvml.nvmlDeviceGetName, h),
                "sm_clock_mhz": get(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM),
                "sm_clock_max_mhz": get(pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_SM),
                "mem_clock_mhz": get(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM),
                "mem_clock_max_mhz": get(pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_MEM),
                "power_w": None if power_mw is None else power_mw / 1e3,
                "power_limit_w": None if limit_mw is None else limit_mw / 1e3,
                "temperature_c": get(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU),
            })
        return {"available": True, "driver": get(pynvml.nvmlSystemGetDriverVersion), "gpus": gpus}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def collect_env(dev: Device, threads: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "time_utc": utc_now(),
        "device": dev.kind,
        "device_name": dev.name(),
        "dtype": dev.dtype,
        "cores": os.cpu_count(),
        "threads": threads,
        "cpu": cpu_model_name(),
        "cpu_flags": cpu_flags(),
        "cpu_cache_bytes": cpu_cache_bytes(),
        "lscpu": lscpu(),
        "torch_cpu_capability": torch_cpu_capability(),
        "host_memory_bytes": host_memory_bytes(),
        "device_memory_bytes": dev.memory_bytes(),
        "device_llc_bytes": dev.last_level_cache_bytes(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git": git_commit(),
        "nvml": nvml_info(),
        "argv": sys.argv[1:],
    }
    if extra:
        env.update(extra)
    return env
