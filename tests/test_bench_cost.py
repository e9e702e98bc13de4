"""The benchmark's FLOPs and bytes are the simulator's family_cost / gemm_cost / copy_cost for the
same case, and the measured profile built from calibration rows loads with the simulator's loader."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from bench.calibration import build_profile
from simulators.roofline import CALIBRATION_FAMILIES
from bench.run_folder import write_profile
from bench.cases import Case, calibration_cases, full_cases, model_config, quick_cases, simulator_cost
from simulators.errors import ConfigError
from simulators.hardware import load_profile
from simulators.model_config import resolve_model
from simulators.model_cost import family_cost, step_ops
from simulators.moe import expected_distinct_experts
from simulators.ops import copy_cost, gemm_cost
from simulators.precision import Precision


def sim(model: str, B, S, L, families, dtype="fp32", phase="decode", mode="absorbed"):
    ops = step_ops(model_config(model), B, S, L, Precision.of(dtype, dtype, dtype), phase=phase, mla_mode=mode)
    return tuple(float(x) for x in family_cost(ops, families))


def got(case: Case, device_kind: str = "cpu"):
    c = simulator_cost(case, device_kind)
    return c["flop"], c["bytes_read"], c["bytes_written"]


@pytest.mark.parametrize("case,mode", [
    (Case("mla_decode_absorbed", "deepseek-v2-lite", "decode", 4, 1, 8192), "absorbed"),
    (Case("mla_decode_absorbed", "deepseek-v3", "decode", 1, 1, 32768, "bf16"), "absorbed"),
    (Case("mla_decode_naive", "deepseek-v2-lite", "decode", 1, 1, 4096), "naive"),
    (Case("mla_prefill", "deepseek-v2-lite", "prefill", 1, 2048, 2048), "naive"),
    (Case("sdpa_decode", "llama-3.1-8b", "decode", 8, 1, 4096), "absorbed"),
    (Case("sdpa_prefill", "llama-3.1-8b:kv_heads=1", "prefill", 1, 512, 512), "absorbed"),
])
def test_attention_cost_is_the_simulators_attn_core(case, mode):
    expect = sim(case.model, case.batch, case.query_len, case.context, ("attn_core",), case.dtype, case.phase, mode)
    assert got(case, "cuda") == expect  # no tiles recorded off the CPU: the exact causal pairs
    if case.phase == "decode":
        assert got(case) == expect  # S = 1: every key, tiled or not


@pytest.mark.parametrize("S", [512, 1024, 2048])
def test_a_cpu_prefill_counts_the_flash_kernels_whole_key_tiles(S):
    # PyTorch's CPU flash attention computes whole 512-key tiles: at S 512 every pair of the square
    # (twice the causal ones), at 2048 with 256-row query tiles 20 tiles of 256 x 512 (1.25x); bytes
    # are unchanged and the attention FLOPs scale with the pairs
    case = Case("sdpa_prefill", "llama-3.1-8b", "prefill", 1, S, S)
    exact, cpu = got(case, "cuda"), got(case)
    pairs = {512: 512 * 512, 1024: 256 * 512 * (1 + 1 + 2 + 2), 2048: 256 * 512 * 20}[S]
    assert cpu[0] / exact[0] == pytest.approx(pairs / (S * (S + 1) / 2))
    assert cpu[1:] == exact[1:]


def test_moe_cost_is_router_shared_and_routed():
    case = Case("moe_grouped", "deepseek-v2-lite", "decode", 512, 1, 1)
    assert got(case) == sim("deepseek-v2-lite", 512, 1, 1, ("moe_router", "moe_shared", "moe_routed"))
    assert got(Case("moe_loop", "deepseek-v2-lite", "decode", 512, 1, 1)) == got(case)
    # routed bytes use the simulator's expected distinct experts (uniform routing)
    m = model_config("deepseek-v2-lite")
    assert float(expected_distinct_experts(1, m.n_routed_experts, m.num_experts_per_tok)) == pytest.approx(6.0)


def test_gemm_and_copy_costs():
    c = gemm_cost(16, 4096, 4096, 4.0, "fp32")
    assert got(Case("gemm", m=16, n=4096, k=4096)) == (float(c.flop), float(c.bytes_read), float(c.bytes_written))
    cp = copy_cost(2**28)
    assert got(Case("copy", n_bytes=2**28)) == (0.0, float(cp.bytes_read), float(cp.bytes_written))
    assert got(Case("read", n_bytes=2**28)) == (0.0, float(cp.bytes_read), 0.0)


def test_model_variants():
    mqa = model_config("llama-3.1-8b:kv_heads=1")
    assert mqa.attention == "mqa" and mqa.name == "llama-3.1-8b:kv_heads=1"
    assert dataclasses.replace(mqa, num_key_value_heads=8, name="llama-3.1-8b") == resolve_model("llama-3.1-8b")
    assert model_config("llama-3.1-8b:kv_heads=32").attention == "mha"
    with pytest.raises(ConfigError, match="kv_heads"):
        model_config("llama-3.1-8b:kv_heads=5")
    with pytest.raises(ConfigError, match="unknown model"):
        model_config("no-such-model")


def test_sweeps_are_well_formed():
    for cases in (quick_cases(), full_cases(), calibration_cases("cpu", 2**28), calibration_cases("cuda", 2**30)):
        ids = [c.case_id for c in cases]
        assert len(ids) == len(set(ids))
        for c in cases:
            cost = simulator_cost(c)
            if c.kernel == "dispatch":  # tiny ops whose time is all overhead: no work counted
                assert cost["bytes_read"] == 0 and cost["flop"] == 0
                continue
            assert cost["bytes_read"] > 0 and cost["flop"] >= 0
    quick = quick_cases()
    fams = {c.family for c in quick}
    assert fams == set(CALIBRATION_FAMILIES)  # every family the simulator calibrates is measured
    per_family = {f: sum(c.family == f and c.role == "case" for c in quick) for f in fams}
    assert min(per_family.values()) >= 8, per_family  # enough scored cases to fit 2 factors per family
    kernels = {c.kernel for c in quick}
    assert {"mla_decode_absorbed", "mla_decode_naive", "moe_loop", "moe_grouped"} <= kernels
    assert max(c.context for c in quick if c.family == "mla_decode_absorbed") >= 32768
    assert max(c.tokens for c in quick if c.family == "moe") >= 2048
    with pytest.raises(ConfigError, match="case kernel"):
        Case("nope")


def synthetic_calibration() -> pd.DataFrame:
    rows = []
    for n, rate in ((512, 3.0e11), (1024, 3.5e11), (2048, 3.4e11)):
        rows.append(dict(kernel="gemm", family="gemm", dtype="fp32", m=n, n=n, k=n, n_bytes=0, status="ok",
                         achieved_flop_per_s=rate, achieved_bytes_per_s=1e9))
    for m, rate in ((1, 2.8e10), (16, 1.6e11)):
        rows.append(dict(kernel="gemm", family="gemm", dtype="fp32", m=m, n=4096, k=4096, n_bytes=0, status="ok",
                         achieved_flop_per_s=rate, achieved_bytes_per_s=5e10))
    rows.append(dict(kernel="gemm", family="gemm", dtype="bf16", m=512, n=512, k=512, n_bytes=0, status="ok",
                     achieved_flop_per_s=1.2e12, achieved_bytes_per_s=1e9))
    for k, bw in (("copy", 2.6e10), ("read", 2.9e10)):
        rows.append(dict(kernel=k, family="copy", dtype="fp32", m=0, n=0, k=0, n_bytes=2**30, status="ok",
                         achieved_flop_per_s=0.0, achieved_bytes_per_s=bw))
    return pd.DataFrame(rows)


def test_profile_from_calibration_loads(tmp_path):
    env = {"device": "cpu", "device_name": "Test CPU", "device_memory_bytes": 24 * 2**30, "threads": 2,
           "cpu_cache_bytes": {"L3": 8 * 2**20}, "torch": "2.x", "time_utc": "now"}
    prof = build_profile(synthetic_calibration(), "run-x", env)
    path = write_profile(tmp_path, measured=prof)
    hw = load_profile(path)
    assert hw.name == "host-measured"
    assert hw.peak("fp32") == 3.5e11 and hw.peak("bf16") == 1.2e12
    assert hw.memory_bandwidth_bytes_per_s.value == 2.9e10 and hw.memory_bytes.value == 24 * 2**30
    assert hw.onchip_cache_bytes.value == 8 * 2**20
    rows = hw.provenance()
    assert all(r["status"] == "measured" and "daedalus calibrate run run-x" in r["source"] for r in rows)
    assert "n=1024" in hw.peak_flop_per_s["fp32"].source
    assert "skinny_gemm_fp32_n4096_k4096_m1_flop_per_s: 2.8e+10" in hw.notes
    assert "skinny_gemm_fp32_n4096_k4096_m16_flop_per_s: 1.6e+11" in hw.notes
