"""FP4 (MXFP4) routed experts in the planner: bytes from named factors, and the peak they run at.

MXFP4 (DeepSeek-V4 `ffn.experts.*`: packed E2M1, 2 values per byte, one F8_E8M0 scale per 32
values; shared/reference/deepseek-v4.md §1.3): 4 bits per value + 1 scale byte per 32 values.
"""

from __future__ import annotations

import pytest

from simulators.parallel import Layout, routed_op_on_rank, weight_bytes_per_device
from simulators.plan import Workload, plan
from simulators.precision import Precision, expert_compute_dtype, expert_compute_note
from tests.conftest import tiny_model

HIDDEN, EXPERT_WIDTH = 64, 32
MATRICES = 3  # SwiGLU gate, up, down
MOE_LAYERS = 4


def _moe(expert_dtype: str = "fp4"):
    return tiny_model("gqa", hidden_size=HIDDEN, num_attention_heads=2, num_key_value_heads=2, head_dim=32,
                      intermediate_size=128, n_routed_experts=8, num_experts_per_tok=2,
                      moe_intermediate_size=EXPERT_WIDTH, n_moe_layers=MOE_LAYERS, weight_dtype="fp8",
                      expert_dtype=expert_dtype)


def test_mxfp4_expert_bytes_by_hand():
    """One expert: 3 x 64 x 32 = 6,144 values -> 6,144 x 4 bits = 3,072 B + 6,144 / 32 = 192 E8M0
    scale bytes = 3,264 B. Two experts read, no tokens: 6,528 B per layer."""
    m = _moe()
    p = Precision.for_model(m)
    o = routed_op_on_rank(m, p, assignments=0.0, distinct=2.0)
    assert float(o.bytes_read) == 6_528
    assert o.n_layers == MOE_LAYERS
    # the same op with FP8 experts (no block scales here): 2 x 6,144 x 1 B
    assert float(routed_op_on_rank(_moe("fp8"), Precision.of("fp8"), 0.0, 2.0).bytes_read) == 12_288


def test_redundant_fp4_expert_memory_by_hand():
    """EP2 with 2 redundant experts: each device holds one more expert in each of 4 MoE layers:
    4 x 3,264 B = 13,056 B more per device."""
    m = _moe()
    p = Precision.for_model(m)
    plain = weight_bytes_per_device(m, p, 1, 2, 1, 2, 0)
    extra = weight_bytes_per_device(m, p, 1, 2, 1, 2, 2)
    assert float(extra - plain) == 13_056


def test_fp4_peak_only_where_the_profile_lists_one(shipped_profiles):
    m = _moe()
    b200, h200, ascend = shipped_profiles["b200"], shipped_profiles["h200"], shipped_profiles["ascend-910c"]
    assert b200.peak("fp4") and not h200.peak("fp4") and not ascend.peak("fp4")
    w4a8 = Precision.for_model(m, act="fp8")
    w4a4 = Precision.for_model(m, act="fp4")
    assert expert_compute_dtype(w4a8, b200) == "fp8"  # FP8 x FP4 MMA: the FP8 rate
    assert expert_compute_dtype(w4a4, b200) == "fp4"  # both operands FP4: the FP4 peak
    assert expert_compute_dtype(w4a4, h200) == "bf16"  # no FP4 peak: dequantised, never the FP4 peak
    assert "FP4 peak" in expert_compute_note(w4a4, b200) and "fallback" not in expert_compute_note(w4a4, b200)
    assert expert_compute_note(Precision.of("fp8"), h200) == ""  # FP8 experts: nothing to say


def test_plan_labels_the_fallback_on_a_profile_without_fp4(shipped_profiles):
    m = _moe()
    table = plan(m, [shipped_profiles["h200"], shipped_profiles["b200"]], Workload(256, 64),
                 p=Precision.for_model(m)).table.set_index("hardware")
    h200, b200 = table.loc["h200", "assumptions"], table.loc["b200", "assumptions"]
    assert "no FP4 peak in the h200 profile" in h200 and "BF16" in h200 and "(fallback)" in h200
    assert "FP8 x FP4 MMA" in b200 and "fallback" not in b200


def test_fp4_experts_shorten_a_memory_bound_decode_step(shipped_profiles):
    """Same model, same layout: reading 4.25-bit instead of 8-bit experts cannot make decode slower,
    and on a weight-bound decode step it is faster."""
    from simulators.plan import evaluate_layout

    hw = shipped_profiles["b200"]
    wl = Workload(256, 64)
    fp4 = evaluate_layout(_moe("fp4"), Precision.for_model(_moe("fp4")), hw, Layout(dp=2, ep=2), 1, "decode", wl)
    fp8 = evaluate_layout(_moe("fp8"), Precision.for_model(_moe("fp8")), hw, Layout(dp=2, ep=2), 1, "decode", wl)
    assert fp4["memory_bound_s"] < fp8["memory_bound_s"]
    assert fp4["weight_bytes_per_device"] < fp8["weight_bytes_per_device"]


@pytest.mark.parametrize("name", ["h200", "ascend-910c"])
def test_fallback_note_names_the_dtype(shipped_profiles, name):
    hw = shipped_profiles[name]
    note = expert_compute_note(Precision.for_model(_moe()), hw)
    assert f"no FP4 peak in the {name} profile" in note and expert_compute_dtype(
        Precision.for_model(_moe()), hw).upper() in note
