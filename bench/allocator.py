"""The host allocator while measuring: freed memory kept for reuse, as an inference engine keeps it.

glibc's malloc hands every block above its mmap threshold (dynamic, at most 32 MiB on 64-bit) back to
the kernel when it is freed, so a kernel that allocates a large temporary on every call pays the
first-touch page faults of that memory on every call: time that belongs to the host's allocator
policy, not to the kernel, and that no FLOP or byte count prices. PyTorch's CUDA and NPU caching
allocators keep freed blocks, so accelerator timings never pay it. On a CPU three glibc tunables do
the same: no mmap for large blocks (mmap_max 0), no trimming of the heap below 4 GiB, and no
per-thread cache of small blocks (tcache_count 0: a small block freed next to a large one, kept in
that cache, stops the two from merging, and the next large request, a few bytes larger for its
alignment, grows the heap into fresh pages instead). glibc reads tunables only when a process
starts, so the measuring commands re-execute themselves once with them (`reexec_for_measuring`);
where that is not possible, `mallopt` sets the first two (the tcache stays, and a repeated 96 MiB
temporary still faulted on every other call).

Measured on the 2-vCPU AMD EPYC (Zen 4) guest, fp32, minor page faults per call and median time,
default -> mmap off and no trimming (mallopt, `resource.getrusage` around three calls after two
warm-ups):
  DeepSeek-V4 mHC, 2048 tokens      256 MiB faulted ->  0,  125 -> 48 ms
  V4 CSA decode gather, B 64 L 4096  80 MiB         ->  0,  102 -> 44 ms (HCA, same shapes: 42 ms)
  grouped MoE, 1 token              198 MiB         ->  0,  291 -> 26 ms
  naive MLA decode, L 4096          160 MiB         ->  0,  157 -> 110 ms
A bare `torch.ones` of 96 MiB, freed and repeated: 24576 faults per call by default, 24576 on most
calls with mallopt, 0 with the three tunables. The reads, copies and GEMMs that define the calibration
curves fault nothing either way. Without the tcache a tiny op's dispatch took 3.1 us instead of 2.9
(the dispatch reference row measures it with the rest).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

TUNABLES = {
    "glibc.malloc.mmap_max": "0",
    "glibc.malloc.trim_threshold": str(4 << 30),
    "glibc.malloc.tcache_count": "0",
}
_REEXEC_MARK = "DAEDALUS_ALLOCATOR_REEXEC"  # set on the re-executed process: never a second time
M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_MAX = -4
MALLOPT_TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int: the largest it accepts (2 GiB)


def _glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def startup_tunables() -> dict[str, str]:
    """GLIBC_TUNABLES of this process (glibc reads it at start; nothing here changes it later)."""
    pairs = os.environ.get("GLIBC_TUNABLES", "").split(":")
    return dict(p.split("=", 1) for p in pairs if "=" in p)


def in_effect() -> bool:
    started = startup_tunables()
    return all(started.get(k) == v for k, v in TUNABLES.items())


def with_tunables(env: dict[str, str]) -> dict[str, str]:
    """env with TUNABLES merged into its GLIBC_TUNABLES (ours win; other tunables kept)."""
    have = dict(p.split("=", 1) for p in env.get("GLIBC_TUNABLES", "").split(":") if "=" in p)
    return {**env, "GLIBC_TUNABLES": ":".join(f"{k}={v}" for k, v in {**have, **TUNABLES}.items())}


def reexec_for_measuring() -> None:
    """Re-execute this process with TUNABLES (the same interpreter and argv); nothing has run yet, so
    nothing is lost. Returns without doing so off glibc, when they are already in effect, when this
    process is itself the re-execution, or when exec fails (then `keep_freed_memory` falls back)."""
    if not _glibc() or in_effect() or os.environ.get(_REEXEC_MARK):
        return
    argv = getattr(sys, "orig_argv", None)
    if not argv:
        return
    env = with_tunables(dict(os.environ))
    env[_REEXEC_MARK] = "1"
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    except OSError:
        return


def keep_freed_memory() -> str:
    """What keeps freed memory in this process, for env.json; sets it with mallopt where the tunables
    are not in effect."""
    if not _glibc():
        return f"unchanged (not glibc: {sys.platform})"
    if in_effect():
        return "glibc tunables " + ":".join(f"{k.rsplit('.', 1)[1]}={v}" for k, v in TUNABLES.items())
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return f"unchanged (no mallopt in {name})"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, MALLOPT_TRIM_THRESHOLD_BYTES) != 1:
        return "unchanged (mallopt refused)"
    return "glibc mallopt mmap_max=0, trim_threshold=2 GiB (tcache on: tunables not in effect)"
