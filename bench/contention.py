"""Other processes' CPU use, read from /proc before each case: on a 2-vCPU machine one busy neighbour
makes a 2-thread timing 1.6-16x slower, and a probe alone lets most such cases through.

`other_cpu_cores(window_s)` = (busy CPU time of the whole machine - this process's own CPU time) /
window: 0.0 on a quiet machine, ~1.0 with one other process spinning a core. Linux only; elsewhere
(no /proc) it returns nan and the caller falls back to the timing probe.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BUSY_CORES = 0.25  # other processes using more than a quarter of a core: the machine is contended


def _machine_busy_s() -> float:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def _self_busy_s() -> float:
    t = os.times()
    return t.user + t.system


def other_cpu_cores(window_s: float = 0.1) -> float:
    try:
        m0, s0, t0 = _machine_busy_s(), _self_busy_s(), time.perf_counter()
        time.sleep(window_s)
        m1, s1, t1 = _machine_busy_s(), _self_busy_s(), time.perf_counter()
    except (OSError, ValueError, IndexError):
        return math.nan
    return max(0.0, ((m1 - m0) - (s1 - s0)) / (t1 - t0))


@dataclass(frozen=True)
class Quiet:
    other_cpu_cores: float  # the last reading
    waited_s: float
    quiet: bool  # False: still busy when the wait budget ran out


def wait_for_quiet(max_wait_s: float = 10.0, window_s: float = 0.1, threshold: float = BUSY_CORES) -> Quiet:
    """Wait (up to max_wait_s) until other processes use less than `threshold` cores."""
    t0 = time.perf_counter()
    while True:
        busy = other_cpu_cores(window_s)
        waited = time.perf_counter() - t0
        if not busy > threshold:  # nan (unknown) counts as quiet: the probe judges then
            return Quiet(busy, waited, True)
        if waited >= max_wait_s:
            return Quiet(busy, waited, False)
        time.sleep(min(0.5, max(0.0, max_wait_s - waited)))
