"""Expert load of hash-routed MoE layers (DeepSeek-V4 layers 0-2): experts are a fixed function of the
token id (`ffn.gate.tid2eid`, a [vocab, k] table; shared/reference/deepseek-v4.md §1.3, §1.8), so
the load follows the token-frequency distribution, not the router (Roller et al. 2021, Hash Layers).

Model (shape legend: V vocabulary, E routed experts, k experts per token):
  token frequency  f_v ~ rank^-s over the vocabulary (Zipf; s = 0: every token id equally likely);
                   which ids are frequent does not matter, the table being a hash of the id;
  hash table       h(v) = k distinct experts per token id, drawn uniformly by a seeded generator
                   (the checkpoint's own tid2eid is not read here; a measured per-expert load can be
                   passed as routing 'histogram' instead);
  per-token loads  lambda_j = sum_v f_v [j in h(v)]            (expert j's inclusion; sums to k)
                   W_ij     = sum_v f_v [i in h(v)][j in h(v)]  (i != j: two experts of one token)
Both are exact for tokens drawn independently from f; `simulators.expert_load` turns them into the
busiest EP rank's expected load for any placement (EPLB replicas included).

numpy only; deterministic (seeded table).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .errors import ConfigError

HASH_SEED = 0
# estimate: Zipf's law (word frequency ~ 1 / rank); no token-frequency table of V4's tokenizer was read
DEFAULT_TOKEN_ZIPF_EXPONENT = 1.0


def token_frequency(vocab: int, exponent: float) -> np.ndarray:
    """f_v, v = 0..V-1, in frequency-rank order (sums to 1)."""
    if vocab < 1 or not exponent >= 0:
        raise ConfigError(f"hash routing: expected vocab >= 1 and a token Zipf exponent >= 0, got {vocab}, {exponent}")
    f = np.arange(1, vocab + 1, dtype=np.float64) ** -float(exponent)
    return f / f.sum()


@lru_cache(maxsize=8)
def hash_table(vocab: int, n_experts: int, top_k: int, seed: int = HASH_SEED) -> np.ndarray:
    """[vocab, k] expert ids, k distinct per token id, uniform over the experts (seeded)."""
    if not 0 < top_k <= n_experts:
        raise ConfigError(f"hash routing: expected 0 < top_k <= {n_experts} experts, got {top_k}")
    rng = np.random.default_rng(seed)
    table = rng.integers(0, n_experts, size=(vocab, top_k))
    while True:  # redraw the rows that repeat an expert
        s = np.sort(table, axis=1)
        bad = (s[:, 1:] == s[:, :-1]).any(axis=1)
        if not bad.any():
            table.setflags(write=False)
            return table
        table[bad] = rng.integers(0, n_experts, size=(int(bad.sum()), top_k))


@lru_cache(maxsize=32)
def hash_inclusion(vocab: int, n_experts: int, top_k: int, exponent: float,
                   seed: int = HASH_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(lambda [E], W [E, E]) of the hash table under Zipf(exponent) token frequencies (see above)."""
    f = token_frequency(vocab, exponent)
    h = hash_table(vocab, n_experts, top_k, seed)
    E = n_experts
    lam = np.bincount(h.ravel(), weights=np.repeat(f, top_k), minlength=E)
    pair = np.zeros(E * E)
    for a in range(top_k):
        for b in range(top_k):
            if a != b:
                pair += np.bincount(h[:, a] * E + h[:, b], weights=f, minlength=E * E)
    return lam, pair.reshape(E, E)
