"""Every benchmark kernel variant against its reference on small shapes (CPU, fp32 unless noted)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bench.kernels import attention, calibrate, mla, moe  # noqa: E402
from bench.kernels.common import KernelCheckError, assert_close, random_tensor  # noqa: E402

F32 = torch.float32
DIMS = mla.MLADims(H=4, C=32, R=8, Dn=16, Dv=16)


@pytest.mark.parametrize("B,S,L", [(2, 1, 37), (2, 3, 19), (1, 24, 24), (3, 1, 1)])
def test_mla_naive_and_absorbed_agree(B, S, L):
    x = mla.make_inputs(DIMS, B, S, L, "cpu", F32, seed=L)
    ref = mla.mla_reference(**x, scale=DIMS.softmax_scale)
    naive = mla.mla_naive(**x, scale=DIMS.softmax_scale)
    absorbed = mla.mla_absorbed(**x, scale=DIMS.softmax_scale)
    assert naive.shape == absorbed.shape == (B, S, DIMS.H, DIMS.Dv)
    assert torch.allclose(naive, absorbed, rtol=1e-4, atol=1e-4)
    assert torch.allclose(absorbed, ref.float(), rtol=1e-4, atol=1e-4)
    assert torch.allclose(mla.mla_absorbed_einsum(**x, scale=DIMS.softmax_scale), ref.float(), rtol=1e-4, atol=1e-4)


def test_mla_absorbed_with_separate_caches_and_unequal_head_dims():
    dims = mla.MLADims(H=3, C=24, R=8, Dn=16, Dv=12)  # Dv < Dn + R: naive pads V for SDPA
    x = mla.make_inputs(dims, 2, 2, 9, "cpu", F32)
    assert mla.latent_rope_view(x["kv"], x["pe"]) is not None
    split = dict(x, kv=x["kv"].contiguous(), pe=x["pe"].contiguous())
    assert mla.latent_rope_view(split["kv"], split["pe"]) is None
    ref = mla.mla_reference(**x, scale=dims.softmax_scale).float()
    assert torch.allclose(mla.mla_absorbed(**split, scale=dims.softmax_scale), ref, rtol=1e-4, atol=1e-4)
    assert torch.allclose(mla.mla_naive(**x, scale=dims.softmax_scale), ref, rtol=1e-4, atol=1e-4)


def test_mla_check_runs_in_bf16():
    mla.check("cpu", torch.bfloat16)


def test_causal_mask_is_bottom_right():
    m = mla.causal_mask(2, 4, "cpu", F32)
    # query 0 sits at position 2: sees keys 0..2; query 1 at position 3 sees all
    assert torch.isinf(m[0, 3]) and not torch.isinf(m[0, :3]).any() and not torch.isinf(m[1]).any()
    assert mla.causal_mask(1, 5, "cpu", F32) is None


@pytest.mark.parametrize("H,G", [(8, 8), (8, 2), (8, 1)], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("B,S,L", [(2, 1, 33), (1, 20, 20), (2, 3, 17)], ids=["decode", "prefill", "multi-token"])
def test_sdpa_matches_reference(H, G, B, S, L):
    x = attention.make_inputs(B, S, L, H, G, 16, "cpu", F32, seed=H + G)
    ref = attention.attention_reference(**x).float()
    for name, fn in attention.ATTENTION_KERNELS.items():
        out = fn(**x)
        assert out.shape == (B, H, S, 16), name
        assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4), name


@pytest.mark.parametrize("n", [2, 3, 4])
def test_split_kv_decode_matches_reference(n):
    # flash-decoding: n key chunks combined by their log-sum-exps give the full softmax
    x = attention.make_inputs(1, 1, 96, 8, 1, 16, "cpu", F32, seed=n)
    ref = attention.attention_reference(**x).float()
    out = attention._split_kv(x["q"].reshape(1, 1, 8, 16), x["k"], x["v"], n).view(1, 8, 1, 16)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_fold_splits_keys_only_when_heads_leave_threads_idle(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    cpu = torch.device("cpu")
    assert attention._kv_splits(1, 96, cpu) == 4  # one head, four threads
    assert attention._kv_splits(2, 96, cpu) == 2
    assert attention._kv_splits(1, 33, cpu) == 3  # the largest count up to 4 that divides L
    assert attention._kv_splits(1, 97, cpu) == 1  # prime L: no split
    assert attention._kv_splits(4, 96, cpu) == 1
    x = attention.make_inputs(1, 1, 96, 8, 1, 16, "cpu", F32, seed=5)
    assert torch.allclose(attention.sdpa_fold(**x), attention.attention_reference(**x).float(), rtol=1e-4, atol=1e-4)


def _spec(**kw) -> moe.RouterSpec:
    base = dict(n_experts=16, top_k=4, n_group=4, topk_group=2, score_func="sigmoid", route_scale=2.5,
                norm_topk=True, use_bias=True)
    return moe.RouterSpec(**{**base, **kw})


@pytest.mark.parametrize("T", [1, 7, 64])
@pytest.mark.parametrize("dims", moe.CHECK_DIMS, ids=["v2-like", "v3-like"])
def test_moe_loop_and_grouped_agree(dims, T):
    p = moe.make_params(dims, "cpu", F32, seed=T)
    x = moe.make_tokens(T, dims.d, "cpu", F32, seed=T)
    ref = moe.moe_reference(x, p, dims.router).float()
    y_loop, counts = moe.moe_loop(x, p, dims.router)
    assert torch.allclose(y_loop, ref, rtol=1e-4, atol=1e-4)
    assert counts.shape == (dims.router.n_experts,) and int(counts.sum()) == T * dims.router.top_k
    for impl in moe.grouped_impls("cpu"):
        y, c = moe.moe_grouped(x, p, dims.router, impl)
        assert torch.allclose(y, y_loop, rtol=1e-4, atol=1e-4), impl
        assert torch.equal(c, counts), impl


def test_router_group_limited_topk_stays_in_chosen_groups():
    spec = _spec(use_bias=False, score_func="softmax", norm_topk=False, route_scale=1.0)
    T, d = 200, 24
    x = random_tensor((T, d), "cpu", F32, 1.0, torch.Generator().manual_seed(0))
    w = random_tensor((spec.n_experts, d), "cpu", F32, 1.0, torch.Generator().manual_seed(1))
    weights, idx = moe.route(x, w, None, spec)
    scores = torch.mm(x, w.t()).softmax(-1).view(T, spec.n_group, -1)
    chosen = scores.amax(-1).topk(spec.topk_group, dim=-1)[1]  # [T, Kg]
    group_of = idx // (spec.n_experts // spec.n_group)  # [T, K]
    assert (group_of[..., None] == chosen[:, None, :]).any(-1).all()
    assert len(set(idx[0].tolist())) == spec.top_k


def test_router_bias_changes_selection_not_weights():
    spec = _spec()
    T, d = 64, 24
    x = random_tensor((T, d), "cpu", F32, 1.0, torch.Generator().manual_seed(2))
    w = random_tensor((spec.n_experts, d), "cpu", F32, 1.0, torch.Generator().manual_seed(3))
    bias = torch.zeros(spec.n_experts)
    bias[5] = 10.0  # steers every token to expert 5 (and its group)
    w0, i0 = moe.route(x, w, torch.zeros(spec.n_experts), spec)
    w1, i1 = moe.route(x, w, bias, spec)
    assert (i1 == 5).any(-1).all() and not torch.equal(i0, i1)
    # combine weights: the unbiased sigmoid scores of the selected experts, normalised, times route_scale
    scores = torch.mm(x, w.t()).sigmoid()
    expect = scores.gather(1, i1)
    expect = expect / expect.sum(-1, keepdim=True) * spec.route_scale
    assert torch.allclose(w1, expect, rtol=1e-5, atol=1e-6)
    assert torch.allclose(w1.sum(-1), torch.full((T,), spec.route_scale), rtol=1e-5)


def test_router_softmax_without_norm_keeps_raw_probabilities():
    spec = moe.RouterSpec(n_experts=8, top_k=2)  # V2-Lite: softmax, no normalisation, scale 1
    x = random_tensor((5, 16), "cpu", F32, 1.0, torch.Generator().manual_seed(4))
    w = random_tensor((8, 16), "cpu", F32, 1.0, torch.Generator().manual_seed(5))
    weights, idx = moe.route(x, w, None, spec)
    probs = torch.mm(x, w.t()).softmax(-1)
    assert torch.allclose(weights, probs.gather(1, idx)) and (weights.sum(-1) < 1).all()
    assert torch.equal(idx, probs.topk(2, dim=-1)[1])


def test_calibration_kernels():
    x = calibrate.make_gemm_inputs(16, 64, 256, "cpu", "fp32")
    assert torch.allclose(calibrate.run_gemm(x).double(), x["a"].double() @ x["b"].double(), rtol=1e-4, atol=1e-4)
    s = calibrate.make_stream_inputs(1 << 16, "cpu")
    assert torch.equal(calibrate.copy(s["dst"], s["src"]), s["src"])
    rows = calibrate.read(s["src"], s["ones"])
    assert torch.allclose(rows.double(), s["src"].double().view(-1, 1024).sum(1), rtol=1e-4, atol=1e-3)
    calibrate.check("cpu", "fp32")


def test_assert_close_names_the_failure():
    with pytest.raises(KernelCheckError, match="my kernel: max abs error"):
        assert_close(torch.ones(3), torch.zeros(3), F32, "my kernel")
    with pytest.raises(KernelCheckError, match="shape"):
        assert_close(torch.ones(3), torch.ones(4), F32, "x")


def test_random_tensor_tiles_beyond_block(monkeypatch):
    import bench.kernels.common as common

    monkeypatch.setattr(common, "RANDOM_BLOCK_ELEMENTS", 10)
    t = common.random_tensor((7, 5), "cpu", F32, 2.0)
    flat = t.view(-1)
    assert torch.equal(flat[10:20], flat[:10]) and torch.equal(flat[30:35], flat[:5])
    assert flat[:10].abs().max() <= 2.0 * 3**0.5
