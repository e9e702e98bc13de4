"""Expert-parallel stragglers: the busiest EP rank sets the MoE layer's time.

For one MoE layer and one micro-batch, T tokens enter the layer across the EP group; each picks k of
E routed experts. Experts (plus R redundant replicas) sit on G ranks. Per rank g we want
    A_g = token-expert assignments it computes        (GEMM FLOPs, tokens received by dispatch)
    D_g = distinct expert replicas it must read       (weight bytes at decode)
and the expected maxima E[max_g A_g], E[max_g D_g], against the means T k / G and sum(D) / G.

Routing models (a per-expert share p_i, sum p = 1; a token draws k distinct experts in proportion to
p, per-token inclusion pi_i by Rosen's successive-sampling approximation):
  uniform        p_i = 1 / E;
  zipf           p_i ~ rank^-s over a seeded random order of the expert ids (hot experts scattered);
  group-limited  DeepSeek-V3: a token picks topk_group of n_group expert groups, then k experts in
                 them (uniform); experts of one group are chosen together, so a rank's count has
                 the exact pair moments below, for any placement (redundant replicas included);
  histogram      measured per-expert loads (e.g. from `simulators.balancing`): inclusion = k x share;
  hash           DeepSeek-V4's hash-routed layers: experts a fixed table of the token id, load set by
                 the token frequency (`simulators.hash_load`; skew = token Zipf exponent, vocab).
Placement (`simulators.eplb`): contiguous (expert i on rank i // (E / G)) without redundancy; with
R > 0, EPLB's global policy (deepseek-ai/EPLB): give each redundant replica to the expert with the
largest load per replica, then pack the replicas onto ranks heaviest first, each onto the
least-loaded rank with a free slot; group-limited routing with `nodes` > 1: EPLB's hierarchical
policy (whole groups onto nodes first). A replica of expert i takes pi_i / r_i per token.

Statistics (independent ranks, the approximation the Monte-Carlo tests check):
  A_g ~ Normal(T mu_g, T v_g) with mu_g, v_g the per-token mean and variance of rank g's count
      c_g = sum_j X_j B_jg (X_j: expert j chosen; B_jg: the replica taken is on rank g, chance
      Q_jg = replicas of j on g / replicas of j). With pi_j = E[X_j], W_ij = E[X_i X_j] (i != j):
        mu_g = sum_j pi_j Q_jg,  E[c_g^2] = mu_g + sum_{i != j} W_ij Q_ig Q_jg      (exact);
      group-limited and hash routing use their W; the independent-inclusion models (uniform, zipf,
      histogram) the Bernoulli sum with the without-replacement correction (E - k)/(E - 1);
  D_g = sum of Bernoulli(1 - (1 - pi_s)^T) over its replicas s (exact Poisson-binomial);
  E[max] = integral of 1 - prod_g F_g(x) dx.
Skew never makes a step faster: the planner takes the larger of the skewed and the uniform busiest
rank (the only gain skew could bring, fewer distinct experts read, is not banked, because which
experts are popular moves with the request mix).

numpy only; deterministic (seeded permutations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .checks import number
from .eplb import eplb_replicas, hierarchical_nodes, placement  # noqa: F401  (re-exported: the placement policies)
from .errors import ConfigError
from .hash_load import hash_inclusion

ROUTINGS = ("balanced", "uniform", "zipf", "group-limited", "histogram", "hash")
SKEWED = ("zipf", "histogram", "hash")  # routings whose busiest rank is floored at uniform routing's
ZIPF_SEED = 0
ZIPF_PERMUTATIONS = 4  # the busiest rank is averaged over this many random expert orders
_GRID = 1024  # integration points for the expected maximum of normals


@dataclass(frozen=True)
class Routing:
    """A routing model. `histogram`: measured per-expert loads (any scale), for kind 'histogram'."""

    kind: str = "uniform"
    skew: float = 0.0  # Zipf exponent (kind 'zipf'); token-frequency Zipf exponent (kind 'hash', >= 0)
    n_group: int = 8  # DeepSeek-V3: 8 groups, top-4 groups (kind 'group-limited')
    topk_group: int = 4
    histogram: tuple[float, ...] = ()
    vocab: int = 0  # token ids the hash table covers (kind 'hash')
    nodes: int = 1  # > 1: EPLB's hierarchical placement of the expert groups over nodes (group-limited)

    def check(self, n_experts: int) -> None:
        if self.kind not in ROUTINGS:
            raise ConfigError(f"routing: expected one of {', '.join(ROUTINGS)}, got {self.kind!r}")
        if self.kind == "zipf" and not self.skew > 0:
            raise ConfigError(f"routing_skew: expected a Zipf exponent > 0 for zipf routing, got {self.skew}")
        if self.kind == "histogram":
            loads = tuple(self.histogram) if isinstance(self.histogram, (list, tuple)) else ()
            if len(loads) != n_experts:
                raise ConfigError(f"routing histogram: expected {n_experts} non-negative loads, got {len(loads)}")
            # each a finite count >= 0 (inf made every share NaN, "a" a ValueError), some load somewhere
            if not sum(number(v, f"routing histogram[{i}]", 0.0) for i, v in enumerate(loads)) > 0:
                raise ConfigError(f"routing histogram: expected {n_experts} non-negative loads, not all zero")
        if self.kind == "hash" and not (self.vocab >= 1 and self.skew >= 0):
            raise ConfigError(f"hash routing: expected vocab >= 1 and a token Zipf exponent >= 0, "
                              f"got vocab {self.vocab}, exponent {self.skew}")
        if not (isinstance(self.nodes, int) and self.nodes >= 1):
            raise ConfigError(f"routing nodes: expected an integer >= 1, got {self.nodes!r}")
        if self.kind == "group-limited" and (n_experts % self.n_group or not 0 < self.topk_group <= self.n_group):
            raise ConfigError(f"group-limited routing: {self.n_group} groups must divide {n_experts} experts "
                              f"and topk_group {self.topk_group} be in 1..{self.n_group}")


def shares(r: Routing, n_experts: int, perm: int = 0) -> np.ndarray:
    """Per-expert share p_i of the assignments (sums to 1); kind 'hash': see `hash_load`."""
    E = n_experts
    if r.kind == "hash":
        raise ConfigError("hash routing: per-expert shares depend on top_k; use hash_load.hash_inclusion")
    if r.kind in ("uniform", "balanced", "group-limited"):
        return np.full(E, 1.0 / E)
    if r.kind == "histogram":
        h = np.asarray(r.histogram, dtype=np.float64)
        return h / h.sum()
    p = np.arange(1, E + 1, dtype=np.float64) ** -r.skew
    p /= p.sum()
    order = np.random.default_rng(ZIPF_SEED + perm).permutation(E)
    return p[order]


def inclusion(p: np.ndarray, k: int) -> np.ndarray:
    """Per-token probability that each expert is among the k chosen, when a token draws k distinct
    experts one after another in proportion to p (successive sampling, the top-k of noisy scores):
    Rosen's approximation pi_i = 1 - exp(-t p_i), t solving sum(pi) = k (exact for uniform p)."""
    p = np.asarray(p, dtype=np.float64)
    if np.allclose(p, p[0]):
        return np.full(len(p), k / len(p))
    lo, hi = 0.0, 1.0
    while (1.0 - np.exp(-hi * p)).sum() < k:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if (1.0 - np.exp(-mid * p)).sum() < k:
            lo = mid
        else:
            hi = mid
    return 1.0 - np.exp(-0.5 * (lo + hi) * p)


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF via Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)."""
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def expected_max_normal(mean: np.ndarray, var: np.ndarray) -> float:
    """E[max_g X_g] for independent X_g ~ Normal(mean_g, var_g), clipped at 0 (counts)."""
    sd = np.sqrt(np.maximum(var, 1e-12))
    hi = float(np.max(mean + 9.0 * sd))
    if hi <= 0:
        return 0.0
    # the maximum is above every rank's mean - 9 sd: integrate from there; ranks that lie wholly
    # below that point (CDF 1 on the grid) do not change the maximum
    lo = float(np.clip(np.max(mean - 9.0 * sd), 0.0, hi))
    keep = mean + 9.0 * sd > lo
    x = np.linspace(lo, hi, _GRID)
    # ranks with equal moments share a CDF
    (m, s), n = np.unique(np.stack([mean[keep], sd[keep]]), axis=1, return_counts=True)
    log_f = (n[:, None] * np.log(np.clip(_norm_cdf((x[None, :] - m[:, None]) / s[:, None]), 1e-300, 1.0))).sum(0)
    return lo + float(np.trapezoid(1.0 - np.exp(log_f), x))


def _pad(hit: np.ndarray, rank: np.ndarray, ep: int, per: int) -> np.ndarray:
    H = np.zeros((ep, per))
    order = np.argsort(rank, kind="stable")
    r_sorted = rank[order]
    pos = np.arange(len(rank)) - np.searchsorted(r_sorted, r_sorted)
    H[r_sorted, pos] = hit[order]
    return H


def expected_max_poisson_binomial(hit: np.ndarray, rank: np.ndarray, ep: int) -> float:
    """E[max_g D_g], D_g = sum of independent Bernoulli(hit_s) over the slots s on rank g (exact)."""
    per = int(np.bincount(rank, minlength=ep).max())
    # ranks with the same multiset of hit probabilities share one distribution
    H, counts = np.unique(np.sort(_pad(hit, rank, ep, per), axis=1), axis=0, return_counts=True)
    pmf = np.zeros((H.shape[0], per + 1))
    pmf[:, 0] = 1.0
    for j in range(per):  # Poisson-binomial by dynamic programming, all distinct ranks at once
        h = H[:, j:j + 1]
        pmf[:, 1:] = pmf[:, 1:] * (1 - h) + pmf[:, :-1] * h
        pmf[:, 0] *= 1 - H[:, j]
    cdfs = np.clip(np.cumsum(pmf, axis=1), 1e-300, 1.0)
    p_max_le = np.exp((np.log(cdfs) * counts[:, None]).sum(axis=0))  # P(max <= x), x = 0..per
    return float(np.sum(1.0 - p_max_le[:-1]))


def group_pair_matrix(E: int, k: int, n_group: int, topk_group: int) -> np.ndarray:
    """W_ij = P(experts i and j both chosen), i != j, under group-limited uniform routing: a token
    picks topk_group of n_group groups (E / n_group experts each), then k of the pool's experts."""
    per_group = E // n_group
    pool = topk_group * per_group
    both = k * (k - 1) / (pool * (pool - 1)) if pool > 1 else 0.0  # two given pool experts both drawn
    same = topk_group / n_group  # P(a given group is chosen)
    other = topk_group * (topk_group - 1) / (n_group * (n_group - 1)) if n_group > 1 else 0.0
    group = np.arange(E) // per_group
    W = np.where(group[:, None] == group[None, :], same, other) * both
    np.fill_diagonal(W, 0.0)
    return W


def share_matrix(slot_expert: np.ndarray, slot_rank: np.ndarray, E: int, ep: int) -> np.ndarray:
    """Q_jg: the chance that a token routed to expert j is computed on rank g (replicas uniform)."""
    reps = np.bincount(slot_expert, minlength=E)
    Q = np.zeros((E, ep))
    np.add.at(Q, (slot_expert, slot_rank), 1.0 / reps[slot_expert])
    return Q


def count_moments(pi: np.ndarray, pair: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token mean and variance of each rank's count from the inclusion pi_j, the pair
    probabilities W_ij (zero diagonal) and the placement Q_jg (module docstring)."""
    mu = pi @ Q
    second = mu + np.einsum("ig,ig->g", Q, pair @ Q)
    return mu, np.maximum(second - mu**2, 0.0)


@dataclass(frozen=True)
class RankLoad:
    mean_assignments: float
    max_assignments: float
    mean_distinct: float
    max_distinct: float

    @property
    def compute_factor(self) -> float:
        return self.max_assignments / self.mean_assignments if self.mean_assignments > 0 else 1.0

    @property
    def weight_factor(self) -> float:
        return self.max_distinct / self.mean_distinct if self.mean_distinct > 0 else 1.0


@lru_cache(maxsize=1024)
def _per_token(r: Routing, E: int, k: int, ep: int, redundant: int, perm: int):
    """Per-token moments of every rank's count, the slots' inclusion and their ranks (no T in them)."""
    pair = None
    if r.kind == "hash":
        pi, pair = hash_inclusion(r.vocab, E, k, float(r.skew))
    elif r.kind == "histogram":  # measured load: per-token inclusion is k times its share (no sampling model)
        pi = np.minimum(k * shares(r, E, perm), 1.0)
    else:
        pi = inclusion(shares(r, E, perm), k)
        if r.kind == "group-limited":
            pair = group_pair_matrix(E, k, r.n_group, r.topk_group)
    hierarchical = r.kind == "group-limited" and r.nodes > 1
    slot_expert, slot_rank = placement(pi, ep, redundant, r.n_group if hierarchical else 1,
                                       r.nodes if hierarchical else 1)
    reps = np.bincount(slot_expert, minlength=E)
    pi_slot = pi[slot_expert] / reps[slot_expert]
    if pair is not None:
        mu, var = count_moments(pi, pair, share_matrix(slot_expert, slot_rank, E, ep))
    else:
        mu = np.bincount(slot_rank, weights=pi_slot, minlength=ep)
        fpc = (E - k) / (E - 1) if E > 1 else 1.0
        var = np.bincount(slot_rank, weights=pi_slot * (1 - pi_slot), minlength=ep) * fpc
    return mu, var, pi_slot, slot_rank


def _one(r: Routing, tokens: float, E: int, k: int, ep: int, redundant: int, perm: int) -> RankLoad:
    mu, var, pi_slot, slot_rank = _per_token(r, E, k, ep, redundant, perm)
    T = float(tokens)
    max_a = expected_max_normal(T * mu, T * var)
    hit = 1.0 - (1.0 - np.clip(pi_slot, 0.0, 1.0)) ** T
    max_d = expected_max_poisson_binomial(hit, slot_rank, ep)
    return RankLoad(mean_assignments=T * k / ep, max_assignments=max(max_a, T * k / ep),
                    mean_distinct=float(hit.sum() / ep), max_distinct=max_d)


@lru_cache(maxsize=4096)
def _cached(r: Routing, tokens: float, E: int, k: int, ep: int, redundant: int, floor: bool = True) -> RankLoad:
    if r.kind == "balanced" or ep <= 1:
        hit = E * (1.0 - (1.0 - k / E) ** tokens) if E else 0.0
        return RankLoad(tokens * k / max(ep, 1), tokens * k / max(ep, 1), hit / max(ep, 1), hit / max(ep, 1))
    perms = ZIPF_PERMUTATIONS if r.kind == "zipf" else 1
    loads = [_one(r, tokens, E, k, ep, redundant, i) for i in range(perms)]
    mean = lambda f: float(np.mean([getattr(x, f) for x in loads]))  # noqa: E731
    out = RankLoad(mean("mean_assignments"), mean("max_assignments"), mean("mean_distinct"), mean("max_distinct"))
    if floor and r.kind in SKEWED:  # skew never makes the busiest rank lighter than uniform routing
        u = _cached(Routing("uniform"), tokens, E, k, ep, redundant)
        out = RankLoad(out.mean_assignments, max(out.max_assignments, u.max_assignments),
                       out.mean_distinct, max(out.max_distinct, u.max_distinct, out.mean_distinct))
    return out


def rank_load(r: Routing, tokens: float, n_experts: int, top_k: int, ep: int, redundant: int = 0,
              floor_at_uniform: bool = True) -> RankLoad:
    """Expected mean and busiest-rank load of one MoE layer for `tokens` tokens over `ep` ranks.
    floor_at_uniform False: the routing model's own expectation (what the Monte-Carlo checks); True
    (the planner's): a skewed routing's busiest rank never below uniform routing's."""
    r.check(n_experts)
    if tokens < 0:
        raise ConfigError(f"expert load: expected tokens >= 0, got {tokens}")
    return _cached(r, float(tokens), int(n_experts), int(top_k), int(ep), int(redundant), bool(floor_at_uniform))


EXACT_PAIRS = 64  # up to this many (tokens, ranks) pairs are evaluated exactly (pinned layouts)
GRID_PER_OCTAVE = 4  # the planner evaluates straggler factors on a log2 grid of (tokens per rank, ranks)


def _snap(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, 2.0 ** (np.round(np.log2(np.maximum(x, 1e-9)) * GRID_PER_OCTAVE) / GRID_PER_OCTAVE), 0.0)


def rank_loads(r: Routing, tokens, n_experts: int, top_k: int, ep, redundant: int = 0) -> tuple[np.ndarray, ...]:
    """Vectorised over token counts and EP degrees: (max_assignments, max_distinct, mean_assignments,
    mean_distinct) arrays. Means are exact; the busiest-to-mean factors are taken at the nearest
    point of a log2 grid of tokens per rank and ranks (GRID_PER_OCTAVE per octave; the factors are
    smooth in both), so a planner sweep costs a few hundred evaluations."""
    T, G = np.broadcast_arrays(np.asarray(tokens, dtype=np.float64), np.asarray(ep, dtype=np.float64))
    Tq, Gq = T, G
    if np.unique(np.stack([T.ravel(), G.ravel()]), axis=1).shape[1] > EXACT_PAIRS:  # a sweep: snap to the grid
        if r.nodes == 1:  # hierarchical placement needs the exact rank count (the nodes divide it)
            Gq = np.where(G > 1, np.maximum(np.round(_snap(G)), 2.0), 1.0)
        Tq = _snap(T / G) * Gq
    pairs, inverse = np.unique(np.stack([Tq.ravel(), Gq.ravel()]), axis=1, return_inverse=True)
    f = np.array([[x.compute_factor, x.weight_factor] for x in
                  (rank_load(r, t, n_experts, top_k, int(g), redundant) for t, g in pairs.T)])
    fa, fd = f[inverse.ravel(), 0].reshape(T.shape), f[inverse.ravel(), 1].reshape(T.shape)
    E, k = n_experts, top_k
    mean_a = T * k / G
    if r.kind in ("balanced", "uniform", "group-limited") and redundant == 0:
        mean_d = E * (1.0 - (1.0 - k / E) ** T) / G
    else:  # replicas and skew change how many distinct replicas are read: take the grid's mean
        md = np.array([rank_load(r, t, E, k, int(g), redundant).mean_distinct for t, g in pairs.T])
        mean_d = md[inverse.ravel()].reshape(T.shape)
    max_a, max_d = mean_a * fa, np.minimum(mean_d * fd, np.ceil((E + redundant) / G))
    if r.kind in SKEWED:  # never lighter than uniform routing on the same grid
        u_a, u_d, _, _ = rank_loads(Routing("uniform"), tokens, n_experts, top_k, ep, redundant)
        max_a, max_d = np.maximum(max_a, u_a), np.maximum(max_d, u_d)
    return max_a, max_d, mean_a, mean_d


# ------------------------------------------------------------- the planner's placement policy

def eplb_nodes(routing: Routing, phase: str, ep, domain_devices: int, redundant: int) -> np.ndarray:
    """Per candidate, the nodes of EPLB's hierarchical placement, or 1 (global / contiguous). As
    DeepSeek's EPLB (deepseek-ai/EPLB README: the hierarchical policy for the prefilling stage, with
    its smaller expert-parallel size; the global one for decoding): prefill with group-limited
    routing, where the scale-up domains of `domain_devices` (nodes) divide the expert groups
    (`eplb.hierarchical_nodes`)."""
    if phase != "prefill" or routing.kind != "group-limited":
        return np.ones(np.shape(ep), dtype=np.int64)
    return np.array([hierarchical_nodes(int(e), domain_devices, routing.n_group, redundant)
                     for e in np.ravel(ep)], dtype=np.int64).reshape(np.shape(ep))


def policy_names(nodes: np.ndarray, ep: np.ndarray, redundant: int) -> np.ndarray:
    """How the experts sit on the EP ranks, per candidate, for the plan's "why" line."""
    flat = "EPLB global" if redundant else "contiguous"
    return np.where(np.asarray(ep) <= 1, "", np.where(np.asarray(nodes) > 1, np.char.add(np.char.add(
        "EPLB hierarchical over ", np.asarray(nodes).astype(str)), " nodes"), flat))


def loads_by_policy(routing: Routing, nodes: np.ndarray, tokens, n_experts: int, top_k: int, ep, redundant: int):
    """`rank_loads` per placement policy: the candidates sharing a node count in one call."""
    tokens, ep = np.broadcast_arrays(np.asarray(tokens, dtype=np.float64), np.asarray(ep, dtype=np.float64))
    out = [np.empty(tokens.shape) for _ in range(4)]
    for n in np.unique(nodes):
        sel = nodes == n
        part = rank_loads(replace(routing, nodes=int(n)), tokens[sel], n_experts, top_k, ep[sel], redundant)
        for o, p in zip(out, part):
            o[sel] = np.broadcast_to(p, tokens[sel].shape)
    return tuple(out)
