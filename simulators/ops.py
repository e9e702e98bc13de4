"""OpCost and the shared cost primitives (linear layers, norms, causal pairs, GEMM, copy).

All functions take numpy arrays (or scalars) for the case axes and broadcast, so one call
costs a whole sweep. FLOPs count 2 per multiply-add. Bytes are DRAM traffic assuming each
operand is read once and each result written once (a perfect-reuse, roofline lower bound).

Shape legend: B batch (sequences), S query tokens per sequence this step, L context (tokens in
the KV cache including this step's), T = B*S tokens this step, d hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Op families: the unit measured by one benchmark kernel and fitted by calibration.
FAMILIES = ("embed", "norm", "attn_proj", "attn_core", "indexer", "dense_ffn", "moe_router", "moe_shared",
            "moe_routed", "lm_head", "gemm", "copy")


@dataclass(frozen=True)
class OpCost:
    """Cost of one op in one layer; `n_layers` layers of this kind run it per step."""

    op: str
    family: str
    n_layers: int
    flop: np.ndarray
    bytes_read: np.ndarray
    bytes_written: np.ndarray
    compute_dtype: str  # nominal dtype of the arithmetic (mapped to a supported peak by the roofline)
    # rows of the op's main GEMM that share one read of the reused operand (tokens per weight matrix,
    # query rows per KV head): on real devices the achieved FLOP/s depends on it (skinny GEMMs are
    # slow). inf = large (square-like) GEMM, or no GEMM at all.
    rows: np.ndarray | float = np.inf

    @property
    def bytes(self) -> np.ndarray:
        return self.bytes_read + self.bytes_written


def op(name: str, family: str, n_layers: int, flop, bytes_read, bytes_written, compute_dtype: str,
       rows=np.inf) -> OpCost:
    as_arr = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    return OpCost(name, family, int(n_layers), as_arr(flop), as_arr(bytes_read), as_arr(bytes_written), compute_dtype,
                  as_arr(rows))


def linear(name: str, family: str, n_layers: int, tokens, d_in: int, d_out: int,
           w_bytes: float, a_bytes: float, compute_dtype: str) -> OpCost:
    """y[T, d_out] = x[T, d_in] @ W[d_in, d_out]: weights read once per step."""
    return op(
        name, family, n_layers,
        flop=2.0 * tokens * d_in * d_out,
        bytes_read=d_in * d_out * w_bytes + tokens * d_in * a_bytes,
        bytes_written=tokens * d_out * a_bytes,
        compute_dtype=compute_dtype,
        rows=tokens,  # every token reuses the weight matrix
    )


def rmsnorm(name: str, n_layers: int, tokens, d: int, n_norms: int, w_bytes: float, a_bytes: float,
            compute_dtype: str) -> OpCost:
    """`n_norms` RMSNorms of width d: square, sum, scale, multiply by weight = 4 FLOP per element."""
    flop_per_element = 4.0
    return op(
        name, "norm", n_layers,
        flop=n_norms * flop_per_element * tokens * d,
        bytes_read=n_norms * (tokens * d * a_bytes + d * w_bytes),
        bytes_written=n_norms * tokens * d * a_bytes,
        compute_dtype=compute_dtype,
    )


def visible_pairs(S, L, top_k=None):
    """Query-key pairs of a causal step: S queries at positions L-S..L-1, each seeing every key up
    to its own position, or only `top_k` of them (sparse attention). Per sequence.

    Sum over visible counts v = L-S+1 .. L of min(v, top_k), in closed form.
    """
    S = np.asarray(S, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    first = L - S + 1.0  # keys seen by the first query
    if top_k is None:
        return S * (first + L) / 2.0
    m = np.maximum(np.minimum(L, top_k), first - 1.0)  # last v still below the cap
    below = (m * (m + 1.0) - (first - 1.0) * first) / 2.0
    return below + (L - m) * top_k


@dataclass(frozen=True)
class CausalTiles:
    """How a tiled attention kernel blocks a causal prefill: queries in tiles of `q_tile(S)` rows,
    keys in tiles of `kv_tile`; each query tile computes every key tile its last query reaches,
    whole (the mask is applied inside the tile), so a short prefill computes up to twice the
    visible pairs. Data of one kernel (e.g. PyTorch's CPU flash attention, bench/registry.py)."""

    q_tiles: tuple[tuple[int, int], ...]  # (smallest S, query tile rows), largest S first; last (0, t)
    kv_tile: int

    def q_tile(self, S: int) -> int:
        return next(t for smallest, t in self.q_tiles if S >= smallest)


def _tiled_prefill_pairs(S: int, tiles: CausalTiles) -> float:
    q, kv = tiles.q_tile(S), tiles.kv_tile
    total = 0
    for start in range(0, S, q):
        rows = min(q, S - start)  # query rows of this tile
        reached = start + rows  # keys up to the tile's last query (S == L: query i sees keys 0..i)
        total += rows * min(S, -(-reached // kv) * kv)  # whole key tiles, the last cut at S
    return float(total)


def computed_pairs(S, L, tiles: CausalTiles | None = None):
    """Query-key pairs per sequence that the attention kernel computes: `visible_pairs` (the exact
    causal count) without tiles; with a tiled kernel's `tiles`, a causal prefill (S == L) counts the
    whole key tiles each query tile reaches, and any other step every S x L pair (an explicit mask:
    nothing skipped)."""
    if tiles is None:
        return visible_pairs(S, L)
    per_step = np.vectorize(lambda s, l: _tiled_prefill_pairs(int(s), tiles) if s == l and s > 1 else s * l,
                            otypes=[np.float64])
    return per_step(np.asarray(S, dtype=np.float64), np.asarray(L, dtype=np.float64))


def gemm_cost(m, n, k, dtype_bytes: float, compute_dtype: str, name: str = "gemm") -> OpCost:
    """C[m, n] = A[m, k] @ B[k, n]: calibration GEMM."""
    return op(
        name, "gemm", 1,
        flop=2.0 * np.asarray(m) * n * k,
        bytes_read=(np.asarray(m) * k + np.asarray(k) * n) * dtype_bytes,
        bytes_written=np.asarray(m) * n * dtype_bytes,
        compute_dtype=compute_dtype,
        rows=m,
    )


def copy_cost(n_bytes, name: str = "copy") -> OpCost:
    """dst = src over n_bytes: read once, write once, no arithmetic."""
    n_bytes = np.asarray(n_bytes, dtype=np.float64)
    return op(name, "copy", 1, flop=0.0 * n_bytes, bytes_read=n_bytes, bytes_written=n_bytes, compute_dtype="fp32")
