"""EP straggler model (simulators.expert_load) against a Monte-Carlo of the routing itself.

The Monte-Carlo samples each token's k experts without replacement in proportion to the expert
shares (Gumbel top-k; for group-limited routing: topk_group random groups, then k experts inside
them), spreads each assignment over the expert's replicas at random, and takes the busiest rank's
assignments and distinct replicas per step. The model is the analytic expectation (normal
approximation for assignments, exact Poisson-binomial for distinct replicas); tolerances below.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.routing_mc import busiest_rank

from simulators.errors import ConfigError
from simulators.expert_load import Routing, eplb_replicas, inclusion, placement, rank_load, rank_loads, shares

E, K = 256, 8  # DeepSeek-V3 routed experts, top-8
TRIALS = 150
ASSIGN_TOL = 0.07  # busiest-rank assignments: normal approximation of a discrete maximum
DISTINCT_TOL = 0.03


ZIPF = shares(Routing("zipf", skew=1.2), E)  # one seeded order of Zipf(1.2) shares


def monte_carlo(r: Routing, tokens: int, ep: int, redundant: int, seed: int = 7) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    p = ZIPF if r.kind == "histogram" else shares(r, E)  # the histogram cases route by Zipf shares
    hierarchical = r.kind == "group-limited" and r.nodes > 1
    slot_expert, slot_rank = placement(inclusion(p, K), ep, redundant, r.n_group if hierarchical else 1,
                                       r.nodes if hierarchical else 1)
    reps = np.bincount(slot_expert, minlength=E)
    first = np.concatenate([[0], np.cumsum(reps)[:-1]])
    by_expert = np.argsort(slot_expert, kind="stable")  # slots grouped by expert
    max_a, max_d = [], []
    for _ in range(TRIALS):
        if r.kind == "group-limited":
            per = E // r.n_group
            groups = np.argsort(rng.random((tokens, r.n_group)), axis=1)[:, :r.topk_group]
            allowed = np.zeros((tokens, E), dtype=bool)
            for j in range(r.topk_group):
                np.put_along_axis(allowed, groups[:, j:j + 1] * per + np.arange(per), True, axis=1)
            keys = np.where(allowed, rng.random((tokens, E)), -1.0)
        else:
            keys = np.log(p)[None, :] - np.log(-np.log(rng.random((tokens, E))))
        chosen = np.argpartition(-keys, K - 1, axis=1)[:, :K]
        a, d = busiest_rank(chosen, first, reps, by_expert, slot_rank, ep, rng)
        max_a.append(a)
        max_d.append(d)
    return float(np.mean(max_a)), float(np.mean(max_d))


CASES = [
    # routing, tokens entering the layer across the EP group, EP ranks, redundant experts
    (Routing("uniform"), 8, 8, 0),  # one token per rank at EP8
    (Routing("uniform"), 64, 64, 0),
    (Routing("uniform"), 2048, 32, 0),
    (Routing("uniform"), 144 * 88, 144, 32),  # day-6 decode: EP144, 32 redundant (EPLB)
    (Routing("group-limited"), 256, 8, 0),
    (Routing("group-limited"), 64, 64, 0),
    # group-limited with EPLB replicas: experts of one group no longer sit together (exact pair moments)
    (Routing("group-limited"), 1024, 32, 32),
    (Routing("group-limited"), 144 * 88, 144, 32),
    (Routing("group-limited", n_group=8, topk_group=2), 512, 16, 16),
    # EPLB's hierarchical policy: whole groups onto nodes, replicas inside each node
    (Routing("group-limited", nodes=4), 1024, 32, 32),
    (Routing("group-limited", topk_group=2, nodes=2), 512, 16, 16),
    # measured load histogram of a Zipf(1.2) router: the expected per-expert load of successive sampling
    (Routing("histogram", histogram=tuple(inclusion(ZIPF, K))), 1024, 32, 0),
    (Routing("histogram", histogram=tuple(inclusion(ZIPF, K))), 1024, 32, 32),
]


@pytest.mark.parametrize("routing, tokens, ep, redundant", CASES)
def test_busiest_rank_matches_monte_carlo(routing, tokens, ep, redundant):
    model = rank_load(routing, tokens, E, K, ep, redundant)
    mc_a, mc_d = monte_carlo(routing, tokens, ep, redundant)
    assert model.max_assignments == pytest.approx(mc_a, rel=ASSIGN_TOL)
    assert model.max_distinct == pytest.approx(mc_d, rel=DISTINCT_TOL)
    assert model.max_assignments >= model.mean_assignments  # the busiest rank is never below the mean


def test_group_limited_replicas_change_the_busiest_rank_as_the_monte_carlo_does():
    """Top-2 of 8 groups, contiguous placement: each EP8 rank holds one group, so it carries either
    none or about half of a token's experts, a heavy-tailed count. EPLB's packing mixes groups over
    ranks and lightens the busiest rank; the pair moments must see it as the Monte-Carlo does (an
    independent-inclusion model gives both placements the same load)."""
    r = Routing("group-limited", topk_group=2)
    contiguous, replicated = rank_load(r, 256, E, K, 8, 0), rank_load(r, 256, E, K, 8, 8)
    (mc_contiguous, _), (mc_replicated, _) = monte_carlo(r, 256, 8, 0), monte_carlo(r, 256, 8, 8)
    assert mc_contiguous > 1.05 * mc_replicated
    assert contiguous.max_assignments > 1.05 * replicated.max_assignments
    assert contiguous.max_assignments == pytest.approx(mc_contiguous, rel=ASSIGN_TOL)
    assert replicated.max_assignments == pytest.approx(mc_replicated, rel=ASSIGN_TOL)


def test_hierarchical_placement_keeps_a_token_on_its_groups_nodes():
    """Node-limited routing needs a token's experts on at most topk_group nodes: EPLB's hierarchical
    policy keeps each group (and its replicas) on one node; the global policy scatters them."""
    r = Routing("group-limited", topk_group=2, nodes=4)
    rng = np.random.default_rng(0)
    groups = np.argsort(rng.random((500, r.n_group)), axis=1)[:, :r.topk_group]
    per = E // r.n_group
    spans = {}
    for name, n_nodes in (("hierarchical", 4), ("global", 1)):
        slot_expert, slot_rank = placement(np.ones(E), 32, 32, r.n_group, n_nodes)
        node = slot_rank // 8  # 8 ranks per node
        nodes_of_group = [set(node[np.isin(slot_expert, np.arange(g * per, (g + 1) * per))]) for g in range(8)]
        spans[name] = max(len(set().union(*(nodes_of_group[g] for g in row))) for row in groups)
        assert np.bincount(slot_rank).tolist() == [9] * 32  # (256 + 32) / 32 slots on every rank
    assert spans["hierarchical"] <= r.topk_group < spans["global"]


def test_hierarchical_placement_refuses_nodes_that_do_not_divide():
    with pytest.raises(ConfigError, match="hierarchical"):
        rank_load(Routing("group-limited", nodes=3), 256, E, K, 24, 0)


def test_one_token_per_rank_busiest_rank_is_well_above_mean():
    """EP8 with one token per rank: 64 assignments over 8 ranks; the busiest carries ~1.5x the mean
    (Monte-Carlo above) and reads more distinct experts than the mean rank."""
    r = rank_load(Routing("uniform"), 8, E, K, 8)
    assert r.compute_factor > 1.4 and r.weight_factor > 1.3


def test_imbalance_shrinks_with_tokens_per_rank():
    factors = [rank_load(Routing("uniform"), t * 32, E, K, 32).compute_factor for t in (1, 8, 64, 512, 4096)]
    assert all(a > b for a, b in zip(factors, factors[1:])) and factors[-1] < 1.05


def test_eplb_replicates_hot_experts_and_cuts_the_straggler():
    load = np.array([8.0, 1, 1, 1, 1, 1, 1, 2])
    assert list(eplb_replicas(load, 3)) == [4, 1, 1, 1, 1, 1, 1, 1]  # all three go to the 8x expert
    zipf = Routing("zipf", skew=1.2)
    plain = rank_load(zipf, 4096, E, K, 32, 0)
    eplb = rank_load(zipf, 4096, E, K, 32, 32)
    assert eplb.compute_factor < 0.5 * plain.compute_factor
    expert, rank = placement(np.ones(E), 32, 32)
    assert np.bincount(rank).tolist() == [9] * 32  # (256 + 32) / 32 slots per rank, as DeepSeek's prefill


@pytest.mark.parametrize("skew", [0.3, 0.8, 1.2, 2.0])
@pytest.mark.parametrize("ep, redundant", [(1, 0), (8, 0), (32, 32), (144, 32)])
def test_skew_never_lightens_the_busiest_rank(skew, ep, redundant):
    for tokens in (ep, 16 * ep, 256 * ep):
        u = rank_load(Routing("uniform"), tokens, E, K, ep, redundant)
        z = rank_load(Routing("zipf", skew=skew), tokens, E, K, ep, redundant)
        assert z.max_assignments >= u.max_assignments - 1e-9
        assert z.max_distinct >= u.max_distinct - 1e-9


def test_vectorised_loads_match_scalar_calls():
    tokens = np.array([64.0, 64.0, 512.0])
    ep = np.array([8, 64, 8])
    max_a, max_d, mean_a, _ = rank_loads(Routing("uniform"), tokens, E, K, ep)
    for i in range(3):
        one = rank_load(Routing("uniform"), tokens[i], E, K, int(ep[i]))
        assert max_a[i] == pytest.approx(one.max_assignments) and max_d[i] == pytest.approx(one.max_distinct)
    assert mean_a == pytest.approx(tokens * K / ep)


@pytest.mark.parametrize("routing, needle", [
    (Routing("zipf", skew=0.0), "routing_skew"),
    (Routing("histogram", histogram=(1.0, 2.0)), "histogram"),
    (Routing("sorted"), "routing"),
])
def test_bad_routing_is_one_line(routing, needle):
    with pytest.raises(ConfigError, match=needle):
        rank_load(routing, 64, E, K, 8)


def test_planner_takes_the_groups_from_the_model(shipped_models, shipped_profiles):
    """`routing='group-limited'` uses the model's n_group / topk_group: fewer groups per token
    concentrate a token's experts on fewer ranks and raise the busiest rank."""
    from dataclasses import replace as _replace

    from simulators.parallel import Layout
    from simulators.plan import PlanOptions, Workload, evaluate_layout
    from simulators.precision import Precision

    v3 = shipped_models["deepseek-v3"]
    hw = shipped_profiles["h800"]

    def factor(m):
        return evaluate_layout(m, Precision.of("fp8"), hw, Layout(dp=8, ep=8), 16, "decode", Workload(1024, 128),
                               PlanOptions(routing="group-limited"))["straggler_factor"]

    four, one = factor(v3), factor(_replace(v3, topk_group=1))
    direct = rank_load(Routing("group-limited", n_group=8, topk_group=1), 128, E, K, 8)
    assert one > 1.1 * four  # 1.33 vs 1.16 at 128 tokens over EP8
    assert one == pytest.approx(direct.compute_factor, rel=1e-6)


def _v3_group_limited(shipped_models, shipped_profiles, phase: str, ep: int, redundant: int) -> dict:
    from simulators.parallel import Layout
    from simulators.plan import PlanOptions, Workload, evaluate_layout
    from simulators.precision import Precision

    # h800: 8 devices per NVLink domain; 256-token prompts, one per attention group: 256 * ep tokens
    return evaluate_layout(shipped_models["deepseek-v3"], Precision.of("fp8"), shipped_profiles["h800"],
                           Layout(dp=ep, ep=ep, redundant_experts=redundant), 1, phase, Workload(256, 64),
                           PlanOptions(routing="group-limited"))


@pytest.mark.parametrize("redundant", [0, 32])
def test_planner_places_prefill_experts_hierarchically_as_eplb_does(shipped_models, shipped_profiles, redundant):
    """deepseek-ai/EPLB: hierarchical policy for prefill when the nodes divide the expert groups
    (EP16 on 8-device nodes: 2 nodes, 8 groups). The planner's busiest-rank factor is then the
    Monte-Carlo's under that placement (same tolerance as the EPLB cases above)."""
    row = _v3_group_limited(shipped_models, shipped_profiles, "prefill", 16, redundant)
    assert row["eplb_policy"] == "EPLB hierarchical over 2 nodes"
    tokens = 256 * 16
    mc_a, _ = monte_carlo(Routing("group-limited", nodes=2), tokens, 16, redundant)
    assert row["straggler_factor"] == pytest.approx(mc_a / (tokens * K / 16), rel=ASSIGN_TOL)


def test_planner_keeps_the_global_policy_for_decode_and_for_nodes_that_do_not_divide(shipped_models,
                                                                                    shipped_profiles):
    decode = _v3_group_limited(shipped_models, shipped_profiles, "decode", 16, 32)
    assert decode["eplb_policy"] == "EPLB global"
    three_nodes = _v3_group_limited(shipped_models, shipped_profiles, "prefill", 24, 0)  # 3 does not divide 8
    assert three_nodes["eplb_policy"] == "contiguous"
    one_node = _v3_group_limited(shipped_models, shipped_profiles, "prefill", 8, 32)
    assert one_node["eplb_policy"] == "EPLB global"


def test_plan_says_which_expert_placement_it_used(shipped_models, shipped_profiles):
    from simulators.parallel import Layout
    from simulators.plan import PlanOptions, Workload, plan
    from simulators.precision import Precision

    opt = PlanOptions(routing="group-limited", prefill_layout=Layout(dp=16, ep=16), prefill_batch=1,
                      decode_layout=Layout(dp=16, ep=16), decode_batch=16)
    row = plan(shipped_models["deepseek-v3"], [shipped_profiles["h800"]], Workload(256, 64), opt,
               Precision.of("fp8")).table.iloc[0]
    assert "experts: EPLB hierarchical over 2 nodes" in row["prefill_why"]
    assert "experts: contiguous" in row["decode_why"]
