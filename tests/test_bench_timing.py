"""Timing statistics on synthetic samples, the measure loop and the noise probe with fake clocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.timing import Measurement, NoiseProbe, TimingConfig, measure, summarize


def test_summarize_known_samples():
    st = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert st.median_s == 3.0 and st.min_s == 1.0 and st.n_samples == 5
    assert st.iqr_s == pytest.approx(2.0)  # numpy linear percentiles: 4 - 2
    assert st.cv == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1) / 3.0)
    assert st.p90_s == pytest.approx(4.6)


def test_summarize_constant_and_single_sample():
    assert summarize([0.25] * 10).cv == 0.0 and summarize([0.25] * 10).iqr_s == 0.0
    one = summarize([0.5])
    assert one.median_s == 0.5 and one.cv == 0.0 and one.n_samples == 1
    with pytest.raises(ValueError):
        summarize([])


def test_summarize_is_robust_to_an_outlier():
    st = summarize([1.0] * 19 + [100.0])
    assert st.median_s == 1.0 and st.iqr_s == 0.0 and st.cv > 1.0


class FakeClock:
    """Each call to the timed function advances time by `step`; the loop's own overhead is free."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        return self.t

    def fn(self) -> None:
        self.t += self.step


def test_measure_respects_budget_and_min_samples():
    clk = FakeClock(0.1)
    m = measure(clk.fn, cfg=TimingConfig(budget_s=1.0, warmup_s=0.0, min_samples=3), clock=clk)
    assert m.warmup_calls == 1 and m.inner == 1
    assert 10 <= len(m.samples_s) <= 11 and all(s == pytest.approx(0.1) for s in m.samples_s)
    slow = FakeClock(5.0)
    m = measure(slow.fn, cfg=TimingConfig(budget_s=1.0, warmup_s=0.0, min_samples=3), clock=slow)
    assert len(m.samples_s) == 3  # min_samples even when one call exceeds the budget


def test_a_probe_after_each_sample_is_timed_apart_and_follows_a_bandwidth_flip():
    """A streaming case and the probe after each sample both slow down when the machine's bandwidth
    drops (50 -> 30 GB/s, flipping inside the window): the sample times keep only the case, and the
    paired rate is the bandwidth of the median sample, not the window's average."""
    state = {"t": 0.0, "i": 0}
    bw = [50e9, 30e9, 50e9, 30e9, 50e9, 30e9, 30e9]  # the machine's bandwidth until probe i
    case_bytes, probe_bytes = 1e9, 2e9

    def clock():
        return state["t"]

    def case():
        state["t"] += case_bytes / bw[min(state["i"], len(bw) - 1)]

    def probe():
        state["t"] += probe_bytes / bw[min(state["i"], len(bw) - 1)]
        state["i"] += 1

    cfg = TimingConfig(budget_s=0.0, warmup_s=0.0, min_samples=len(bw))
    m = measure(case, cfg=cfg, clock=clock, after_each=probe)
    assert len(m.after_each_s) == len(m.samples_s) == len(bw)
    assert m.samples_s == pytest.approx([case_bytes / b for b in bw])
    assert m.after_each_s == pytest.approx([probe_bytes / b for b in bw])
    assert m.paired_rate(probe_bytes) == pytest.approx(30e9)  # the median sample ran at 30 (4 of 7 did)
    assert np.mean([probe_bytes / t for t in m.after_each_s]) > 38e9  # the window's mean probe: not it
    assert math.isnan(Measurement([1.0, 2.0], 1, 1).paired_rate(probe_bytes))  # no probe times: nan
    assert math.isnan(Measurement([1.0, 2.0], 1, 1, [1.0]).paired_rate(probe_bytes))  # not one per sample


def test_measure_batches_short_calls_and_syncs():
    clk = FakeClock(1e-5)
    syncs = []
    cfg = TimingConfig(budget_s=0.01, warmup_s=0.0, min_sample_s=1e-3, max_samples=50)
    m = measure(clk.fn, sync=lambda: syncs.append(1), cfg=cfg, clock=clk)
    assert m.inner == 100 and m.samples_s[0] == pytest.approx(1e-5)
    assert len(syncs) == 2 * (m.warmup_calls + len(m.samples_s))


def test_measure_runs_before_each_untimed():
    clk = FakeClock(0.01)
    flushes = []

    def flush():
        flushes.append(1)
        clk.t += 1.0  # a slow flush must not be counted

    m = measure(clk.fn, cfg=TimingConfig(budget_s=0.05, warmup_s=0.0, min_samples=2), before_each=flush, clock=clk)
    assert m.inner == 1 and all(s == pytest.approx(0.01) for s in m.samples_s)
    assert len(flushes) == m.warmup_calls + len(m.samples_s)


def _probe(times, parallel=None, **kw):
    """A probe whose compute / memory / serial workloads take the given times (lists, one per call)."""
    clk = {"t": 0.0}
    seq = {"c": iter(times["c"]), "m": iter(times["m"]), "s": iter(parallel or [])}

    def work(key):
        def f():
            clk["t"] += next(seq[key])
        return f

    slept = []
    probe = NoiseProbe(work("c"), work("m"), compute_serial=work("s") if parallel else None, repeats=1,
                       clock=lambda: clk["t"], sleep=slept.append, **kw)
    return probe, slept


def test_probe_waits_out_a_slow_burst():
    # 5 calibration probes at 1.0, then a burst (3.0) for two probes, then normal again
    probe, slept = _probe({"c": [1.0] * 5 + [3.0, 3.0, 1.0], "m": [1.0] * 8}, pause_s=0.1)
    probe.calibrate(5)
    r = probe.wait_quiet()
    assert r.quiet and r.retries == 2 and slept == [0.1, 0.2] and r.waited_s == pytest.approx(0.3)
    assert math.isnan(r.parallel_ratio)


def test_probe_gives_up_after_max_wait():
    probe, slept = _probe({"c": [1.0] * 3 + [5.0] * 50, "m": [1.0] * 53}, pause_s=1.0, max_wait_s=2.5)
    probe.calibrate(3)
    r = probe.wait_quiet()
    assert not r.quiet and r.waited_s >= 2.5 and r.compute_ratio > 1.35


def test_probe_parallel_check_catches_a_burst_from_the_start():
    # the multi-thread probe is no faster than the single-thread one: a stalled core, whatever the history
    probe, _ = _probe({"c": [2.0] * 10, "m": [1.0] * 10}, parallel=[2.0] * 10, max_wait_s=0.0)
    probe.calibrate(3)
    r = probe.wait_quiet()
    assert not r.quiet and r.parallel_ratio == pytest.approx(1.0)
    fine, _ = _probe({"c": [1.0] * 10, "m": [1.0] * 10}, parallel=[2.0] * 10)
    fine.calibrate(3)
    assert fine.wait_quiet().quiet


def test_probe_total_wait_budget_is_shared_across_cases():
    probe, slept = _probe({"c": [1.0] * 2 + [9.0] * 100, "m": [1.0] * 102}, pause_s=1.0, max_wait_s=100.0,
                          total_wait_s=3.0)
    probe.calibrate(2)
    assert not probe.wait_quiet().quiet
    assert sum(slept) == pytest.approx(3.0)
    assert probe.wait_quiet().retries == 0  # budget spent: no more waiting


def test_race_picks_the_faster_form_through_a_burst(monkeypatch):
    """Form b is twice as fast, but a burst slows calls 2-5 tenfold (the warm-up is call 1 or 2):
    timed back to back (b warm, b, b, b, then a) the burst is all of b's timed calls and a would win."""
    from bench import workloads

    calls = {"n": 0}
    cost = {"a": 2e-3, "b": 1e-3}
    clock = {"t": 0.0}

    def form(name):
        def fn():
            calls["n"] += 1
            burst = 10.0 if 2 <= calls["n"] <= 5 else 1.0
            clock["t"] += cost[name] * burst
        return fn

    monkeypatch.setattr(workloads.time, "perf_counter", lambda: clock["t"])
    assert workloads.race({"b": form("b"), "a": form("a")}) == "b"
    calls["n"] = 0
    assert workloads.race({"a": form("a"), "b": form("b")}) == "b"
