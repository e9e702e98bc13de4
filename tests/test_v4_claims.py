"""The DeepSeek-V4 report's efficiency claims at a 1M-token context, as tests (issue 9 §4).

Sources of the claims (the figures that CHECK; the ones used to derive are the config fields
and the kernel layouts): report abstract (S1, shared/reference/deepseek-v4.md): V4-Pro needs
27% of V3.2's single-token FLOPs and 10% of its KV cache, V4-Flash 10% and 7%; §3.5.2: the SWA
KV "is approximately 8 times larger than the compressed CSA and HCA KV entries".
The report gives whole percents and does not state the storage precisions of its comparison, so
the tolerance is one percentage point, and the precisions are DeepSeek's own: V3.2 in FlashMLA's
FP8 sparse layout (656 B + its 132 B FP8 indexer key), V4 in FlashMLA's MODEL1 FP8 layout with
the FP4 indexer keys the report says V4 caches (§5.2.1).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulators.kv_ledger import kv_ledger, main_entry_bytes
from simulators.model_config import resolve_model
from simulators.model_cost import step_ops
from simulators.precision import Precision

ONE_M = 1 << 20  # the report's 1M context (max_position_embeddings 1048576)


def _kv(name: str, idx: str = "fp4") -> float:
    return float(kv_ledger(resolve_model(name), ONE_M, "fp8", idx).total)


def _decode_flop(name: str) -> float:
    m = resolve_model(name)
    ops = step_ops(m, 1.0, 1.0, float(ONE_M), Precision.for_model(m), phase="decode")
    return float(sum(o.flop * o.n_layers for o in ops))


@pytest.fixture(scope="module")
def v32_kv():
    return _kv("deepseek-v3.2-exp")


@pytest.fixture(scope="module")
def v32_flop():
    return _decode_flop("deepseek-v3.2-exp")


@pytest.mark.parametrize("name, claim", [("deepseek-v4-pro", 0.10), ("deepseek-v4-flash", 0.07)])
def test_kv_cache_vs_v32_at_1m(name, claim, v32_kv):
    # Daedalus: Pro 10.5%, Flash 7.3% (main layers; MTP layer apart in both models)
    assert _kv(name) / v32_kv == pytest.approx(claim, abs=0.01)


def test_fp8_indexer_keys_would_miss_the_pro_claim_by_more(v32_kv):
    # With Hopper's FP8 indexer keys (132 B, not 68 B) Pro holds 11.5%: the claim assumes FP4 keys.
    assert _kv("deepseek-v4-pro", "fp8") / v32_kv > 0.11


def test_single_token_flops_vs_v32_at_1m_pro(v32_flop):
    # Daedalus: 26.2% (indexer scores over 262,144 compressed entries on 30 CSA layers dominate V4;
    # V3.2's indexer over all 1M tokens dominates V3.2)
    assert _decode_flop("deepseek-v4-pro") / v32_flop == pytest.approx(0.27, abs=0.01)


@pytest.mark.xfail(strict=True, reason=(
    "deviation: Daedalus counts 12.1% for V4-Flash, not the report's 10%. 64% of Flash's step is "
    "its indexer (64 heads x 128 dims over L/4 entries on 21 CSA layers, counted as for V3.2's "
    "indexer). The report does not say how it counts FLOPs (e.g. whether FP4 indexer products "
    "count at a discount); nothing is tuned to reach 10%. See simulators/compressed_attention.py."))
def test_single_token_flops_vs_v32_at_1m_flash(v32_flop):
    assert _decode_flop("deepseek-v4-flash") / v32_flop == pytest.approx(0.10, abs=0.01)


def test_kv_vs_bf16_gqa8_baseline_about_2_percent():
    # Issue 9 §4 ("~2%", report §2.3.4). ASSUMED baseline (not given in the reference): BF16
    # GQA with 8 KV heads of 128 dims on the same 61 layers, every token cached.
    pro = resolve_model("deepseek-v4-pro")
    kv_heads, head_dim, bf16, k_and_v = 8, 128, 2, 2
    baseline = ONE_M * pro.num_hidden_layers * k_and_v * kv_heads * head_dim * bf16
    assert _kv("deepseek-v4-pro") / baseline == pytest.approx(0.02, abs=0.005)


@pytest.mark.parametrize("name", ["deepseek-v4-pro", "deepseek-v4-flash"])
def test_swa_kv_is_about_8x_the_compressed_entries(name):
    # §3.5.2: an uncompressed SWA entry for every token (every layer) vs the compressed CSA/HCA
    # entries of the same tokens; "approximately 8 times" read as 8 +- 0.5.
    m = resolve_model(name)
    entry = main_entry_bytes(m, "fp8")
    swa_all_tokens = ONE_M * m.num_hidden_layers * entry
    led = kv_ledger(m, ONE_M, "fp8")
    compressed = float(led.main)  # main compressed entries only (no indexer keys, no window)
    assert swa_all_tokens / compressed == pytest.approx(8.0, abs=0.5)


def test_ep_compute_per_communication_byte():
    # Report §3.1: each token-expert pair costs 6hd FLOPs (h hidden, d expert width): Pro's routed
    # op must carry exactly that per assignment.
    pro = resolve_model("deepseek-v4-pro")
    T = np.asarray(64.0)
    routed = [o for o in step_ops(pro, T, 1.0, 4096.0, Precision.for_model(pro)) if o.op == "moe_routed"][0]
    assert float(routed.flop) / (64 * pro.num_experts_per_tok) == 6 * pro.hidden_size * pro.moe_intermediate_size
