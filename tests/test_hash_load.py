"""Hash-routed MoE layers (DeepSeek-V4 layers 0-2: experts = tid2eid[token id]) against a Monte-Carlo.

The Monte-Carlo draws each step's tokens from the Zipf token frequency, looks their k experts up in
the same seeded table, spreads each assignment over the expert's EPLB replicas at random and takes
the busiest rank's assignments and distinct replicas; the model is the analytic expectation
(`simulators.expert_load` with `simulators.hash_load`'s exact per-token moments), without the
planner's floor at uniform routing.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.routing_mc import busiest_rank

from simulators.errors import ConfigError
from simulators.expert_load import Routing, placement, rank_load
from simulators.hash_load import hash_inclusion, hash_table, token_frequency

V = 129280  # DeepSeek-V4 vocabulary (tid2eid [129280, 6])
E, K = 384, 6  # V4-Pro routed experts, top-6
TRIALS = 100
ASSIGN_TOL = 0.07  # as tests/test_expert_load.py: normal approximation of a discrete maximum
DISTINCT_TOL = 0.03


def monte_carlo(exponent: float, tokens: int, ep: int, redundant: int, n_experts: int = E,
                seed: int = 3) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(token_frequency(V, exponent))
    table = hash_table(V, n_experts, K)
    lam = np.bincount(table.ravel(), weights=np.repeat(token_frequency(V, exponent), K), minlength=n_experts)
    slot_expert, slot_rank = placement(lam, ep, redundant)  # EPLB packs by the static hash load
    reps = np.bincount(slot_expert, minlength=n_experts)
    first = np.concatenate([[0], np.cumsum(reps)[:-1]])
    by_expert = np.argsort(slot_expert, kind="stable")
    max_a, max_d = [], []
    for _ in range(TRIALS):
        ids = np.minimum(np.searchsorted(cdf, rng.random(tokens) * cdf[-1]), V - 1)
        chosen = table[ids]
        a, d = busiest_rank(chosen, first, reps, by_expert, slot_rank, ep, rng)
        max_a.append(a)
        max_d.append(d)
    return float(np.mean(max_a)), float(np.mean(max_d))


CASES = [
    # token Zipf exponent, tokens entering the layer across the EP group, EP ranks, redundant experts
    (1.0, 64, 8, 0),  # small decode batch
    (1.0, 1024, 8, 0),
    (1.0, 8192, 64, 0),  # 128 tokens per rank: the hot tokens' experts dominate
    (1.0, 144 * 88, 144, 32),  # a day-6-like decode layout with EPLB
    (1.3, 256, 64, 0),
    (0.0, 8192, 64, 0),  # every token id equally likely
]


@pytest.mark.parametrize("exponent, tokens, ep, redundant", CASES)
def test_hash_layer_busiest_rank_matches_monte_carlo(exponent, tokens, ep, redundant):
    model = rank_load(Routing("hash", skew=exponent, vocab=V), tokens, E, K, ep, redundant, floor_at_uniform=False)
    mc_a, mc_d = monte_carlo(exponent, tokens, ep, redundant)
    assert model.max_assignments == pytest.approx(mc_a, rel=ASSIGN_TOL)
    assert model.max_distinct == pytest.approx(mc_d, rel=DISTINCT_TOL)


def test_v4_flash_experts_match_monte_carlo():
    model = rank_load(Routing("hash", skew=1.0, vocab=V), 4096, 256, K, 32, 0, floor_at_uniform=False)
    mc_a, _ = monte_carlo(1.0, 4096, 32, 0, n_experts=256)
    assert model.max_assignments == pytest.approx(mc_a, rel=ASSIGN_TOL)


def test_zipf_tokens_make_hash_layers_stragglers_that_eplb_cuts():
    """At 128 tokens per rank a router-balanced layer's busiest rank is within ~10% of the mean; a
    hash layer under Zipf(1) tokens carries the most frequent tokens' experts every step (the
    Monte-Carlo above agrees). Replicating the statically known hot experts cuts that excess."""
    hashed = Routing("hash", skew=1.0, vocab=V)
    uniform = rank_load(Routing("uniform"), 8192, E, K, 64)
    plain = rank_load(hashed, 8192, E, K, 64, 0)
    eplb = rank_load(hashed, 8192, E, K, 64, 64)
    assert uniform.compute_factor < 1.15 < 1.5 < plain.compute_factor
    assert eplb.compute_factor - 1 < 0.5 * (plain.compute_factor - 1)


def test_table_and_inclusion_are_consistent():
    table = hash_table(V, E, K)
    assert table.shape == (V, K) and (np.diff(np.sort(table, axis=1), axis=1) > 0).all()  # k distinct per id
    lam, pair = hash_inclusion(V, E, K, 1.0)
    assert lam.sum() == pytest.approx(K) and (lam <= 1).all()
    assert pair.sum() == pytest.approx(K * (K - 1)) and np.allclose(pair, pair.T) and not np.diag(pair).any()


@pytest.mark.parametrize("routing", [Routing("hash", skew=1.0, vocab=0), Routing("hash", skew=-1.0, vocab=V)])
def test_bad_hash_routing_is_one_line(routing):
    with pytest.raises(ConfigError, match="hash routing"):
        rank_load(routing, 64, E, K, 8)


# ----------------------------------------------------------------------------- in the planner

def _v4_decode(pro, hw, exponent: float, model=None, redundant: int = 0) -> dict:
    from simulators.parallel import Layout
    from simulators.plan import PlanOptions, Workload, evaluate_layout
    from simulators.precision import Precision

    m = model or pro
    # EP64, 128 sequences per attention group: 128 tokens per rank enter each MoE layer
    return evaluate_layout(m, Precision.for_model(m), hw, Layout(tp=1, dp=64, ep=64, redundant_experts=redundant),
                           128, "decode", Workload(4096, 1024), PlanOptions(token_zipf_exponent=exponent))


def test_token_skew_slows_v4_only_through_its_hash_layers(pro, shipped_profiles):
    """V4-Pro's first 3 of 61 MoE layers are hash-routed: a more skewed token frequency lengthens
    the step through them (busiest rank's GEMM and all-to-all); the same model without hash layers
    does not notice the token frequency at all."""
    from dataclasses import replace

    hw = shipped_profiles["b200"]
    flat, zipf = _v4_decode(pro, hw, 0.0), _v4_decode(pro, hw, 1.3)
    assert zipf["step_s"] > flat["step_s"] and zipf["straggler_s"] > flat["straggler_s"]
    assert zipf["straggler_factor"] > flat["straggler_factor"]
    no_hash = replace(pro, num_hash_layers=0)
    a, b = _v4_decode(pro, hw, 0.0, no_hash), _v4_decode(pro, hw, 1.3, no_hash)
    assert a["step_s"] == b["step_s"]
    # the router layers alone are lighter than router + Zipf(1.3) hash layers
    assert b["straggler_factor"] < zipf["straggler_factor"]


def test_eplb_replicas_take_back_most_of_the_hash_layer_excess(pro, shipped_profiles):
    hw = shipped_profiles["b200"]
    plain = _v4_decode(pro, hw, 1.3)["straggler_factor"]
    eplb = _v4_decode(pro, hw, 1.3, redundant=64)["straggler_factor"]
    flat = _v4_decode(pro, hw, 0.0, redundant=64)["straggler_factor"]
    assert eplb - flat < 0.5 * (plain - flat)


def test_plan_says_what_it_assumed_for_the_hash_layers(pro, shipped_models, shipped_profiles):
    from simulators.plan import PlanOptions, Workload, plan
    from simulators.precision import Precision

    wl = Workload(1024, 256)
    hw = [shipped_profiles["b200"]]
    v4 = plan(pro, hw, wl, PlanOptions(token_zipf_exponent=1.3), Precision.for_model(pro)).table.iloc[0]
    assert "3 hash-routed MoE layers" in v4["assumptions"] and "Zipf(1.3)" in v4["assumptions"]
    v3 = shipped_models["deepseek-v3"]
    assert "hash-routed" not in plan(v3, hw, wl, p=Precision.for_model(v3)).table.iloc[0]["assumptions"]


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_bad_token_exponent_is_one_line(bad):
    from simulators.plan import PlanOptions

    with pytest.raises(ConfigError, match="token_zipf_exponent"):
        PlanOptions(token_zipf_exponent=bad).check()
