"""The KV ledger: entry layouts against DeepSeek's kernels, the closed form against a token-by-
token count, and per-device KV under TP / DP. Layout sources: deepseek-ai/FlashMLA tests/quant.py
and csrc config.h comments; deepseek-ai/DeepGEMM tests/test_attention.py (reference §1.5)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.attention import kv_bytes_per_token
from simulators.kv_ledger import (
    indexer_key_bytes,
    kv_bytes_per_device,
    kv_curve,
    kv_layout,
    kv_ledger,
    layer_kv,
    main_entry_bytes,
)
from simulators.model_config import resolve_model



def test_entry_layouts_match_flashmla_and_deepgemm(pro):
    v3, v32 = resolve_model("deepseek-v3"), resolve_model("deepseek-v3.2-exp")
    # FlashMLA sm100 decode config.h: "656 for V32 and 576 for MODEL1" (576 = NoPE + RoPE part;
    # + "7 fp8_e4m3 + 1 padding" scale bytes = 584, sm90 config.h)
    assert main_entry_bytes(v3, "fp8") == 656 and main_entry_bytes(v32, "fp8") == 656
    assert main_entry_bytes(pro, "fp8") == 576 + 7 + 1
    assert main_entry_bytes(pro, "bf16") == 1024  # report §2.3.4: FP8 layout "nearly half" of BF16
    # DeepGEMM tests/test_attention.py: FP4 key = head_dim // 2 + 4; FP8 key = 128 + 4 (FP32 scale)
    assert indexer_key_bytes(pro, "fp4") == 128 // 2 + 4
    assert indexer_key_bytes(pro, "fp8") == 128 + 4
    assert indexer_key_bytes(v32, "fp4") == 132  # V3.2 always caches FP8 + scale (inference/model.py)
    # ISCA'25 Table 1: V3 BF16 KV 70.272 KB per token (the existing published figure still holds)
    assert kv_bytes_per_token(v3, 2.0) == pytest.approx(70272)


def test_fixed_window_is_128_fp8_entries(pro):
    # reference §1.5: SWA state = 128 entries x 584 B = 74,752 B per layer per sequence
    for kind in ("csa", "hca", "swa"):
        assert float(layer_kv(pro, kind, 10, "fp8")["window"]) == 74752


def _count_token_by_token(m, L: int, kv: str, idx: str) -> float:
    """Independent of the closed form: walk the sequence, complete a compressed entry whenever a
    block of m tokens fills up, and keep the window at its fixed size."""
    entry, key = main_entry_bytes(m, kv), indexer_key_bytes(m, idx)
    total = 0.0
    for kind in m.kinds:
        entries = 0
        pending = 0
        ratio = {"csa": 4, "hca": 128}.get(kind)
        for _ in range(L):
            if ratio:
                pending += 1
                if pending == ratio:
                    entries, pending = entries + 1, 0
        total += entries * (entry + (key if kind == "csa" else 0)) + m.sliding_window * entry
    return total


@pytest.mark.parametrize("L", [1, 127, 128, 1000, 4099])
def test_ledger_equals_a_token_by_token_count(flash, L):
    led = kv_ledger(flash, L, "fp8", "fp4")
    assert float(led.main + led.indexer + led.window) == _count_token_by_token(flash, L, "fp8", "fp4")


def test_paged_blocks_pad_to_576_bytes(pro):
    # FlashMLA tests/quant.py: size_per_block_padded = ceil(block_size * 584 / 576) * 576; one V4
    # block covers 128 tokens (report §3.5.1) = 32 CSA entries: 18,688 B -> 33 x 576 = 19,008 B
    csa = layer_kv(pro, "csa", 128, "fp8", paged=True)
    assert float(csa["main"]) == 19008
    hca = layer_kv(pro, "hca", 1, "fp8", paged=True)  # one HCA entry per block, padded to 1,152 B
    assert float(hca["main"]) == 2 * 576


def test_kv_per_device_under_tp_and_dp(pro):
    # V4's single K=V head is replicated by TP and split by DP attention (issue 9 §3)
    base = kv_bytes_per_device(pro, 8, 65536, "fp8")
    assert float(kv_bytes_per_device(pro, 8, 65536, "fp8", tp=8)) == float(base)
    assert float(kv_bytes_per_device(pro, 8, 65536, "fp8", dp=8)) == pytest.approx(float(base) / 8)
    llama = resolve_model("llama-3.1-70b")  # 8 KV heads: TP 8 splits them, TP 16 cannot go further
    one = float(kv_bytes_per_device(llama, 1, 4096, "bf16"))
    assert float(kv_bytes_per_device(llama, 1, 4096, "bf16", tp=8)) == pytest.approx(one / 8)
    assert float(kv_bytes_per_device(llama, 1, 4096, "bf16", tp=16)) == pytest.approx(one / 8)


def test_curve_and_layout_shapes(pro):
    df = kv_curve(pro, [4096, 1 << 20], [1, 4], "fp8")
    assert len(df) == 4
    parts = df[["kv_main_bytes", "kv_indexer_bytes", "kv_window_bytes", "kv_state_bytes"]].sum(axis=1)
    assert np.allclose(parts, df["kv_bytes"])
    b1 = df[(df.context == 4096) & (df.batch == 1)]["kv_bytes"].item()
    b4 = df[(df.context == 4096) & (df.batch == 4)]["kv_bytes"].item()
    assert b4 == pytest.approx(4 * b1)
    kinds = {r["kind"]: r for r in kv_layout(pro, "fp8")}
    assert set(kinds) == {"csa", "hca", "swa"} and kinds["swa"]["mtp_layers"] == 1
