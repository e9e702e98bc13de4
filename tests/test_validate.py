"""Validation: the calibrated fit recovers known efficiencies and is scored out of sample."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.validate import (
    FamilyFit,
    calibration_block,
    cross_validate,
    fit_all,
    fit_family,
    predict,
    roofline_inputs,
    summarise,
)
from daedalus.cli import main
from simulators.hardware import load_profile, parse_profile, resolve_profile
from simulators.roofline import op_time

# family: compute eff, memory eff, overhead, overlap exponent p, cache bandwidth factor
TRUE = {"gemm": (0.6, 1.0, 2e-5, 1.0, 1.0), "mla_decode": (0.3, 0.7, 5e-5, 2.0, 3.0),
        "moe": (0.4, 0.5, 1e-4, 8.0, 2.0)}


def synthetic_measured(hw, n_per_family: int = 30, noise: float = 0.03, seed: int = 1) -> pd.DataFrame:
    """Cases whose times follow the calibrated roofline with known factors, plus noise; about a
    quarter of the working sets fit in the profile's on-chip cache, a few of those measured cold."""
    rng = np.random.default_rng(seed)
    peak, bw = hw.peak("fp32"), hw.memory_bandwidth_bytes_per_s.value
    cache = hw.onchip_cache_bytes.value
    rows = []
    for fam, (ce, me, oh, p, cf) in TRUE.items():
        for i in range(n_per_family):
            byt = cache * 10 ** rng.uniform(-1.5, 2.5)
            flop = byt * 10 ** rng.uniform(-1, 2)
            state = "cold" if i % 7 == 0 else "warm"
            k = cf if byt <= cache and state == "warm" else 1.0
            c, m = flop / (peak * ce), byt / (bw * me * k)
            t = (c**p + m**p) ** (1 / p) + oh
            rows.append({"case_id": f"{fam}-{i}", "kernel": fam, "family": fam, "model": "m", "phase": "decode",
                         "batch": 1, "query_len": 1, "context": 1024, "dtype": "fp32", "cache_state": state,
                         "flop": flop, "bytes": byt, "median_s": t * np.exp(rng.normal(0, noise)), "status": "ok"})
    return pd.DataFrame(rows)


def test_fit_recovers_known_factors():
    hw = resolve_profile("host-cpu")
    rows = roofline_inputs(synthetic_measured(hw, noise=0.0), hw)
    assert rows["in_cache"].any() and not rows["in_cache"].all()
    for fam, (ce, me, oh, p, cf) in TRUE.items():
        fit = fit_family(rows[rows["family"] == fam])
        assert fit.compute_efficiency == pytest.approx(ce, rel=0.05)
        assert fit.memory_efficiency == pytest.approx(me, rel=0.05)
        assert fit.overlap_exponent == pytest.approx(p, rel=0.05)
        assert fit.cache_factor == pytest.approx(cf, rel=0.05)
        assert fit.overhead_s == pytest.approx(oh, rel=0.2, abs=1e-5)


def test_calibrated_simulator_evaluates_the_fitted_model(tmp_path):
    """The calibration block written from the fits makes `op_time(mode='calibrated')` reproduce
    `predict` exactly, including the overlap exponent and the cache factor (old blocks still load)."""
    hw = resolve_profile("host-cpu")
    rows = roofline_inputs(synthetic_measured(hw, noise=0.0), hw)
    fits = fit_all(rows)
    doc = yaml.safe_load(open(hw.path))
    doc["calibration"] = calibration_block(fits, "run-x")
    cal_hw = parse_profile(doc, "synthetic")
    warm = rows[rows["cache_state"] == "warm"]  # the simulator has no notion of a flushed cache
    for fam, grp in warm.groupby("family"):
        sim = op_time(grp["flop"].to_numpy(), grp["bytes"].to_numpy(), fam, "fp32", cal_hw, mode="calibrated")
        np.testing.assert_allclose(sim.time_s, predict(grp, fits[fam]), rtol=1e-4)
    # a block without the new keys is the classic max() roofline with no cache factor
    old = {k: v for k, v in doc["calibration"].items() if k not in ("overlap_exponent", "cache_bandwidth_factor")}
    old_hw = parse_profile({**doc, "calibration": old}, "old")
    f = fits["gemm"]
    t = op_time(1e9, 1e6, "gemm", "fp32", old_hw, mode="calibrated").time_s
    expect = max(1e9 / (hw.peak("fp32") * f.compute_efficiency),
                 1e6 / (hw.memory_bandwidth_bytes_per_s.value * f.memory_efficiency)) + round(f.overhead_s, 12)
    assert float(t) == pytest.approx(expect, rel=1e-5)
    assert FamilyFit(1.0, 1.0, 0.0).overlap_exponent == float("inf")


def test_cross_validation_scores_held_out_and_beats_speed_of_light():
    hw = resolve_profile("host-cpu")
    rows = roofline_inputs(synthetic_measured(hw), hw)
    cases = cross_validate(rows, k=5)
    cal = cases[cases["mode"] == "calibrated"]
    assert set(cal["fold"]) == set(range(5))
    summary = summarise(cases).set_index(["mode", "family"])
    assert summary.loc[("calibrated", "all"), "mdape_pct"] < 6.0  # noise is 3%
    assert summary.loc[("speed_of_light", "all"), "mdape_pct"] > 30.0
    # speed of light is optimistic: measured slower than predicted
    assert summary.loc[("speed_of_light", "all"), "bias"] > 1.0
    assert summary.loc[("calibrated", "all"), "n"] == len(rows)


def test_validate_command_writes_tables_and_calibration(tmp_path, capsys):
    hw_path = tmp_path / "run-1" / "hardware_profile.yaml"
    hw_path.parent.mkdir()
    doc = yaml.safe_load(open(resolve_profile("host-cpu").path))
    doc["name"] = "host-measured"
    hw_path.write_text(yaml.safe_dump(doc))
    synthetic_measured(load_profile(hw_path)).to_csv(hw_path.parent / "measured.csv", index=False)
    (hw_path.parent / "env.json").write_text("{}")
    assert main(["validate", "--results", str(tmp_path), "--format", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert {"mode", "family", "n", "mdape_pct", "mape_pct", "within_25_pct", "bias"} <= set(recs[0])
    assert {r["mode"] for r in recs} == {"speed_of_light", "calibrated"}
    prof = load_profile(hw_path)
    assert prof.calibration is not None and prof.calibration.run_id == "run-1"
    assert prof.calibration.compute_efficiency["gemm"] == pytest.approx(0.6, rel=0.1)
    # the stored calibration is usable by simulate
    assert main(["simulate", "--hardware", str(hw_path), "--mode", "calibrated", "--model", "deepseek-v2-lite",
                 "--format", "csv"]) == 0
    assert (hw_path.parent / "validation_summary.csv").exists()


def test_validate_without_runs_is_one_line_error(tmp_path, capsys):
    assert main(["validate", "--results", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["simulate", "--mode", "calibrated"]) == 2  # datasheet profile has no calibration
    assert "calibration" in capsys.readouterr().err
