"""Timing with discipline: warm-up, synchronize, repeats up to a time budget, raw samples kept,
median / IQR / coefficient of variation, and a cheap noise probe that waits out slow bursts.

A sample is the mean of `inner` back-to-back calls (inner > 1 only for calls much shorter than
TimingConfig.min_sample_s, where one perf_counter pair and a device synchronize would dominate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Sync = Callable[[], None]


def _no_sync() -> None:
    return None


@dataclass(frozen=True)
class TimingConfig:
    budget_s: float = 0.5  # wall time for the timed repeats of one case
    warmup_s: float = 0.05  # at least this long (and at least one call) before timing
    min_samples: int = 3  # even when one call exceeds the budget
    max_samples: int = 200
    min_sample_s: float = 1e-3  # batch calls shorter than this into one sample
    max_inner: int = 1000
    cv_retry: float = 0.15  # re-time once (after a noise probe) when the spread is larger


@dataclass(frozen=True)
class Stats:
    median_s: float
    iqr_s: float
    cv: float  # standard deviation / mean of the samples
    min_s: float
    p90_s: float
    n_samples: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def summarize(samples_s) -> Stats:
    """Statistics of raw sample times. CV is the sample standard deviation over the mean (0 for one sample)."""
    a = np.asarray(samples_s, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    q25, q50, q75, q90 = np.percentile(a, [25, 50, 75, 90])
    mean = a.mean()
    cv = float(a.std(ddof=1) / mean) if a.size > 1 and mean > 0 else 0.0
    return Stats(median_s=float(q50), iqr_s=float(q75 - q25), cv=cv, min_s=float(a.min()), p90_s=float(q90),
                 n_samples=int(a.size))


@dataclass
class Measurement:
    samples_s: list[float]
    inner: int
    warmup_calls: int
    after_each_s: list[float] = field(default_factory=list)  # `after_each`'s own time after each sample

    def paired_rate(self, work: float) -> float:
        """`work` (e.g. the bytes one `after_each` probe reads) per second, as the probe ran while the
        samples were timed: work x median(sample / probe) / median(sample), pairing each sample with
        the probe right after it, so a bandwidth that flips within the window is followed sample by
        sample. nan without probe times."""
        if not self.after_each_s or len(self.after_each_s) != len(self.samples_s):
            return math.nan
        x, p = np.asarray(self.samples_s, dtype=np.float64), np.asarray(self.after_each_s, dtype=np.float64)
        if not (np.all(p > 0) and np.median(x) > 0):
            return math.nan
        return float(work * np.median(x / p) / np.median(x))


def measure(fn: Callable[[], object], sync: Sync = _no_sync, cfg: TimingConfig = TimingConfig(),
            before_each: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter,
            after_each: Callable[[], object] | None = None) -> Measurement:
    """Warm up, then time `fn` until cfg.budget_s is spent (min_samples..max_samples samples).

    `after_each` (e.g. a bandwidth probe) runs after every sample, timed on its own into
    `Measurement.after_each_s`; its time counts against the budget.

    `before_each` (e.g. a cache flush) runs untimed before every sample and forces inner = 1.
    """
    # warm-up: first call(s) pay for allocation, lazy init, page faults and caches
    warm_calls = 0
    t_start = clock()
    call_s = math.inf
    while warm_calls < 1 or clock() - t_start < cfg.warmup_s:
        if before_each is not None:
            before_each()
        sync()
        t0 = clock()
        fn()
        sync()
        call_s = min(call_s, clock() - t0)
        warm_calls += 1
        if warm_calls >= cfg.max_samples:
            break
    inner = 1
    if before_each is None and call_s < cfg.min_sample_s:
        inner = int(min(cfg.max_inner, math.ceil(cfg.min_sample_s / max(call_s, 1e-9))))
    samples: list[float] = []
    after: list[float] = []
    t_begin = clock()
    while len(samples) < cfg.min_samples or (clock() - t_begin < cfg.budget_s and len(samples) < cfg.max_samples):
        if before_each is not None:
            before_each()
        sync()
        t0 = clock()
        for _ in range(inner):
            fn()
        sync()
        samples.append((clock() - t0) / inner)
        if after_each is not None:
            t1 = clock()
            after_each()
            sync()
            after.append(clock() - t1)
    return Measurement(samples, inner, warm_calls, after)


@dataclass(frozen=True)
class ProbeResult:
    compute_ratio: float  # probe compute time / reference (1.0 = as usual)
    memory_ratio: float
    parallel_ratio: float  # multi-thread / single-thread probe time (~1/threads when all cores run; nan: n/a)
    retries: int
    waited_s: float
    quiet: bool  # False: still slow when the wait budget ran out (the case is timed anyway and flagged)
    memory_s: float = math.nan  # the memory probe's own time (best of its repeats), absolute


class NoiseProbe:
    """A ~50 ms probe (a few small matmuls and a 256 MiB read) run before each case.

    Shared cloud machines have bursts where compute and bandwidth drop 2-10x for seconds to a minute
    (on the 2-vCPU host: one vCPU stalls and every 2-thread parallel region waits for it). A case
    timed in a burst is an outlier. Two tests:
      * relative: compute and memory probe times against the `reference_quantile` of all probes seen
        (robust to the usual +-15% jitter, unlike the single fastest probe);
      * absolute (CPU, > 1 thread): the multi-thread compute probe must beat the single-thread one
        (`max_parallel_ratio`); during a stall it does not. This catches bursts that began before
        the first probe, which the relative test cannot.
    While slow: pause (growing) and probe again, up to `max_wait_s` per case and `total_wait_s` per run.

    `tolerance` 1.25: over three runs on the Zen 3 guest (126 scored cases each) the cases timed after a
    probe 1.25-1.35x slower than the reference had a median calibrated |error| of 17-22%, the others
    7-14%; short cases of many small parallel ops (the V4 indexer at 0.3-2 ms) ran up to 2.6x slower
    there, far more than the probe's own slowdown.
    """

    def __init__(self, compute: Callable[[], object], memory: Callable[[], object], sync: Sync = _no_sync, *,
                 compute_serial: Callable[[], object] | None = None, tolerance: float = 1.25,
                 max_parallel_ratio: float = 0.85, max_wait_s: float = 10.0, total_wait_s: float = 60.0,
                 pause_s: float = 0.2, repeats: int = 3, reference_quantile: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.perf_counter):
        self.compute, self.memory, self.compute_serial, self.sync = compute, memory, compute_serial, sync
        self.tolerance, self.max_parallel_ratio = tolerance, max_parallel_ratio
        self.max_wait_s, self.wait_left_s, self.pause_s, self.repeats = max_wait_s, total_wait_s, pause_s, repeats
        self.reference_quantile = reference_quantile
        self.sleep, self.clock = sleep, clock
        self.history: list[tuple[float, float]] = []  # (compute_s, memory_s) of every probe

    def memory_s(self) -> float:
        """The memory probe alone, best of `repeats` (~30 ms): the machine's streaming bandwidth now.
        On a shared host it drifts by tens of percent over minutes; memory-bound cases drift with it
        (the calibrated fit divides that drift out, `simulators.fit.memory_drift`)."""
        return self._time(self.memory)

    def _time(self, fn) -> float:
        best = math.inf
        for _ in range(self.repeats):
            self.sync()
            t0 = self.clock()
            fn()
            self.sync()
            best = min(best, self.clock() - t0)
        return best

    def reference(self) -> tuple[float, float]:
        a = np.asarray(self.history)
        return tuple(float(x) for x in np.quantile(a, self.reference_quantile, axis=0))

    def sample(self) -> tuple[float, float, float]:
        """One probe: (compute ratio, memory ratio, parallel ratio), then added to the history."""
        c, m = self._time(self.compute), self._time(self.memory)
        par = c / self._time(self.compute_serial) if self.compute_serial is not None else math.nan
        self.history.append((c, m))
        ref_c, ref_m = self.reference()
        return c / ref_c, m / ref_m, par

    def calibrate(self, n: int = 7) -> None:
        for _ in range(n):
            self.sample()

    def is_quiet(self, rc: float, rm: float, par: float) -> bool:
        return rc <= self.tolerance and rm <= self.tolerance and not par > self.max_parallel_ratio

    def wait_quiet(self) -> ProbeResult:
        retries, waited, pause = 0, 0.0, self.pause_s
        while True:
            rc, rm, par = self.sample()
            quiet = self.is_quiet(rc, rm, par)
            if quiet or waited >= self.max_wait_s or self.wait_left_s <= 0:
                return ProbeResult(rc, rm, par, retries, waited, quiet, self.history[-1][1])
            step = min(pause, self.wait_left_s)
            self.sleep(step)
            waited += step
            self.wait_left_s -= step
            retries += 1
            pause = min(2 * pause, 2.0)
