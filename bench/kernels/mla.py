"""Multi-head latent attention (DeepSeek-V2/V3) core: decode in the naive and weight-absorbed forms,
and causal prefill in the naive form. What the simulator's "attn_core" family counts.

Shape legend
    B   batch (sequences)            S   query tokens per sequence this step
    L   context (cached tokens, including this step's)
    H   query heads                  C   kv_lora_rank (latent width)
    R   qk_rope_head_dim             Dn  qk_nope_head_dim          Dv  v_head_dim

Inputs are taken *after* the projections, as in DeepSeek-V3 `inference/model.py` MLA.forward:
    q_nope [B, S, H, Dn], q_pe [B, S, H, R]     queries (rope already applied to q_pe)
    kv     [B, L, C]                              latent cache c_KV (after kv_norm)
    pe     [B, L, R]                              decoupled rope key cache k_pe
    wkv_b  [H, Dn + Dv, C]                        W_UKV: rows :Dn are W_UK, rows Dn: are W_UV
Output: attention output o [B, S, H, Dv] (before o_proj).

Query i of a step sits at position L - S + i and sees keys 0 .. L - S + i (causal, bottom-right).
Batched matmuls (bmm / matmul) instead of einsum: einsum costs ~50 us per call on a small CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .common import assert_close, random_tensor, seeded


@dataclass(frozen=True)
class MLADims:
    H: int
    C: int
    R: int
    Dn: int
    Dv: int

    @property
    def softmax_scale(self) -> float:
        return (self.Dn + self.R) ** -0.5  # 1/sqrt(qk head dim); YaRN mscale is left out


def causal_mask(S: int, L: int, device, dtype) -> torch.Tensor | None:
    """Additive mask [S, L] for S queries at the end of an L-token context; None when S == 1."""
    if S == 1:
        return None
    pos_q = torch.arange(L - S, L, device=device)[:, None]  # [S, 1]
    pos_k = torch.arange(L, device=device)[None, :]  # [1, L]
    return torch.zeros(S, L, device=device, dtype=dtype).masked_fill(pos_k > pos_q, float("-inf"))


def latent_rope_view(kv: torch.Tensor, pe: torch.Tensor) -> torch.Tensor | None:
    """[B, L, C+R] view when kv and pe are the two halves of one cache buffer (as make_inputs and
    FlashMLA lay it out: 576 values per token), else None."""
    C = kv.shape[-1]
    if kv.stride() != pe.stride() or kv.stride(-1) != 1 or kv.shape[:2] != pe.shape[:2]:
        return None
    if pe.data_ptr() != kv.data_ptr() + C * kv.element_size() or kv.stride(1) < C + pe.shape[-1]:
        return None
    return kv.as_strided((*kv.shape[:2], C + pe.shape[-1]), kv.stride())


def mla_absorbed(q_nope, q_pe, kv, pe, wkv_b, scale: float) -> torch.Tensor:
    """Weight-absorbed MLA (DeepSeek-V3 attn_impl="absorb"): attend in the latent space.

    MQA-like: one shared "KV head" of width C + R for scores and C for values, read once per
    sequence for all S*H query rows. The score GEMM is tall-skinny (M = L, N = S*H): on CPUs it
    runs faster than the short-wide one (M = S*H, N = L).
    """
    B, S, H, Dn = q_nope.shape
    L, C = kv.shape[1], kv.shape[2]
    w_uk = wkv_b[:, :Dn]  # [H, Dn, C]
    w_uv = wkv_b[:, Dn:]  # [H, Dv, C]
    # q_nope @ W_UK per head: [H, B*S, Dn] @ [H, Dn, C] -> [H, B*S, C]
    q_lat = torch.bmm(q_nope.reshape(B * S, H, Dn).transpose(0, 1), w_uk)
    q_lat = q_lat.transpose(0, 1).reshape(B, S * H, C)  # [B, S*H, C], rows ordered (s, h)
    q_rope = q_pe.reshape(B, S * H, -1)  # [B, S*H, R]
    # scores over latent + rope, key-major: [B, L, C+R] @ [B, C+R, S*H] -> [B, L, S*H]
    cache = latent_rope_view(kv, pe)
    if cache is not None:  # one GEMM over the 576-wide cache rows
        scores = torch.bmm(cache, torch.cat([q_lat, q_rope], dim=-1).transpose(1, 2))
    else:
        scores = torch.baddbmm(torch.bmm(pe, q_rope.transpose(1, 2)), kv, q_lat.transpose(1, 2))
    # softmax over L on a contiguous [B, S*H, L] copy: softmax over a strided dim is ~10x slower on CPU
    scores = scores.transpose(1, 2).contiguous().mul_(scale)
    mask = causal_mask(S, L, kv.device, scores.dtype)
    if mask is not None:
        scores = scores.view(B, S, H, L).add_(mask[None, :, None, :]).view(B, S * H, L)
    probs = scores.softmax(dim=-1)
    o_lat = torch.bmm(probs, kv)  # values over the latent: [B, S*H, L] @ [B, L, C] -> [B, S*H, C]
    # W_UV after attention: [H, B*S, C] @ [H, C, Dv] -> [H, B*S, Dv]
    o = torch.bmm(o_lat.view(B * S, H, C).transpose(0, 1), w_uv.transpose(1, 2))
    return o.transpose(0, 1).reshape(B, S, H, -1)


def mla_absorbed_sdpa(q_nope, q_pe, kv, pe, wkv_b, scale: float) -> torch.Tensor:
    """Weight-absorbed MLA with the attention core as ONE fused SDPA call: the latent cache is a
    single KV head with K = [c_KV, k_pe] (C + R wide) and V = c_KV (C wide), and the S*H query rows
    of a sequence share it (MQA). Needs the latent and rope caches in one [B, L, C+R] buffer (as
    make_inputs and FlashMLA lay it out); separate buffers are concatenated first (a copy)."""
    B, S, H, Dn = q_nope.shape
    L, C = kv.shape[1], kv.shape[2]
    w_uk = wkv_b[:, :Dn]  # [H, Dn, C]
    w_uv = wkv_b[:, Dn:]  # [H, Dv, C]
    q_lat = torch.bmm(q_nope.reshape(B * S, H, Dn).transpose(0, 1), w_uk)  # [H, B*S, C]
    q = torch.cat([q_lat.transpose(0, 1).reshape(B, S * H, C), q_pe.reshape(B, S * H, -1)], dim=-1)
    cache = latent_rope_view(kv, pe)
    if cache is None:
        cache = torch.cat([kv, pe], dim=-1)  # [B, L, C+R]
    mask = causal_mask(S, L, kv.device, q.dtype)  # [S, L] -> rows (s, h): repeat each row H times
    if mask is not None:
        mask = mask.repeat_interleave(H, dim=0)  # [S*H, L]
    # [B, 1, S*H, C+R] x [B, 1, L, C+R] -> softmax -> x [B, 1, L, C] -> [B, 1, S*H, C]
    o_lat = F.scaled_dot_product_attention(q[:, None], cache[:, None], kv[:, None], attn_mask=mask, scale=scale)
    o = torch.bmm(o_lat.view(B * S, H, C).transpose(0, 1), w_uv.transpose(1, 2))  # [H, B*S, Dv]
    return o.transpose(0, 1).reshape(B, S, H, -1)


def mla_absorbed_einsum(q_nope, q_pe, kv, pe, wkv_b, scale: float) -> torch.Tensor:
    """The same computation written with einsum, as DeepSeek-V3 inference/model.py does."""
    B, S, H, Dn = q_nope.shape
    L = kv.shape[1]
    q_lat = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :Dn])
    scores = (torch.einsum("bshc,btc->bsht", q_lat, kv) + torch.einsum("bshr,btr->bsht", q_pe, pe)) * scale
    mask = causal_mask(S, L, kv.device, scores.dtype)
    if mask is not None:
        scores = scores + mask[None, :, None, :]
    probs = scores.softmax(dim=-1)
    o_lat = torch.einsum("bsht,btc->bshc", probs, kv)
    return torch.einsum("bshc,hdc->bshd", o_lat, wkv_b[:, Dn:])


def up_project(kv, pe, wkv_b, Dn: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Naive MLA's first half: every cached latent to per-head K = [K_nope, k_pe] and V.

    c [B*L, C] @ W_UKV^T [C, H*(Dn+Dv)] -> [B, L, H, Dn+Dv]; returns K [B, H, L, Dn+R], V [B, H, L, Dv]
    (strided views over [B, L, H, .] storage).
    """
    B, L, C = kv.shape
    H = wkv_b.shape[0]
    R = pe.shape[-1]
    kv_up = torch.mm(kv.reshape(B * L, C), wkv_b.reshape(-1, C).t()).view(B, L, H, -1)  # [B, L, H, Dn+Dv]
    k = torch.cat([kv_up[..., :Dn], pe[:, :, None, :].expand(B, L, H, R)], dim=-1)  # [B, L, H, Dn+R]
    v = kv_up[..., Dn:]  # [B, L, H, Dv]
    return k.transpose(1, 2), v.transpose(1, 2)


def mla_naive(q_nope, q_pe, kv, pe, wkv_b, scale: float) -> torch.Tensor:
    """Naive MLA: up-project the cache to ordinary multi-head K and V, then SDPA.

    S == L (prefill) is plain causal attention; 1 < S < L gets an explicit bottom-right mask.
    V (Dv) is zero-padded to the K width (Dn + R): SDPA's fused CPU kernel (and FlashAttention)
    needs equal head dims and otherwise falls back to the unfused math path, 3-4x slower here.
    The padding makes the PV product Dn + R wide instead of Dv: (Dn + R - Dv) / (Dn + R + Dv) more
    attention FLOPs than the simulator counts (20% for DeepSeek's 128 + 64 vs 128; not patched).
    """
    B, S, H, Dn = q_nope.shape
    L = kv.shape[1]
    k, v = up_project(kv, pe, wkv_b, Dn)  # [B, H, L, Dn+R], [B, H, L, Dv]
    Dv = v.shape[-1]
    if Dv < k.shape[-1]:
        v = F.pad(v, (0, k.shape[-1] - Dv))  # [B, H, L, Dn+R]
    q = torch.cat([q_nope, q_pe], dim=-1).transpose(1, 2)  # [B, H, S, Dn+R]
    if S == L and S > 1:
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    else:
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(S, L, q.device, q.dtype), scale=scale)
    return o[..., :Dv].transpose(1, 2)  # [B, S, H, Dv]


def mla_reference(q_nope, q_pe, kv, pe, wkv_b, scale: float) -> torch.Tensor:
    """Plain definition in float64: explicit K, V, softmax(QK^T * scale + mask) V."""
    q_nope, q_pe, kv, pe, wkv_b = (t.double() for t in (q_nope, q_pe, kv, pe, wkv_b))
    B, S, H, Dn = q_nope.shape
    L = kv.shape[1]
    k_nope = torch.matmul(kv[:, None], wkv_b[:, :Dn].transpose(1, 2)[None])  # [B, H, L, Dn]
    v = torch.matmul(kv[:, None], wkv_b[:, Dn:].transpose(1, 2)[None])  # [B, H, L, Dv]
    k = torch.cat([k_nope, pe[:, None].expand(B, H, L, pe.shape[-1])], dim=-1)  # [B, H, L, Dn+R]
    q = torch.cat([q_nope, q_pe], dim=-1).transpose(1, 2)  # [B, H, S, Dn+R]
    scores = q @ k.transpose(-1, -2) * scale  # [B, H, S, L]
    mask = causal_mask(S, L, kv.device, scores.dtype)
    if mask is not None:
        scores = scores + mask
    return (scores.softmax(-1) @ v).transpose(1, 2)  # [B, S, H, Dv]


# Absorbed decode has two correct forms whose speed depends on the machine (on a 2-vCPU Intel Xeon
# the bmm form is ~2x faster than the fused SDPA; on an AMD EPYC the SDPA form measured 1.5-2x
# faster): the benchmark races them at the model's dims and times the faster one.
ABSORBED_FORMS = {"bmm": mla_absorbed, "sdpa": mla_absorbed_sdpa}
MLA_KERNELS = {
    "mla_decode_absorbed": mla_absorbed,  # the form is chosen per machine (ABSORBED_FORMS)
    "mla_decode_absorbed_sdpa": mla_absorbed_sdpa,
    "mla_decode_absorbed_einsum": mla_absorbed_einsum,
    "mla_decode_naive": mla_naive,
    "mla_prefill": mla_naive,
}


def make_inputs(dims: MLADims, B: int, S: int, L: int, device, dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the right shapes. Unit-variance queries and keys with W_UKV scaled by
    1/sqrt(C) keep scores O(1): no underflow to denormals in softmax (which is very slow on x86)."""
    g = seeded(seed, device)

    def rnd(*shape, std=1.0):
        return random_tensor(shape, device, dtype, std, g)

    cache = rnd(B, L, dims.C + dims.R)  # one buffer, 576 values per token for DeepSeek: [latent | rope key]
    return {
        "q_nope": rnd(B, S, dims.H, dims.Dn),
        "q_pe": rnd(B, S, dims.H, dims.R),
        "kv": cache[..., : dims.C],  # [B, L, C] view
        "pe": cache[..., dims.C :],  # [B, L, R] view
        "wkv_b": rnd(dims.H, dims.Dn + dims.Dv, dims.C, std=dims.C**-0.5),
    }


# Small shapes: a decode step, an MTP-like multi-token step, and a causal prefill.
CHECK_SHAPES = ((2, 1, 37), (2, 3, 19), (1, 24, 24))


def check(device, dtype, kernels=None, dims: MLADims | None = None, shapes=CHECK_SHAPES) -> None:
    """MLA variants against the float64 reference, and naive against absorbed, at `dims` (a model's
    own dimensions) on small (B, S, L). Raises KernelCheckError naming the variant and the error."""
    dims = dims or MLADims(H=4, C=32, R=8, Dn=16, Dv=16)
    names = list(kernels or MLA_KERNELS)
    for B, S, L in shapes:
        x = make_inputs(dims, B, S, L, device, dtype, seed=B * 100 + S)
        ref = mla_reference(**x, scale=dims.softmax_scale)
        outs = {name: MLA_KERNELS[name](**x, scale=dims.softmax_scale) for name in names}
        if "mla_decode_absorbed" in outs:  # also with the latent and rope caches in separate buffers
            split = dict(x, kv=x["kv"].contiguous(), pe=x["pe"].contiguous())
            outs["mla_decode_absorbed (separate caches)"] = mla_absorbed_sdpa(**split, scale=dims.softmax_scale)
        for name, out in outs.items():
            assert_close(out, ref, dtype, f"{name} vs float64 reference at B={B} S={S} L={L}")
        if "mla_decode_naive" in outs or "mla_decode_absorbed" in outs:
            naive = outs.get("mla_decode_naive", None)
            naive = naive if naive is not None else mla_naive(**x, scale=dims.softmax_scale)
            absorbed = outs.get("mla_decode_absorbed", None)
            absorbed = absorbed if absorbed is not None else mla_absorbed(**x, scale=dims.softmax_scale)
            assert_close(naive, absorbed, dtype, f"naive vs absorbed MLA at B={B} S={S} L={L}")
