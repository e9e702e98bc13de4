"""The bandwidth-drift factor of a measured row: its probe bandwidth over the run's usual one, on the
DRAM-resident share of its working set (simulators.fit.memory_drift)."""

import math

import numpy as np
import pandas as pd

from simulators import fit as F

MiB = 2**20
CACHE = 32 * MiB


def rows(before, after, bytes_, cache_state="warm"):
    return pd.DataFrame({F.PROBE_BEFORE: before, F.PROBE_AFTER: after, "bytes": bytes_,
                         "cache_state": cache_state, "status": "ok"})


def test_usual_is_the_median_of_the_bracketing_geometric_means():
    df = rows([40e9, 20e9, 30e9], [10e9, 20e9, 30e9], [1, 1, 1])
    # geometric means 20, 20, 30 GB/s
    assert math.isclose(F.usual_probe_bytes_per_s(df), 20e9)


def test_drift_applies_to_the_dram_share_only():
    usual = 30e9
    df = rows([15e9, 15e9, 15e9, 15e9], [15e9, 15e9, 15e9, 15e9], [MiB, 64 * MiB, 64 * MiB, MiB],
              ["warm", "warm", "warm", "cold"])
    d = F.memory_drift(df, CACHE, usual)
    assert d[0] == 1.0  # cache-resident: unaffected
    assert math.isclose(d[1], 0.5 ** 0.5)  # half of 64 MiB spills a 32 MiB cache
    assert math.isclose(d[3], 0.5)  # flushed cache: all of it from DRAM


def test_missing_probe_means_no_correction():
    df = rows([np.nan, 10e9], [np.nan, np.nan], [64 * MiB, 64 * MiB])
    d = F.memory_drift(df, CACHE, 20e9)
    assert d[0] == 1.0 and math.isclose(d[1], 0.5 ** 0.5)  # after missing: before alone
    assert (F.memory_drift(df.drop(columns=[F.PROBE_BEFORE, F.PROBE_AFTER]), CACHE, 20e9) == 1.0).all()


def test_read_curve_is_put_at_the_usual_level():
    """Two identical reads timed at different probe bandwidths give one curve point at the usual level."""
    base = {"status": "ok", "role": "reference", "kernel": "read", "cache_state": "cold", "dtype": "fp32",
            "n_ops": 0, "flop": 0.0}
    df = pd.DataFrame([{**base, "bytes": 256 * MiB, "median_s": 256 * MiB / 10e9, F.PROBE_BEFORE: 10e9,
                        F.PROBE_AFTER: 10e9},
                       {**base, "bytes": 256 * MiB, "median_s": 256 * MiB / 30e9, F.PROBE_BEFORE: 30e9,
                        F.PROBE_AFTER: 30e9},
                       {**base, "bytes": 256 * MiB, "median_s": 256 * MiB / 20e9, F.PROBE_BEFORE: 20e9,
                        F.PROBE_AFTER: 20e9}])
    raw = F.measure_curves(df, CACHE, drift_corrected=False).bandwidth_by_bytes
    fixed = F.measure_curves(df, CACHE).bandwidth_by_bytes  # the default
    assert math.isclose(raw[0][1], 30e9)  # best of the three, uncorrected
    assert math.isclose(fixed[0][1], 20e9)  # every row at the usual (median) level


def test_the_probe_paired_with_every_sample_wins_over_the_bracketing_ones():
    """Where the bench interleaved the probe (a working set beyond the cache), its paired bandwidth is
    the row's; rows without it keep the geometric mean of the probes before and after."""
    df = rows([40e9, 40e9], [40e9, 40e9], [256 * MiB, 256 * MiB], "cold")
    df[F.PROBE_PAIRED] = [20e9, np.nan]
    d = F.memory_drift(df, CACHE, 40e9)
    assert math.isclose(d[0], 0.5) and d[1] == 1.0


def test_a_row_whose_time_is_mostly_compute_barely_follows_the_bandwidth():
    """The exponent is the DRAM share of the working set times the memory share of the row's time at
    the measured curves: a GEMV-like case that runs at a fraction of the DRAM rate (an MKL sgemv
    timed beside the probe followed it with slope 0.05, a 192 MiB read with 0.78) keeps ~its time."""
    df = rows([15e9] * 3, [15e9] * 3, [256 * MiB] * 3, "cold")
    d = F.memory_drift(df, CACHE, 30e9, memory_share=np.array([1.0, 0.1, 0.0]))
    assert math.isclose(d[0], 0.5) and math.isclose(d[1], 0.5 ** 0.1) and d[2] == 1.0


def test_roofline_inputs_weight_the_drift_by_the_memory_share():
    """Through the calibrated inputs: a read (no FLOPs) takes the whole factor, a compute-heavy row
    with the same working set and probe almost none."""
    from simulators.hardware import resolve_profile

    curves = F.Curves({"fp32": ((1.0, 1e9), (1e4, 1e11))}, ((MiB, 100e9), (1024 * MiB, 20e9)),
                      cache_bytes=CACHE, drift_corrected=True)
    base = {"status": "ok", "cache_state": "cold", "dtype": "fp32", "bytes": 256 * MiB, "n_ops": 0,
            "flop": 0.0, "rows": 1.0}
    probes = [20e9, 20e9, 20e9, 40e9, 40e9]  # usual: the median, 20 GB/s
    df = pd.DataFrame([{**base, F.PROBE_BEFORE: p, F.PROBE_AFTER: p} for p in probes])
    df.loc[3, ["flop", "rows"]] = [1e13, 1e4]  # 100 s of compute beside ~13 ms of memory
    drift = F.roofline_inputs(df, resolve_profile("host-cpu"), curves)["memory_drift"].to_numpy()
    assert math.isclose(drift[0], 1.0) and math.isclose(drift[4], 2.0)  # reads: the whole factor
    assert 1.0 < drift[3] < 1.001
