"""MHA / GQA / MQA attention core via torch's scaled_dot_product_attention, and a plain reference.

Shape legend
    B   batch (sequences)        S   query tokens per sequence this step
    L   context (cached tokens, including this step's)
    H   query heads              G   KV heads (G = H: MHA, 1 < G < H: GQA, G = 1: MQA)
    Dh  head dim

    q [B, H, S, Dh], k [B, G, L, Dh], v [B, G, L, Dh] -> o [B, H, S, Dh]
Query i sits at position L - S + i (causal, bottom-right aligned); S == L is a full causal prefill.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .common import assert_close, random_tensor, seeded
from .mla import causal_mask


def _sdpa_mask(S: int, L: int, q: torch.Tensor) -> dict:
    if S == 1:
        return {}
    if S == L:
        return {"is_causal": True}
    return {"attn_mask": causal_mask(S, L, q.device, q.dtype)}


def sdpa_gqa(q, k, v) -> torch.Tensor:
    """SDPA with enable_gqa: KV heads are broadcast to their query-head groups inside the kernel."""
    S, L = q.shape[2], k.shape[2]
    return F.scaled_dot_product_attention(q, k, v, enable_gqa=q.shape[1] != k.shape[1], **_sdpa_mask(S, L, q))


def sdpa_fold(q, k, v) -> torch.Tensor:
    """Decode (S = 1) with the H/G query heads of each group folded into the query length: one SDPA
    "head" per KV head with H/G query rows, so each KV head is read once for its whole group. Exact
    for S = 1 (no mask); other S go to enable_gqa. On CPU this is 2-5x faster than enable_gqa, and
    where B x G heads are fewer than the threads the keys are split among them (`_split_kv`)."""
    B, H, S, Dh = q.shape
    G = k.shape[1]
    if S != 1 or G == H:
        return sdpa_gqa(q, k, v)
    qf = q.reshape(B, G, H // G, Dh)
    splits = _kv_splits(B * G, k.shape[2], q.device)
    o = _split_kv(qf, k, v, splits) if splits > 1 else F.scaled_dot_product_attention(qf, k, v)  # [B, G, H/G, Dh]
    return o.view(B, H, 1, Dh)


_FLASH_WITH_LSE = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _kv_splits(heads: int, L: int, device) -> int:
    """Key splits for a CPU decode with `heads` (B x G) SDPA heads: PyTorch's CPU flash attention runs
    one (batch, head, query block) per thread, so one head leaves the other thread idle (MQA at B 1:
    10.5 ms at L 32768 on the 2-vCPU AMD EPYC, 5.6 ms split in two). The largest count up to
    threads / heads that divides L; 1 on other devices (their kernels split keys themselves)."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or _FLASH_WITH_LSE is None or heads >= threads:
        return 1
    n = -(-threads // heads)
    while L % n:
        n -= 1
    return n


def _split_kv(q, k, v, n: int) -> torch.Tensor:
    """Flash-decoding: q [B, G, R, Dh] against n consecutive key chunks [L / n] as n x B batches of one
    SDPA call, each returning its log-sum-exp; the chunks' outputs weighted by softmax over the n
    log-sum-exps give the full softmax."""
    B, G, R, Dh = q.shape
    c = k.shape[2] // n

    def chunks(x):  # [B, G, L, Dh] -> [B n, G, L / n, Dh]
        return x.view(B, G, n, c, Dh).transpose(1, 2).reshape(B * n, G, c, Dh)

    qs = q.unsqueeze(1).expand(B, n, G, R, Dh).reshape(B * n, G, R, Dh)
    o, lse = _FLASH_WITH_LSE(qs, chunks(k), chunks(v))  # [B n, G, R, Dh], [B n, G, R]
    w = torch.softmax(lse.view(B, n, G, R).float(), dim=1).to(o.dtype)
    return (o.view(B, n, G, R, Dh) * w[..., None]).sum(dim=1)


def sdpa_repeat(q, k, v) -> torch.Tensor:
    """SDPA after materialising the KV heads per query head (repeat_interleave): H/G x the KV reads."""
    S, L = q.shape[2], k.shape[2]
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, **_sdpa_mask(S, L, q))


def attention_reference(q, k, v) -> torch.Tensor:
    """softmax(Q K^T / sqrt(Dh) + mask) V, explicit, in float64."""
    q, k, v = q.double(), k.double(), v.double()
    S, L, Dh = q.shape[2], k.shape[2], q.shape[3]
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)  # [B, H, L, Dh]
    scores = q @ k.transpose(-1, -2) / Dh**0.5  # [B, H, S, L]
    mask = causal_mask(S, L, q.device, scores.dtype)
    if mask is not None:
        scores = scores + mask
    return scores.softmax(-1) @ v


ATTENTION_KERNELS = {"sdpa": sdpa_fold, "sdpa_enable_gqa": sdpa_gqa, "sdpa_repeat": sdpa_repeat}


def make_inputs(B: int, S: int, L: int, H: int, G: int, Dh: int, device, dtype, seed: int = 0) -> dict:
    g = seeded(seed, device)

    def rnd(*shape):
        return random_tensor(shape, device, dtype, 1.0, g)

    return {"q": rnd(B, H, S, Dh), "k": rnd(B, G, L, Dh), "v": rnd(B, G, L, Dh)}


# (B, S, L, H, G, Dh): decode, multi-token decode, causal prefill; MHA, GQA, MQA each.
CHECK_SHAPES = tuple(
    (B, S, L, H, G, 16) for (B, S, L) in ((2, 1, 33), (2, 3, 17), (1, 20, 20)) for (H, G) in ((4, 4), (8, 2), (4, 1))
)


def check(device, dtype, kernels=None, shapes=CHECK_SHAPES) -> None:
    """Each kernel against the float64 reference on (B, S, L, H, G, Dh) shapes (a model's own heads)."""
    for B, S, L, H, G, Dh in shapes:
        x = make_inputs(B, S, L, H, G, Dh, device, dtype, seed=S * 7 + G)
        ref = attention_reference(**x)
        for name in kernels or ATTENTION_KERNELS:
            out = ATTENTION_KERNELS[name](**x)
            assert_close(out, ref, dtype, f"{name} vs reference at B={B} S={S} L={L} H={H} G={G}")
