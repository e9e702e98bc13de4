"""DeepSeek-V4 reference kernels (bench/kernels/v4.py): checked against float64 definitions at the
shipped models' own dims, their FLOPs counted by torch (independent of the simulator) against the
simulator's cost for the same case, and the quick sweep's coverage of the new families."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import workloads
from bench.cases import Case, model_config, quick_cases, simulator_cost, v4_quick_cases
from bench.device import resolve_device
from bench.kernels import v4
from bench.kernels.common import KernelCheckError
from simulators.kv_ledger import indexer_key_bytes
from simulators.model_config import resolve_model
from simulators.model_cost import step_ops
from simulators.precision import Precision
from simulators.roofline import CALIBRATION_FAMILIES, calibration_family
from simulators.units import MiB

V4_FAMILIES = ("v4_compressor", "v4_indexer", "v4_attn", "v4_mhc")
FLASH = "deepseek-v4-flash"
DEV = resolve_device("cpu")
F32 = torch.float32
# a toy V4 (fast): every mechanism, small widths
TOY = v4.V4Dims(d=64, H=4, c=32, W=8, Hi=4, Di=16, K=6, hca_ratio=16, n=4, iters=20)


def _first(kernel: str) -> Case:
    return next(c for c in v4_quick_cases("fp32") if c.kernel == kernel)


@pytest.mark.parametrize("kernel", ["v4_compressor_csa", "v4_compressor_hca", "v4_indexer_topk", "v4_csa_decode",
                                    "v4_hca_decode", "v4_mhc"])
def test_kernel_passes_its_reference_at_flash_dims(kernel):
    case = _first(kernel)
    assert workloads.check_case(case, DEV)  # raises KernelCheckError on a mismatch


def test_toy_dims_and_partial_blocks():
    v4.check_compressor("cpu", F32, TOY, "csa", ((2, 4), (1, 20)))
    v4.check_compressor("cpu", F32, TOY, "hca", ((2, 32),))
    # fewer entries than top-k (-1 padding), an MTP-like multi-token step, and a real selection
    v4.check_indexer("cpu", F32, TOY, ((1, 1, 12), (2, 3, 40), (2, 1, 4 * 30 + 1)))
    v4.check_attention("cpu", F32, TOY, "csa", ((2, 4 * 20 + 3), (1, 8)))
    v4.check_attention("cpu", F32, TOY, "hca", ((2, 16 * 3 + 5),))
    v4.check_mhc("cpu", F32, TOY, (1, 7))


def test_checks_catch_wrong_kernels(monkeypatch):
    # HCA-style pooling (one stream, no overlap) where CSA needs the overlapped 2m-token softmax
    orig_compress = v4.compress
    monkeypatch.setattr(v4, "compress", lambda x, w, ape, ratio, overlap: orig_compress(
        x, torch.cat([w[:, 32:64], w[:, 96:]], dim=1), ape[:, 32:], ratio, False))
    with pytest.raises(KernelCheckError):
        v4.check_compressor("cpu", F32, TOY, "csa", ((1, 8),))
    monkeypatch.undo()
    # attention without the sink in the denominator
    orig = v4._sink_attention
    monkeypatch.setattr(v4, "_sink_attention", lambda q, kv, sink, scale: orig(q, kv, sink - 1e4, scale))
    with pytest.raises(KernelCheckError):
        v4.check_attention("cpu", F32, TOY, "hca", ((1, 40),))
    monkeypatch.undo()
    # bottom-k instead of top-k
    orig_topk = v4.indexer_topk
    monkeypatch.setattr(v4, "indexer_topk", lambda q, w, keys, top_k, L, ratio: orig_topk(-q, w, keys, top_k, L, ratio))
    with pytest.raises(KernelCheckError):
        v4.check_indexer("cpu", F32, TOY, ((1, 1, 4 * 30),))


def test_sinkhorn_mix_is_doubly_stochastic():
    x = v4.make_mhc_inputs(TOY, 3, "cpu", F32)
    comb = v4.mhc_reference(**x)[2]
    assert torch.allclose(comb.sum(1), torch.ones(3, 4, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(comb.sum(2), torch.ones(3, 4, dtype=torch.float64), atol=1e-4)


def _torch_flop(case: Case) -> float:
    wl = workloads.build(case, DEV, "")
    with FlopCounterMode(display=False) as fc:
        wl.fn()
    return float(fc.get_total_flops())


@pytest.mark.parametrize("kernel, rel", [
    ("v4_compressor_csa", 1e-3),  # torch counts the W^KV | W^Z GEMM; the simulator adds 5 FLOP per pooled value
    ("v4_compressor_hca", 1e-3),
    ("v4_indexer_topk", 1.0 / 128 + 1e-3),  # torch also counts the w^I head sum (1 / Di of the scores)
    ("v4_csa_decode", 1e-9),  # QK^T and PV over the same 512-value vectors: both counted exactly
    ("v4_hca_decode", 1e-9),
    ("v4_mhc", 0.10),  # torch counts only the three matmuls; the simulator adds norm, Sinkhorn, post-scale
])
def test_kernel_flops_match_the_simulator_cost(kernel, rel):
    """torch's FLOP counter on the kernel (matmuls only) against the simulator's count for the case."""
    case = _first(kernel)
    sim = simulator_cost(case)["flop"]
    counted = _torch_flop(case)
    if kernel != "v4_indexer_topk":  # the indexer's cost leaves the w^I head sum out, as V3.2's does
        assert counted <= sim * (1 + 1e-9)  # the simulator never counts less matmul work than runs
    assert counted == pytest.approx(sim, rel=rel)


def test_decode_attention_and_indexer_bytes_from_the_definition():
    """Hand derivation (report §2.3; V4-Flash config: 64 heads, head_dim 512, top-k 512, window 128,
    indexer 64 x 128), fp32 everywhere: CSA reads the top-k entries + the window + the queries."""
    H, c, K, W, Hi, Di, f32 = 64, 512, 512, 128, 64, 128, 4
    B, L = 4, 8192
    csa = simulator_cost(Case("v4_csa_decode", FLASH, "decode", B, 1, L, "fp32"))
    assert csa["flop"] == 2 * 2 * B * H * c * (K + W)
    assert csa["bytes_read"] == B * (K + W) * c * f32 + B * H * c * f32
    assert csa["bytes_written"] == B * H * c * f32 + B * c * f32  # outputs + this token into the window
    hca = simulator_cost(Case("v4_hca_decode", FLASH, "decode", B, 1, L, "fp32"))
    assert hca["bytes_read"] == B * (L // 128 + W) * c * f32 + B * H * c * f32
    idx = simulator_cost(Case("v4_indexer_topk", FLASH, "decode", B, 1, L, "fp32"))
    assert idx["flop"] == 2 * B * Hi * Di * (L // 4)
    assert idx["bytes_read"] == B * (L // 4) * Di * f32 + B * Hi * Di * f32
    assert idx["bytes_written"] == B * K * 4  # int32 ids


def test_indexer_key_bytes_by_dtype():
    m = resolve_model(FLASH)
    assert indexer_key_bytes(m, "fp8") == 132  # reference §1.5 (DeepGEMM test_attention.py): 128 + 4 B scale
    assert indexer_key_bytes(m, "fp4") == 68  # 64 B of E2M1 + 4 B of UE8M0 scales
    assert indexer_key_bytes(m, "fp32") == 128 * 4  # a plain fp32 key: no scales
    assert indexer_key_bytes(resolve_model("deepseek-v3.2-exp"), "fp4") == 132  # V3.2 has no FP4 layout


def test_quick_sweep_covers_the_v4_families():
    quick = quick_cases()
    for fam in V4_FAMILIES:
        assert fam in CALIBRATION_FAMILIES
        cases = [c for c in quick if c.family == fam and c.role == "case"]
        assert len(cases) >= 8, fam
        sizes = [simulator_cost(c)["bytes_read"] + simulator_cost(c)["bytes_written"] for c in cases]
        assert min(sizes) < 32 * MiB, fam  # cache-resident (a 32-48 MiB LLC host)
        assert max(sizes) > 64 * MiB or any(c.cache_state == "cold" for c in cases), fam  # DRAM-resident
        assert all(model_config(c.model).attention == "csa_hca" for c in cases)


def test_v4_ops_map_to_their_calibration_families():
    m = resolve_model(FLASH)
    ops = step_ops(m, 1.0, 1.0, 8192.0, Precision.for_model(m))
    fam = {o.op: calibration_family(o.family, "decode", m.attention) for o in ops}
    assert fam["csa_compressor"] == fam["hca_compressor"] == "v4_compressor"
    assert fam["indexer_scores"] == "v4_indexer"
    assert fam["csa_core"] == fam["hca_core"] == fam["swa_core"] == "v4_attn"
    assert fam["mhc_mix"] == fam["mhc_post"] == "v4_mhc"
    assert fam["q_a_proj"] == "gemm"
    v3 = resolve_model("deepseek-v3")
    assert calibration_family("attn_core", "decode", v3.attention) == "mla_decode_absorbed"


