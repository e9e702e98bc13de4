"""Achievable-rate profiles: provenance of every rate, bounds against the nominal figures, labelled
defaults where nothing is published, and one-line errors for bad `achievable:` blocks."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.achievable import DEFAULT_FRACTION, RATE_KEYS, parse_achievable
from simulators.errors import ConfigError
from simulators.hardware import parse_profile
from simulators.model_cost import step_ops
from simulators.precision import Precision
from simulators.roofline import calibration_family, op_time

ACCELERATORS = ["a100-80gb", "ascend-910b", "ascend-910c", "b200", "b300", "gaudi3", "h100-pcie", "h100-sxm", "h20",
                "h200", "h800", "mi300x", "tpu-v5p"]


@pytest.mark.parametrize("name", ACCELERATORS)
def test_achievable_never_beats_speed_of_light(shipped_models, shipped_profiles, name):
    """Every op of a DeepSeek-V3 decode and prefill step takes at least its speed-of-light time."""
    hw, m = shipped_profiles[name], shipped_models["deepseek-v3"]
    p = Precision.of("fp8", "bf16", "bf16")
    cases = (("decode", np.array([1.0, 64.0, 512.0]), 1, 4096), ("prefill", np.array([1.0, 4.0]), 4096, 4096))
    for phase, B, S, L in cases:
        for o in step_ops(m, B, S, L, p, phase=phase, mla_mode="absorbed" if phase == "decode" else "naive"):
            fam = calibration_family(o.family, phase, m.attention)
            sol = op_time(o.flop, o.bytes, fam, o.compute_dtype, hw, "speed_of_light", rows=o.rows).time_s
            ach = op_time(o.flop, o.bytes, fam, o.compute_dtype, hw, "achievable", rows=o.rows).time_s
            assert (ach >= sol * (1 - 1e-12)).all(), (name, o.op)


@pytest.mark.parametrize("name", ACCELERATORS)
def test_every_rate_is_sourced_and_defaults_are_labelled(shipped_profiles, name):
    ach = shipped_profiles[name].achievable
    for key, r in ach.rates.items():
        assert r.status and len(r.source) > 20, key
        if r.status == "estimate" and r.value is not None:  # a figure from elsewhere must say where from
            assert "applied to" in r.source or "default" in r.source, (name, key)
    # what the block does not give is listed as an assumption and runs at the labelled default
    for fam in ach.assumed:
        assert ach.rate(fam).fraction == DEFAULT_FRACTION[fam] and "default derate" in ach.rate(fam).source
    assert set(ach.assumed) | {k.partition(".")[0] for k in ach.rates} == set(RATE_KEYS)


def test_h800_rates_are_below_the_datasheet_and_above_zero(shipped_profiles):
    """FlashMLA 3000 GB/s of 3.35 TB/s; DeepGEMM large-M FP8 below the 1979 TFLOPS peak; DeepEP's
    39 GB/s of the 50 GB/s NIC (checks the data file against the datasheet figures beside it)."""
    hw = shipped_profiles["h800"]
    ach = hw.achievable
    hbm = hw.memory_bandwidth_bytes_per_s.value
    assert ach.rate("attention_decode_bandwidth").value / hbm == pytest.approx(0.9, abs=0.01)
    curve = ach.rate("gemm", "fp8").points
    assert all(a[1] < b[1] for a, b in zip(curve, curve[1:]))  # the rate grows with rows per weight
    assert curve[-1][1] < hw.peak("fp8")
    assert ach.rate("scaleout_bandwidth").value < hw.scaleout.bandwidth_bytes_per_s_per_direction.value


def test_devices_without_measurements_share_no_absolute_rate_with_h800(shipped_profiles):
    """Nothing is copied silently: only profiles that say 'applied to' carry the H800 numbers."""
    h800 = {k: r.value for k, r in shipped_profiles["h800"].achievable.rates.items() if r.value is not None}
    for name in ACCELERATORS:
        if name == "h800":
            continue
        for key, r in shipped_profiles[name].achievable.rates.items():
            if r.value is not None and r.value == h800.get(key):
                assert "H800 measurement applied to" in r.source or "H800 + CX7 measurement" in r.source, (name, key)


BASE = {"name": "x", "peak_flop_per_s": {"bf16": {"value": 1e15, "status": "datasheet", "source": "s"}},
        "memory_bytes": {"value": 8e10, "status": "datasheet", "source": "s"},
        "memory_bandwidth_bytes_per_s": {"value": 3e12, "status": "datasheet", "source": "s"}}


@pytest.mark.parametrize("block, needle", [
    ({"gemm_bandwidth": {"value": 4e12, "status": "published-measurement", "source": "a benchmark"}}, "exceeds"),
    ({"streaming_bandwidth": {"fraction": 1.5, "status": "estimate", "source": "x"}}, "fraction"),
    ({"streaming_bandwidth": {"value": 1e12, "status": "estimate"}}, "source"),
    ({"streaming_bandwidth": {"value": 1e12, "fraction": 0.5, "status": "estimate", "source": "x"}}, "exactly one"),
    ({"gemm": {"fp8": {"value": 1e15, "status": "estimate", "source": "x"}}}, "peak_flop_per_s.fp8"),
    ({"tensor_cores": {"value": 1, "status": "estimate", "source": "x"}}, "unknown field"),
    ({"fp8_checkpoint_compute": "int4"}, "fp8_checkpoint_compute"),
])
def test_bad_achievable_block_is_one_line(block, needle):
    with pytest.raises(ConfigError, match=needle) as exc:
        parse_profile({**BASE, "achievable": block}, "hw.yaml")
    assert "hw.yaml" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_block_is_all_defaults():
    ach = parse_achievable(None, "x")
    assert set(ach.assumed) == set(RATE_KEYS) and not ach.rates


def test_b300_profile_is_sourced_and_says_where_sources_disagree(shipped_profiles):
    """Blackwell Ultra: every number names its source; the contested dense FP8 / BF16 peaks carry a
    range around the kept value; the chip's dense NVFP4 exceeds B200's (the part's one compute change)
    while its HBM grows and its per-GPU links match B200's; no kernel was measured, so the achievable
    mode runs entirely at the labelled default derates."""
    b300, b200 = shipped_profiles["b300"], shipped_profiles["b200"]
    fields = [*b300.peak_flop_per_s.values(), b300.memory_bytes, b300.memory_bandwidth_bytes_per_s,
              b300.scaleup.bandwidth_bytes_per_s_per_direction, b300.scaleout.bandwidth_bytes_per_s_per_direction]
    assert all(f.status and len(f.source) > 20 for f in fields)
    for dtype in ("fp8", "bf16"):
        f = b300.peak_flop_per_s[dtype]
        assert f.status == "estimate" and f.range[0] <= f.value <= f.range[1] and f.range[1] > f.range[0]
    assert b300.peak("fp4") > b200.peak("fp4") and b300.memory_bytes.value > b200.memory_bytes.value
    assert b300.peak("int8") is None  # left out: the figures read disagree (Blackwell Ultra cuts INT8)
    assert set(b300.achievable.assumed) == set(RATE_KEYS) and not b300.achievable.rates
