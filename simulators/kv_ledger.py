"""KV-cache ledger, exact to the byte: what one sequence holds per layer kind and store.

Stores (bytes for one sequence of L context tokens):
  main      MHA/GQA: K and V per KV head; MLA: the latent + rope key; V4 CSA/HCA: the compressed
            entries (one per m tokens), each the shared K=V vector of head_dim values
  indexer   lightning-indexer keys (V3.2: one per token; V4 CSA: one per compressed entry)
  window    V4: the sliding window, a fixed n_win entries per layer (state cache, report §3.5.1)
  state     V4: the compressor's not-yet-compressed tail (kv_state + score_state, FP32)
  mtp       the MTP layer(s)' cache, counted apart from the total (as V3's MTP parameters are)

Entry layouts (`main_entry_bytes`):
  FP8 MLA (FlashMLA V32_FP8Sparse, tests/quant.py): 512 NoPE FP8 + 4 tiles x FP32 scale + 64 rope
    BF16 = 656 B (not 576: the scales and the BF16 rope part are stored too)
  FP8 V4 (FlashMLA MODEL1_FP8Sparse, same file): 448 NoPE FP8 + 64 rope BF16 + 7 UE8M0 tile
    scales + 1 pad = 584 B; pages of entries padded to a multiple of 576 B
  otherwise: values x dtype bytes
Shape legend: L context tokens, B sequences, m compression ratio, c head_dim, R rope dims,
Di indexer head dim, n_win sliding window.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .model_config import CSA_RATIO, ModelConfig
from .units import DTYPE_BYTES

# FlashMLA tests/quant.py (deepseek-ai/FlashMLA@520fec6, read directly): FP8KVCacheLayout meta
FP8_VALUE_BYTES = 1  # e4m3
ROPE_VALUE_BYTES = 2  # the rope part stays BF16 in both FP8 layouts
MLA_FP8_TILE = 128  # V32_FP8Sparse: (d 576, d_nope 512, d_rope 64, tile 128, 4 tiles)
MLA_FP8_SCALE_BYTES = 4  # one FP32 scale per tile
V4_FP8_TILE = 64  # MODEL1_FP8Sparse: (d 512, d_nope 448, d_rope 64, tile 64, 7 tiles)
V4_FP8_SCALE_BYTES = 1  # one UE8M0 scale per tile ...
V4_FP8_SCALE_SLOT_BYTES = 8  # ... 7 scales + 1 pad byte in an 8-byte slot
V4_FP8_PAGE_ALIGN_BYTES = 576  # size_per_block_padded = ceil(block_size * 584 / 576) * 576
# Indexer keys: V3.2 inference/model.py (FP8 + one FP32 scale per 128 values); DeepGEMM
# tests/test_attention.py for V4 (FP4: head_dim // 2 + 4 B of UE8M0 scales, one per 32 values)
INDEX_FP8_SCALE_BYTES = 4
INDEX_FP8_SCALE_BLOCK = 128
INDEX_FP4_SCALE_BYTES = 1
INDEX_FP4_SCALE_BLOCK = 32
# V4 paged cache: one block covers lcm(4, 128) = 128 original tokens (report §3.5.1)
V4_PAGE_TOKENS = 128
# Compressor state: DeepSeek-V4 inference model.py `Compressor` keeps kv_state and score_state,
# each [coff * ratio, coff * head_dim] FP32 per sequence (coff = 2 with overlap, i.e. CSA).
# Read through verbatim copies of that file (comments identical across several repositories),
# not the official HF repository: status estimate.
STATE_BUFFERS = 2  # kv_state, score_state
STATE_VALUE_BYTES = 4  # FP32

COMPONENTS = ("main", "indexer", "window", "state")


@dataclass(frozen=True)
class KVLedger:
    """Bytes for one sequence (all main layers), by store; `mtp` is kept apart from `total`."""

    main: np.ndarray
    indexer: np.ndarray
    window: np.ndarray
    state: np.ndarray
    mtp: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.main + self.indexer + self.window + self.state

    def scaled(self, factor) -> KVLedger:
        return KVLedger(*(getattr(self, f.name) * factor for f in fields(self)))


def main_entry_bytes(m: ModelConfig, kv_dtype: str) -> float:
    """Bytes of one cached main entry of one layer (one token; V4: one compressed or window entry)."""
    R = m.qk_rope_head_dim
    if m.attention == "csa_hca":
        c = m.head_dim  # one vector is both K and V
        if kv_dtype == "fp8":
            nope = c - R
            tiles = -(-nope // V4_FP8_TILE)
            assert tiles * V4_FP8_SCALE_BYTES <= V4_FP8_SCALE_SLOT_BYTES
            return nope * FP8_VALUE_BYTES + R * ROPE_VALUE_BYTES + V4_FP8_SCALE_SLOT_BYTES
        return c * DTYPE_BYTES[kv_dtype]
    if m.attention == "mla":
        C = m.kv_lora_rank
        if kv_dtype == "fp8":
            tiles = -(-C // MLA_FP8_TILE)
            return C * FP8_VALUE_BYTES + tiles * MLA_FP8_SCALE_BYTES + R * ROPE_VALUE_BYTES
        return (C + R) * DTYPE_BYTES[kv_dtype]
    return 2 * m.num_key_value_heads * m.head_dim * DTYPE_BYTES[kv_dtype]  # K and V per KV head


def indexer_key_bytes(m: ModelConfig, indexer_dtype: str = "fp4") -> float:
    """Bytes of one cached indexer key. V3.2 caches FP8 + an FP32 scale; V4 caches FP4 + UE8M0
    scales where the device computes FP4 (Blackwell), else the same FP8 layout as V3.2."""
    if not m.sparse_attention:
        return 0.0
    Di = m.index_head_dim
    if m.attention == "csa_hca" and indexer_dtype == "fp4":
        return Di * DTYPE_BYTES["fp4"] + (Di // INDEX_FP4_SCALE_BLOCK) * INDEX_FP4_SCALE_BYTES
    if indexer_dtype in ("fp4", "fp8"):
        return Di * FP8_VALUE_BYTES + (-(-Di // INDEX_FP8_SCALE_BLOCK)) * INDEX_FP8_SCALE_BYTES
    return Di * DTYPE_BYTES[indexer_dtype]  # a wide dtype (the benchmark's fp32/bf16 keys): no scales


def compressor_state_bytes(m: ModelConfig, kind: str) -> float:
    """Fixed per-sequence compressor state of one V4 layer (main + indexer compressor on CSA)."""
    if kind not in ("csa", "hca"):
        return 0.0
    ratio = CSA_RATIO if kind == "csa" else _hca_ratio(m)
    coff = 2 if kind == "csa" else 1  # two overlapping streams on CSA
    per_width = STATE_BUFFERS * coff * ratio * coff * STATE_VALUE_BYTES
    width = m.head_dim + (m.index_head_dim if kind == "csa" else 0)
    return float(per_width * width)


def _hca_ratio(m: ModelConfig) -> int:
    ratios = {r for r in m.compress_ratios if r not in (0, CSA_RATIO)}
    if len(ratios) != 1:
        raise ValueError(f"{m.name}: expected one HCA compression ratio, got {sorted(ratios)}")
    return ratios.pop()


def kind_ratio(m: ModelConfig, kind: str) -> int:
    """Tokens per cached main entry: 1 (uncompressed), 4 (CSA), m' (HCA); 0 for window-only."""
    if kind == "csa":
        return CSA_RATIO
    if kind == "hca":
        return _hca_ratio(m)
    if kind == "swa":
        return 0
    return 1


def _entries(L, ratio: int, paged: bool) -> np.ndarray:
    """Compressed entries of a sequence of L tokens: floor(L / m) written, or whole pages of
    V4_PAGE_TOKENS tokens allocated."""
    L = np.asarray(L, dtype=np.float64)
    if paged:
        return np.ceil(L / V4_PAGE_TOKENS) * (V4_PAGE_TOKENS // ratio)
    return np.floor(L / ratio)


def _main_bytes(entries, ratio: int, entry: float, paged: bool, padded: bool) -> np.ndarray:
    if not (paged and padded):
        return entries * entry
    per_page = V4_PAGE_TOKENS // ratio
    page_bytes = np.ceil(per_page * entry / V4_FP8_PAGE_ALIGN_BYTES) * V4_FP8_PAGE_ALIGN_BYTES
    return entries / per_page * page_bytes


def layer_kv(m: ModelConfig, kind: str, L, kv_dtype: str = "bf16", indexer_dtype: str = "fp4",
             paged: bool = False) -> dict[str, np.ndarray]:
    """Bytes one layer of `kind` holds for one sequence at context L, by store."""
    L = np.asarray(L, dtype=np.float64)
    zero = np.zeros_like(L)
    entry = main_entry_bytes(m, kv_dtype)
    key = indexer_key_bytes(m, indexer_dtype)
    padded = m.attention == "csa_hca" and kv_dtype == "fp8"
    if kind in ("csa", "hca", "swa"):
        window = zero + m.sliding_window * entry
        if kind == "swa":
            return {"main": zero, "indexer": zero, "window": window, "state": zero}
        ratio = kind_ratio(m, kind)
        n = _entries(L, ratio, paged)
        return {
            "main": _main_bytes(n, ratio, entry, paged, padded),
            "indexer": n * key if kind == "csa" else zero,
            "window": window,
            "state": zero + compressor_state_bytes(m, kind),
        }
    return {"main": L * entry, "indexer": L * key, "window": zero, "state": zero}


def kv_ledger(m: ModelConfig, L, kv_dtype: str = "bf16", indexer_dtype: str = "fp4",
              paged: bool = False) -> KVLedger:
    """The whole model's KV for one sequence at context L (arrays broadcast over L)."""
    L = np.asarray(L, dtype=np.float64)
    totals = {c: np.zeros_like(L) for c in COMPONENTS}
    for kind in dict.fromkeys(m.kinds):
        n = m.layers_of_kind(kind)
        for c, v in layer_kv(m, kind, L, kv_dtype, indexer_dtype, paged).items():
            totals[c] = totals[c] + n * v
    mtp = np.zeros_like(L)
    for kind in mtp_kinds(m):
        mtp = mtp + sum(layer_kv(m, kind, L, kv_dtype, indexer_dtype, paged).values())
    return KVLedger(**totals, mtp=mtp)


def mtp_kinds(m: ModelConfig) -> tuple[str, ...]:
    """Attention kind of each MTP layer: V4 lists it in compress_ratios; V3's MTP layer is MLA."""
    return m.mtp_layer_kinds or (m.attention,) * m.num_nextn_predict_layers


def kv_bytes_per_context_token(m: ModelConfig, kv_dtype: str = "bf16", indexer_dtype: str = "fp4") -> float:
    """Bytes added per token of context in the long-context limit (fixed window and state left
    out; compressed entries counted at 1/m per token). Exact per token for MHA/GQA/MLA."""
    total = 0.0
    entry = main_entry_bytes(m, kv_dtype)
    key = indexer_key_bytes(m, indexer_dtype)
    for kind in m.kinds:
        ratio = kind_ratio(m, kind)
        if ratio:  # indexer keys on every layer with an indexer (V3.2's MLA, V4's CSA), not on HCA
            total += (entry + (key if kind != "hca" else 0.0)) / ratio
    return total


def kv_bytes_per_device(m: ModelConfig, B, L, kv_dtype: str = "bf16", *, tp: int = 1, dp=1, pp=1,
                        indexer_dtype: str = "fp4") -> np.ndarray:
    """KV one device holds: its DP group's ceil(B / dp) sequences, its pipeline stage's layers,
    and its TP share of the KV heads. MLA's latent and V4's single K=V head are replicated on
    every TP rank (not split); GQA/MHA KV heads split up to one per rank."""
    seqs = np.ceil(np.asarray(B, dtype=np.float64) / np.asarray(dp, dtype=np.float64))
    stage = np.ceil(m.num_hidden_layers / np.asarray(pp, dtype=np.float64)) / m.num_hidden_layers
    share = 1.0
    if m.attention in ("mha", "gqa", "mqa"):
        G = m.num_key_value_heads
        share = np.ceil(G / np.asarray(tp, dtype=np.float64)) / G
    return seqs * stage * share * kv_ledger(m, L, kv_dtype, indexer_dtype).total


def kv_curve(m: ModelConfig, contexts, batches=(1,), kv_dtype: str = "bf16", indexer_dtype: str = "fp4"):
    """Tidy rows (context x batch) of the ledger: one column per store, plus the total."""
    import pandas as pd

    L, B = (a.ravel() for a in np.meshgrid(np.asarray(contexts, dtype=np.float64),
                                           np.asarray(batches, dtype=np.float64), indexing="ij"))
    led = kv_ledger(m, L, kv_dtype, indexer_dtype).scaled(B)
    frame = pd.DataFrame({"model": m.name, "attention": m.attention, "context": L.astype(np.int64),
                          "batch": B.astype(np.int64), "kv_dtype": kv_dtype})
    for c in (*COMPONENTS, "mtp"):
        frame[f"kv_{c}_bytes"] = getattr(led, c)
    frame["kv_bytes"] = led.total
    return frame


def kv_layout(m: ModelConfig, kv_dtype: str = "bf16", indexer_dtype: str = "fp4") -> list[dict]:
    """What is stored per layer kind: bytes of one entry, entries per context token, fixed bytes."""
    rows = []
    for kind in dict.fromkeys((*m.kinds, *mtp_kinds(m))):
        ratio = kind_ratio(m, kind)
        key = indexer_key_bytes(m, indexer_dtype) if kind not in ("hca", "swa") else 0.0
        rows.append({
            "kind": kind,
            "layers": m.layers_of_kind(kind),
            "mtp_layers": sum(1 for k in mtp_kinds(m) if k == kind),
            "entry_bytes": main_entry_bytes(m, kv_dtype),
            "entries_per_token": 1.0 / ratio if ratio else 0.0,
            "indexer_key_bytes": key,
            "window_entries": m.sliding_window if kind in ("csa", "hca", "swa") else 0,
            "state_bytes": compressor_state_bytes(m, kind),
        })
    return rows
