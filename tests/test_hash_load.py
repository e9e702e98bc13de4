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


# ----------------------------------------------------------------------------- --token-zipf

def test_more_skewed_tokens_never_lighten_the_hash_layers_busiest_rank():
    """hash_load directly: a larger token Zipf exponent piles more of every step onto the most
    frequent tokens' experts, so the busiest EP rank's expected assignments do not shrink."""
    loads = [rank_load(Routing("hash", skew=s, vocab=V), 8192, E, K, 64, 0, floor_at_uniform=False).max_assignments
             for s in (0.0, 0.5, 1.0, 1.5, 2.0)]
    assert all(b >= a for a, b in zip(loads, loads[1:])), loads
    assert loads[-1] > loads[0]


def _plan_cli(capsys, *extra: str) -> dict:
    from daedalus.cli import main

    code = main(["plan", "--model", "deepseek-v4-pro", "--hardware", "b200", "--input-len", "1024",
                 "--output-len", "256", "--decode-layout", "tp=1,dp=64,ep=64,batch=128",
                 "--prefill-layout", "tp=1,dp=8,ep=8,batch=1", "--format", "json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    import json

    return json.loads(out.out)[0]


def test_token_zipf_flag_reaches_the_plan(capsys, pro, shipped_profiles):
    """--token-zipf is the API's token_zipf_exponent: the CLI's decode straggler factor is the one
    evaluate_layout gives for that exponent, and it grows with the exponent."""
    rows = {s: _plan_cli(capsys, "--token-zipf", s) for s in ("0", "1.3")}
    for s, row in rows.items():
        api = _v4_decode(pro, shipped_profiles["b200"], float(s))
        assert row["decode_straggler_factor"] == pytest.approx(api["straggler_factor"])
        assert f"Zipf({float(s):g}) token frequency" in row["assumptions"] and "as given" in row["assumptions"]
    assert rows["1.3"]["decode_straggler_factor"] > rows["0"]["decode_straggler_factor"]
    default = _plan_cli(capsys)  # not given: the default estimate, labelled as such under assumed
    assert "Zipf(1) token frequency" in default["assumptions"] and "default estimate" in default["assumptions"]


def test_token_zipf_flag_reaches_simulate(capsys):
    """simulate: the hash-routed layers become their own op; a flat token frequency (every id equally
    likely) hits more distinct experts per step than a Zipf(1.3) one, so it reads more bytes."""
    import json

    from daedalus.cli import main

    by = {}
    for s in ("0", "1.3"):
        assert main(["simulate", "--model", "deepseek-v4-pro", "--hardware", "b200", "--batch", "256",
                     "--token-zipf", s, "--format", "json"]) == 0
        ops = {o["op"]: o for o in json.loads(capsys.readouterr().out)[0]["ops"]}
        by[s] = ops
    assert by["0"]["moe_routed_hash"]["n_layers"] == 3
    assert by["0"]["moe_routed_hash"]["bytes"] > by["1.3"]["moe_routed_hash"]["bytes"]
    assert by["0"]["moe_routed"]["bytes"] == by["1.3"]["moe_routed"]["bytes"]  # router layers untouched


@pytest.mark.parametrize("command", ["plan", "simulate"])
@pytest.mark.parametrize("bad, needle", [("-0.5", ">= 0"), ("nan", "finite"), ("inf", "finite"), ("x", "number")])
def test_bad_token_zipf_flag_is_one_line_exit_2(capsys, command, bad, needle):
    from daedalus.cli import main

    code = main([command, "--hardware", "b200", "--token-zipf", bad])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--token-zipf" in err and needle in err, err


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_simulate_api_refuses_the_same_token_exponents(bad, pro, shipped_profiles):
    from simulators.predict import simulate

    with pytest.raises(ConfigError, match="token_zipf_exponent"):
        simulate([pro], [shipped_profiles["b200"]], token_zipf_exponent=bad)
