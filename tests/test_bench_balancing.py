"""Auxiliary-loss-free balancing on the bench's real router, beside the simulator's (bench/balancing.py)."""

import numpy as np
import pytest
import torch

from bench import balancing as HB
from bench.kernels import moe

DIMS = moe.MoEDims(d=96, Ie=16, Is=16, router=moe.RouterSpec(n_experts=16, top_k=4))


@pytest.fixture(scope="module")
def params():
    return moe.make_params(DIMS, "cpu", torch.float32, seed=5)


def test_skewed_tokens_put_the_preference_into_the_router_logits(params):
    base = HB._preference(16, 1.0, seed=0)
    mu = HB.preferred_direction(params["w_gate"], base)
    x = HB.skewed_tokens(mu, 4000, torch.Generator().manual_seed(1), torch.float32)
    logits = (x.double() @ params["w_gate"].double().t())
    np.testing.assert_allclose(logits.mean(0).numpy(), base.numpy(), atol=0.08)  # mean logit = base
    assert 0.5 < float(logits.std(0).mean()) < 1.5  # noise of order 1, as the simulator assumes


@pytest.fixture(scope="module")
def result(params):
    return HB.measure_host(DIMS, params, T=256, steps=300, skew=1.0, gamma=0.002,
                           timing=HB.TimingConfig(budget_s=0.02, warmup_s=0.0, min_samples=3))


def test_bias_balancing_on_the_real_router_matches_the_simulated_trajectory(result):
    s = HB.summary(result).set_index(["policy", "source"])
    host_none, sim_none = s.loc[("none", "host")], s.loc[("none", "simulated")]
    host_free, sim_free = s.loc[("aux-free", "host")], s.loc[("aux-free", "simulated")]
    # without balancing the skew stays; the bias rule removes most of it, on the real router too
    assert host_free["last_mean_max_violation"] < 0.5 * host_none["last_mean_max_violation"]
    assert host_none["last_mean_max_violation"] == pytest.approx(host_none["first_mean_max_violation"], rel=0.15)
    # the real router and the simulated one (independent code, same E, k, T, skew, gamma) agree
    assert host_none["last_mean_max_violation"] == pytest.approx(sim_none["last_mean_max_violation"], rel=0.2)
    assert host_free["last_mean_max_violation"] == pytest.approx(sim_free["last_mean_max_violation"], rel=0.35)


def test_the_layer_is_timed_at_the_skewed_and_the_balanced_routing(result):
    t = result.timing.set_index("routing")
    assert set(t.index) == {"skewed", "balanced"}
    assert t.loc["balanced", "max_over_mean"] < t.loc["skewed", "max_over_mean"]
    assert (t["median_s"] > 0).all() and np.isfinite(HB.ratio_balanced_over_skewed_s(result))


@pytest.mark.parametrize("argv, words", [
    (["--balancing", "--comm"], "choose one"),
    (["--balancing", "--routing-skew", "-1"], "--routing-skew"),
    (["--balancing", "--routing-skew", "nan"], "--routing-skew"),
    (["--balancing", "--run-id", "../x"], "--run-id"),
])
def test_bad_balancing_flags_are_one_line(tmp_path, capsys, argv, words):
    from daedalus.cli import main

    got = main(["bench", "--results", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert got == 2 and len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert not any(tmp_path.iterdir())  # nothing measured, no folder made


def test_the_balancing_figure_is_written(tmp_path, result):
    from daedalus.report.plots_balancing import plot_balancing

    paths = plot_balancing(result.trajectory, tmp_path)
    assert {p.suffix for p in paths} == {".png", ".svg"} and all(p.stat().st_size > 0 for p in paths)
