"""Invariants of the cost model, checked over generated inputs (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.attention import kv_bytes_per_token, kv_elements_per_token_per_layer
from simulators.memory import kv_cache_bytes
from simulators.model_cost import family_cost, step_ops
from simulators.moe import expected_distinct_experts
from simulators.ops import CausalTiles, computed_pairs, visible_pairs
from simulators.precision import Precision
from simulators.roofline import op_time

from .conftest import tiny_model

P = Precision()
batches = st.integers(1, 512)
contexts = st.integers(1, 1 << 20)


@given(batches, contexts, st.sampled_from(["mha", "gqa", "mqa", "mla"]))
def test_kv_linear_in_context_and_batch(B, L, attention):
    m = tiny_model(attention)
    one = kv_cache_bytes(m, 1, 1, P)
    assert kv_cache_bytes(m, B, L, P) == pytest.approx(B * L * one)
    assert kv_cache_bytes(m, 2 * B, L, P) == pytest.approx(2 * kv_cache_bytes(m, B, L, P))
    assert kv_cache_bytes(m, B, L + 7, P) == pytest.approx(kv_cache_bytes(m, B, L, P) + kv_cache_bytes(m, B, 7, P))


@given(heads=st.integers(4, 128), head_dim=st.sampled_from([64, 96, 128, 256]), groups=st.integers(3, 64))
def test_mla_below_gqa_below_mha_for_the_same_dims(heads, head_dim, groups):
    """With DeepSeek-V2's ratios (d_c = 4 d_h, d_h^R = d_h / 2) MLA equals GQA with 2.25 groups,
    so for 3 <= n_g < n_h: MLA < GQA < MHA."""
    groups = min(groups, heads - 1)
    if groups < 3 or heads % groups:
        return
    mha = tiny_model("gqa", num_attention_heads=heads, num_key_value_heads=heads, head_dim=head_dim)
    gqa = replace(mha, num_key_value_heads=groups)
    mla = replace(mha, kv_lora_rank=4 * head_dim, qk_rope_head_dim=head_dim // 2, qk_nope_head_dim=head_dim,
                  v_head_dim=head_dim)
    sizes = [kv_elements_per_token_per_layer(x) for x in (mla, gqa, mha)]
    assert sizes[0] < sizes[1] < sizes[2]


@settings(deadline=None)
@given(B=st.integers(1, 256), L=st.integers(64, 1 << 18), heads=st.sampled_from([8, 16, 128]))
def test_absorbed_decode_reads_fewer_bytes_than_naive(B, L, heads):
    m = tiny_model("mla", num_attention_heads=heads)
    core = ("attn_core",)
    absorbed = family_cost(step_ops(m, B, 1, L, P, mla_mode="absorbed"), core)
    naive = family_cost(step_ops(m, B, 1, L, P, mla_mode="naive"), core)
    assert absorbed[1] + absorbed[2] < naive[1] + naive[2]


@settings(deadline=None)
@given(B=batches, S=st.integers(1, 4096), extra=st.integers(0, 1 << 16),
       attention=st.sampled_from(["mha", "gqa", "mqa", "mla"]), phase=st.sampled_from(["prefill", "decode"]))
def test_time_at_least_each_bound(shipped_profiles, B, S, extra, attention, phase):
    hw = shipped_profiles["h100-sxm"]
    m = tiny_model(attention)
    L = S + extra
    for o in step_ops(m, B, S, L, P, phase=phase):
        t = op_time(o.flop, o.bytes, o.family, o.compute_dtype, hw)
        assert t.time_s >= t.compute_time_s and t.time_s >= t.memory_time_s
        assert t.time_s == pytest.approx(max(t.compute_time_s, t.memory_time_s))
        assert o.flop >= 0 and o.bytes_read > 0 and o.bytes_written >= 0


@given(S=st.integers(1, 300), extra=st.integers(0, 300), top_k=st.one_of(st.none(), st.integers(1, 400)))
def test_visible_pairs_matches_brute_force(S, extra, top_k):
    L = S + extra
    visible = [L - S + j + 1 for j in range(S)]
    expected = sum(v if top_k is None else min(v, top_k) for v in visible)
    assert visible_pairs(S, L, top_k) == pytest.approx(expected)


@settings(deadline=None)
@given(S=st.integers(2, 500), q_small=st.integers(4, 40), q_large=st.integers(8, 80), kv=st.integers(8, 300))
def test_tiled_causal_pairs_match_a_blockwise_mask(S, q_small, q_large, kv):
    # the kernel's loop written out on the mask: per query tile, every key tile that holds a key its
    # last query sees, counted whole (cut at S); never fewer than the visible pairs, never more than S^2
    tiles = CausalTiles(q_tiles=((300, q_large), (0, q_small)), kv_tile=kv)
    q = q_large if S >= 300 else q_small
    visible = np.tril(np.ones((S, S), dtype=bool))
    expected = 0
    for r0 in range(0, S, q):
        rows = visible[r0:r0 + q]
        for c0 in range(0, S, kv):
            if rows[:, c0:c0 + kv].any():
                expected += rows.shape[0] * min(kv, S - c0)
    got = float(computed_pairs(S, S, tiles))
    assert got == expected
    assert visible_pairs(S, S) <= got <= S * S
    assert float(computed_pairs(1, S, tiles)) == S  # a decode step: every key, tiles or not
    assert float(computed_pairs(3, S + 3, tiles)) == 3 * (S + 3)  # an explicit mask skips nothing


@given(T=st.integers(1, 10_000), E=st.integers(2, 512), k=st.integers(1, 16), skew=st.floats(0.0, 2.0))
def test_distinct_experts_bounds(T, E, k, skew):
    k = min(k, E)
    d = float(expected_distinct_experts(T, E, k, skew))
    assert d <= min(E, T * k) + 1e-9
    assert d >= min(k, E) - 1e-9 if skew == 0 else d > 0
    assert float(expected_distinct_experts(T + 1, E, k, skew)) >= d - 1e-9


def test_distinct_experts_uniform_closed_form_and_skew():
    # one token selects exactly k; many tokens hit every expert
    assert expected_distinct_experts(1, 256, 8) == pytest.approx(8)
    assert expected_distinct_experts(10_000, 256, 8) == pytest.approx(256)
    # skewed routing concentrates load: fewer distinct experts at the same batch
    assert expected_distinct_experts(64, 256, 8, skew=1.0) < expected_distinct_experts(64, 256, 8)
    # vectorised over tokens
    out = expected_distinct_experts(np.array([1, 2, 4]), 64, 6, skew=0.5)
    assert out.shape == (3,) and np.all(np.diff(out) > 0)


def test_sparse_attention_caps_core_work(shipped_models):
    """DSA (V3.2-Exp): core attention over top-k tokens is O(L k), the indexer stays O(L^2)."""
    m = shipped_models["deepseek-v3.2-exp"]
    short = family_cost(step_ops(m, 1, 1, m.index_topk, P), ("attn_core",))[0]
    long = family_cost(step_ops(m, 1, 1, 64 * m.index_topk, P), ("attn_core",))[0]
    assert long == pytest.approx(short, rel=0.01)
    idx_short = family_cost(step_ops(m, 1, 1, m.index_topk, P), ("indexer",))[0]
    idx_long = family_cost(step_ops(m, 1, 1, 64 * m.index_topk, P), ("indexer",))[0]
    assert idx_long > 10 * idx_short
    assert kv_bytes_per_token(m, 2.0) > kv_bytes_per_token(replace(m, index_topk=0), 2.0)
