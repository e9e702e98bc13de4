"""DeepSeek-V4 reference kernels: the CSA/HCA compressor (gated pooling), the lightning indexer +
top-k, sparse shared-KV MQA over [window | selected compressed entries] with the attention sink,
and the mHC mix. What the simulator's "compressor", "indexer" (indexer_scores), "attn_core"
(csa_core / hca_core) and "mhc" ops count (simulators/compressed_attention.py, simulators/mhc.py).
Mechanics: shared/reference/deepseek-v4.md §1.4, §1.7 (report §2.2-2.3).

Shape legend
    B   batch (sequences)            S   query tokens per sequence this step
    L   context (tokens, including this step's)      T = B*S tokens
    d   hidden size                  c   head_dim: one vector is both K and V (shared-KV MQA)
    H   query heads                  W   sliding window (uncompressed recent tokens)
    m   compression ratio (CSA 4, HCA 128)   coff  compressor streams (2 on CSA: overlapped, 1 on HCA)
    N   compressed entries = L // m  Hi, Di  indexer heads, indexer head dim   K  indexer top-k
    n   hc_mult (mHC streams)        k   2n + n^2 mix outputs   I  Sinkhorn iterations

Inputs are taken where the simulator's ops start: the compressor from the hidden states h, the
indexer from its queries / head weights / compressed keys (the projections are `indexer_proj`,
a GEMM op), the core attention from the queries and the cache, mHC from the widened residual.
Left out, as the cost functions leave them out: the compressed entry's RMSNorm, RoPE and FP8
quantisation (per entry, not per token: < 1% of the compressor), the indexer's FP4 simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .common import KernelCheckError, assert_close, random_tensor, seeded

# config.json hc_eps and rms_norm_eps (shared/reference/deepseek-v4.md §1.2, S2): both 1e-6
HC_EPS = 1e-6
NORM_EPS = 1e-6
CSA_RATIO = 4  # report §2.3.1: m = 4, two overlapping streams


@dataclass(frozen=True)
class V4Dims:
    d: int
    H: int
    c: int
    W: int
    Hi: int
    Di: int
    K: int
    hca_ratio: int
    n: int  # hc_mult
    iters: int  # hc_sinkhorn_iters

    @property
    def softmax_scale(self) -> float:
        return self.c**-0.5  # Attention.softmax_scale = head_dim ** -0.5 (YaRN mscale left out)

    def ratio(self, kind: str) -> int:
        return CSA_RATIO if kind == "csa" else self.hca_ratio

    @staticmethod
    def streams(kind: str) -> int:
        return 2 if kind == "csa" else 1

    @property
    def mix_outputs(self) -> int:
        return 2 * self.n + self.n * self.n


# ---- (a) compressor: W^KV and W^Z on every token, then softmax-gated pooling per channel -------

def compress(x: torch.Tensor, w: torch.Tensor, ape: torch.Tensor, ratio: int, overlap: bool) -> torch.Tensor:
    """x [B, S, d] (S a multiple of m, the sequence from position 0); w [d, 2 coff c]: W^KV | W^Z;
    ape [m, coff c] the positional bias of the logits. Returns the entries [B, S/m, c].

    Each channel has its own softmax over the block's tokens (2m on CSA: stream a of block i-1
    and stream b of block i; block -1 is empty), then the weighted sum of the values."""
    B, S, d = x.shape
    width = ape.shape[1]  # coff c
    c = width // 2 if overlap else width
    N = S // ratio
    proj = torch.mm(x.reshape(B * S, d), w)  # [T, 2 coff c]: values | logits
    kv = proj[:, :width].reshape(B, N, ratio, width)
    z = proj[:, width:].reshape(B, N, ratio, width) + ape  # [B, N, m, coff c]
    if overlap:  # one softmax across both halves of each entry's 2m tokens
        za, zb = z[:, :, :, :c], z[:, :, :, c:]  # stream a of block i (used by entry i+1), b of block i
        mx = zb.amax(dim=2)  # [B, N, c]
        mx[:, 1:] = torch.maximum(mx[:, 1:], za[:, :-1].amax(dim=2))
        eb = torch.exp(zb - mx[:, :, None])
        num = (eb * kv[:, :, :, c:]).sum(dim=2)
        den = eb.sum(dim=2)
        ea = torch.exp(za[:, :-1] - mx[:, 1:, None])
        num[:, 1:] += (ea * kv[:, :-1, :, :c]).sum(dim=2)
        den[:, 1:] += ea.sum(dim=2)
        return num / den
    p = z.softmax(dim=2)
    return (p * kv).sum(dim=2)


def compress_reference(x, w, ape, ratio: int, overlap: bool) -> torch.Tensor:
    """Float64 definition, entry by entry: gather the entry's tokens, softmax over them per channel."""
    x, w, ape = x.double(), w.double(), ape.double()
    B, S, d = x.shape
    width = ape.shape[1]
    c = width // 2 if overlap else width
    kv_all = x @ w[:, :width]  # [B, S, coff c]
    z_all = x @ w[:, width:]
    out = []
    for i in range(S // ratio):
        blk = slice(i * ratio, (i + 1) * ratio)
        if overlap:
            vals = [kv_all[:, blk, c:]]
            logits = [z_all[:, blk, c:] + ape[:, c:]]
            if i > 0:
                prev = slice((i - 1) * ratio, i * ratio)
                vals.insert(0, kv_all[:, prev, :c])
                logits.insert(0, z_all[:, prev, :c] + ape[:, :c])
            v, z = torch.cat(vals, dim=1), torch.cat(logits, dim=1)  # [B, m or 2m, c]
        else:
            v, z = kv_all[:, blk], z_all[:, blk] + ape
        p = torch.exp(z - z.max(dim=1, keepdim=True).values)
        out.append((p * v).sum(dim=1) / p.sum(dim=1))
    return torch.stack(out, dim=1)


def make_compressor_inputs(dims: V4Dims, kind: str, B: int, S: int, device, dtype, seed: int = 0) -> dict:
    g = seeded(seed, device)
    width = dims.streams(kind) * dims.c
    return {
        "x": random_tensor((B, S, dims.d), device, dtype, 1.0, g),
        "w": random_tensor((dims.d, 2 * width), device, dtype, dims.d**-0.5, g),
        "ape": random_tensor((dims.ratio(kind), width), device, dtype, 0.5, g),
        "ratio": dims.ratio(kind),
        "overlap": kind == "csa",
    }


# ---- (b) lightning indexer: ReLU scores over every compressed entry, weighted over heads, top-k --

INDEXER_CHUNK_VALUES = 1 << 22  # score values per chunk of sequences (16 MiB fp32): stays in cache


def visible_entries(S: int, L: int, ratio: int, device) -> torch.Tensor:
    """[S] entries visible to each query: floor((t + 1) / m) at position t = L - S + i."""
    return torch.div(torch.arange(L - S + 1, L + 1, device=device), ratio, rounding_mode="floor")


def indexer_topk(q: torch.Tensor, w: torch.Tensor, keys: torch.Tensor, top_k: int, L: int, ratio: int) -> torch.Tensor:
    """q [B, S, Hi, Di] indexer queries, w [B, S, Hi] head weights, keys [B, N, Di] compressed keys.
    I[t, s] = sum_h w[t, h] ReLU(q[t, h] . k[s]) over visible s; returns the top-k entry ids
    [B, S, min(K, N)] (int32; -1 where a query sees fewer than K entries)."""
    B, S, Hi, Di = q.shape
    N = keys.shape[1]
    k = min(top_k, N)
    vis = visible_entries(S, L, ratio, q.device)
    chunk = max(1, INDEXER_CHUNK_VALUES // max(1, S * Hi * N))
    out = []
    for b0 in range(0, B, chunk):
        b1 = min(B, b0 + chunk)
        nb = b1 - b0
        scores = torch.bmm(q[b0:b1].reshape(nb, S * Hi, Di), keys[b0:b1].transpose(1, 2)).relu_()  # [nb, S Hi, N]
        index = torch.bmm(w[b0:b1].reshape(nb * S, 1, Hi), scores.view(nb * S, Hi, N)).view(nb, S, N)
        if S > 1 or int(vis[-1]) < N:
            index.masked_fill_(torch.arange(N, device=q.device) >= vis[:, None], float("-inf"))
        ids = index.topk(k, dim=-1).indices
        if S > 1:
            ids = torch.where(ids >= vis[:, None], -1, ids)
        out.append(ids.int())
    return torch.cat(out, dim=0)


def indexer_reference(q, w, keys, L: int, ratio: int) -> torch.Tensor:
    """Float64 index scores [B, S, N] (-inf where not visible), head by head."""
    q, w, keys = q.double(), w.double(), keys.double()
    B, S, Hi, _ = q.shape
    N = keys.shape[1]
    total = torch.zeros(B, S, N, dtype=torch.float64, device=q.device)
    for h in range(Hi):
        total += w[:, :, h, None] * torch.clamp(q[:, :, h] @ keys.transpose(1, 2), min=0.0)
    vis = visible_entries(S, L, ratio, q.device)
    return total.masked_fill(torch.arange(N, device=q.device) >= vis[:, None], float("-inf"))


def make_indexer_inputs(dims: V4Dims, B: int, S: int, L: int, device, dtype, seed: int = 0) -> dict:
    g = seeded(seed, device)
    N = L // CSA_RATIO
    return {
        "q": random_tensor((B, S, dims.Hi, dims.Di), device, dtype, 1.0, g),
        "w": random_tensor((B, S, dims.Hi), device, dtype, dims.Hi**-0.5, g),
        "keys": random_tensor((B, N, dims.Di), device, dtype, dims.Di**-0.5, g),
        "top_k": dims.K, "L": L, "ratio": CSA_RATIO,
    }


# ---- (c) core attention: shared-KV MQA over [window | compressed entries] with the sink -------

def _sink_attention(q: torch.Tensor, kv: torch.Tensor, sink: torch.Tensor, scale: float) -> torch.Tensor:
    """q [B, H, c], kv [B, n, c] (K = V), sink [H]: softmax(q kv^T * scale) with exp(sink) added to
    the denominator, times kv. Returns [B, H, c]."""
    scores = torch.bmm(q, kv.transpose(1, 2)).mul_(scale)  # [B, H, n]
    mx = torch.maximum(scores.amax(dim=-1), sink)  # [B, H]
    e = torch.exp(scores - mx[..., None])
    den = e.sum(dim=-1) + torch.exp(sink - mx)
    return torch.bmm(e, kv).div_(den[..., None])


def v4_decode_attention(q, kv_new, cache, sink, L: int, W: int, scale: float, ids=None) -> torch.Tensor:
    """One decode step (S = 1) of a CSA (ids given) or HCA (dense) layer.
    q [B, 1, H, c]; kv_new [B, 1, c] this token's KV; cache [B, W + N, c]: the window ring (token t
    in slot t % W) then the compressed entries; ids [B, K] selected compressed entries (CSA).
    Writes kv_new into the ring, attends to the last W tokens and the (selected) entries; CSA gathers
    the window slots and the selected entries of all B into one copy first. (Gathering a few
    sequences at a time, to keep the copy in cache, was slower on the 2-vCPU AMD EPYC guest once the
    allocator kept freed memory, bench/allocator.py: B 64 at L 4096 68 ms in 4 MiB steps, 46 ms at
    once; B 4 at L 8192 4.4 and 2.8 ms.)
    Returns o [B, 1, H, c]."""
    B, S, H, c = q.shape
    assert S == 1 and L >= W, "decode step with a full window"
    cache[:, (L - 1) % W] = kv_new[:, 0]  # this token enters the window (the state cache)
    qh = q.view(B, H, c)
    if ids is None:  # HCA: dense over the whole buffer, read in place
        return _sink_attention(qh, cache, sink, scale).view(B, 1, H, c)
    N_all = cache.shape[1]
    rows = torch.cat([torch.arange(W, device=q.device).expand(B, W), ids.long() + W], dim=1)  # [B, W + K]
    rows = rows + (torch.arange(B, device=q.device) * N_all)[:, None]
    kv = cache.reshape(B * N_all, c).index_select(0, rows.reshape(-1)).view(B, -1, c)
    return _sink_attention(qh, kv, sink, scale).view(B, 1, H, c)


def attention_reference(q, window_tokens, entries, sink, scale: float, ids=None) -> torch.Tensor:
    """Float64 definition: for each sequence the keys are its last W token vectors (window_tokens
    [B, W, c], oldest first, this step's last) and its compressed entries (all, or `ids`); a
    softmax over [scores | sink logit] with the sink column dropped, times the same vectors."""
    q, window_tokens, entries, sink = q.double(), window_tokens.double(), entries.double(), sink.double()
    B, _, H, c = q.shape
    out = []
    for b in range(B):
        sel = entries[b] if ids is None else entries[b, ids[b].long()]
        kv = torch.cat([window_tokens[b], sel], dim=0)  # [n, c]
        logits = torch.cat([q[b, 0] @ kv.T * scale, sink[:, None]], dim=1)  # [H, n + 1]
        p = logits.softmax(dim=-1)[:, :-1]
        out.append(p @ kv)
    return torch.stack(out)[:, None]  # [B, 1, H, c]


def make_attention_inputs(dims: V4Dims, kind: str, B: int, L: int, device, dtype, seed: int = 0) -> dict:
    """Decode-step inputs; `window_tokens` (the last W tokens in order, this step's last) is what
    the reference reads, the ring in `cache` what the kernel reads."""
    g = seeded(seed, device)
    ratio, W, c = dims.ratio(kind), dims.W, dims.c
    N = L // ratio
    cache = random_tensor((B, W + N, c), device, dtype, 1.0, g)
    window_tokens = random_tensor((B, W, c), device, dtype, 1.0, g)  # positions L-W .. L-1
    slots = torch.arange(L - W, L, device=device) % W
    cache[:, slots] = window_tokens
    kv_new = window_tokens[:, -1:].clone()
    cache[:, (L - 1) % W] = 0.0  # not yet written: the kernel writes this step's token
    x = {
        "q": random_tensor((B, 1, dims.H, c), device, dtype, 1.0, g),
        "kv_new": kv_new, "cache": cache,
        "sink": random_tensor((dims.H,), device, dtype, 1.0, g),
        "L": L, "W": W, "scale": dims.softmax_scale, "ids": None,
        "window_tokens": window_tokens,
    }
    if kind == "csa":
        perm = torch.argsort(torch.rand(B, N, device=device, generator=g), dim=1)
        x["ids"] = perm[:, : min(dims.K, N)].sort(dim=1).values.int()  # distinct, as top-k gives
    return x


# ---- (d) mHC: RMS-scaled mixing projection, Sinkhorn, pre-combine; post-combine -------------

def mhc_mix_post(x: torch.Tensor, y: torch.Tensor, fn: torch.Tensor, base: torch.Tensor, scale: torch.Tensor,
                 iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [T, n, d] the widened residual, y [T, d] the sub-layer's output (given), fn [k, n d],
    base [k], scale [3] (alpha gates). Mix: mixes = (x fn^T) / rms(x); A = sigmoid (+eps), C =
    2 sigmoid, B = softmax rows then Sinkhorn (I row/column normalisations); the sub-layer input is
    sum_p A_p x_p. Post: x'_q = sum_p B_pq x_p + C_q y. Returns (sub-layer input [T, d], x' [T, n, d])."""
    T, n, d = x.shape
    flat = x.reshape(T, n * d)
    inv_rms = torch.rsqrt(torch.linalg.vector_norm(flat, dim=-1).square_().div_(n * d).add_(NORM_EPS))
    mixes = torch.mm(flat.to(fn.dtype), fn.t()).mul_(inv_rms[:, None].to(fn.dtype))  # [T, k], fn is FP32
    pre = torch.sigmoid(mixes[:, :n] * scale[0] + base[:n]) + HC_EPS
    post = 2.0 * torch.sigmoid(mixes[:, n:2 * n] * scale[1] + base[n:2 * n])
    comb = (mixes[:, 2 * n:] * scale[2] + base[2 * n:]).view(T, n, n).softmax(dim=-1) + HC_EPS
    comb = comb / (comb.sum(dim=-2, keepdim=True) + HC_EPS)
    for _ in range(iters - 1):
        comb = comb / (comb.sum(dim=-1, keepdim=True) + HC_EPS)
        comb = comb / (comb.sum(dim=-2, keepdim=True) + HC_EPS)
    pre, post, comb = pre.to(x.dtype), post.to(x.dtype), comb.to(x.dtype)
    h = torch.bmm(pre[:, None, :], x)[:, 0]  # [T, d]
    out = torch.bmm(comb.transpose(1, 2), x).add_(post[:, :, None] * y[:, None, :])  # [T, n, d]
    return h, out


def mhc_reference(x, y, fn, base, scale, iters: int):
    """Float64, token by token, with the Sinkhorn loop written on one n x n matrix."""
    x, y, fn, base, scale = (t.double() for t in (x, y, fn, base, scale))
    T, n, d = x.shape
    hs, outs, combs = [], [], []
    for t in range(T):
        v = x[t].reshape(-1)
        mixes = (fn @ v) / torch.sqrt((v * v).mean() + NORM_EPS)
        a = torch.sigmoid(mixes[:n] * scale[0] + base[:n]) + HC_EPS
        cpost = 2.0 * torch.sigmoid(mixes[n:2 * n] * scale[1] + base[n:2 * n])
        m = torch.exp((mixes[2 * n:] * scale[2] + base[2 * n:]).reshape(n, n))
        m = m / m.sum(dim=1, keepdim=True) + HC_EPS
        for i in range(2 * iters - 1):  # columns first, then rows and columns alternately
            axis = 0 if i % 2 == 0 else 1
            m = m / (m.sum(dim=axis, keepdim=True) + HC_EPS)
        hs.append(a @ x[t])
        outs.append(m.T @ x[t] + cpost[:, None] * y[t][None, :])
        combs.append(m)
    return torch.stack(hs), torch.stack(outs), torch.stack(combs)


def make_mhc_inputs(dims: V4Dims, T: int, device, dtype, seed: int = 0) -> dict:
    g = seeded(seed, device)
    n, d, k = dims.n, dims.d, dims.mix_outputs
    return {
        "x": random_tensor((T, n, d), device, dtype, 1.0, g),
        "y": random_tensor((T, d), device, dtype, 1.0, g),
        # hc_*_fn, hc_*_base, hc_*_scale are FP32 in the checkpoint (reference §1.3, S3)
        "fn": random_tensor((k, n * d), device, torch.float32, (n * d) ** -0.5, g),
        "base": random_tensor((k,), device, torch.float32, 1.0, g),
        "scale": random_tensor((3,), device, torch.float32, 0.5, g) + 1.0,
        "iters": dims.iters,
    }


# ---- checks ------------------------------------------------------------------------------------

def check_compressor(device, dtype, dims: V4Dims, kind: str, shapes) -> None:
    for B, S in shapes:
        x = make_compressor_inputs(dims, kind, B, S, device, dtype, seed=B * 10 + S)
        assert_close(compress(**x), compress_reference(**x), dtype, f"{kind} compressor at B={B} S={S}")


def check_indexer(device, dtype, dims: V4Dims, shapes) -> None:
    """The selected ids must be distinct, visible, and carry the K largest reference scores (ties and
    rounding may swap ids of nearly equal scores, so scores are compared, not ids)."""
    for B, S, L in shapes:
        x = make_indexer_inputs(dims, B, S, L, device, dtype, seed=B * 10 + S)
        ids = indexer_topk(**x).long().cpu()
        ref = indexer_reference(x["q"], x["w"], x["keys"], L, CSA_RATIO).cpu()
        k = ids.shape[-1]
        want = ref.topk(k, dim=-1).values
        finite = torch.isfinite(want)
        if ((ids >= 0) != finite).any():
            raise KernelCheckError(f"indexer top-k at B={B} S={S} L={L}: wrong number of selected entries")
        got = torch.gather(ref, -1, ids.clamp_min(0)).masked_fill(~finite, 0.0).sort(dim=-1, descending=True).values
        if any(len(set(row[row >= 0].tolist())) != int((row >= 0).sum()) for row in ids.reshape(-1, k)):
            raise KernelCheckError(f"indexer top-k at B={B} S={S} L={L}: repeated entry ids")
        assert_close(got, want.masked_fill(~finite, 0.0), dtype, f"indexer top-k scores at B={B} S={S} L={L}")


def check_attention(device, dtype, dims: V4Dims, kind: str, shapes) -> None:
    for B, L in shapes:
        x = make_attention_inputs(dims, kind, B, L, device, dtype, seed=B * 10 + L)
        ref = attention_reference(x["q"], x["window_tokens"], x["cache"][:, dims.W:], x["sink"], x["scale"], x["ids"])
        out = v4_decode_attention(**{k: v for k, v in x.items() if k != "window_tokens"})
        assert_close(out, ref, dtype, f"{kind} decode attention at B={B} L={L}")
        assert_close(x["cache"][:, (L - 1) % dims.W], x["window_tokens"][:, -1], dtype,
                     f"{kind} window write at B={B} L={L}")


def check_mhc(device, dtype, dims: V4Dims, token_counts) -> None:
    for T in token_counts:
        x = make_mhc_inputs(dims, T, device, dtype, seed=T)
        h, out = mhc_mix_post(**x)
        h_ref, out_ref, comb = mhc_reference(**x)
        assert_close(h, h_ref, dtype, f"mHC sub-layer input at T={T}")
        assert_close(out, out_ref, dtype, f"mHC post-combine at T={T}")
        # independent of both codes: B is doubly stochastic after I Sinkhorn iterations
        for axis in (1, 2):
            assert_close(comb.sum(dim=axis), torch.ones(T, dims.n, dtype=torch.float64), torch.float32,
                         f"mHC residual mix sums along axis {axis} at T={T}")
