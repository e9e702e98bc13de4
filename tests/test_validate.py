"""Validation: the fit recovers known efficiencies from a synthetic run of the real sweep's cases,
scores each case with a fit made without it, and its calibration block is what the simulator uses.

The synthetic run: every case of the CPU quick sweep (with its reference rows), its FLOPs, bytes and
rows from the simulator's cost functions, and a time drawn from a known machine: a GEMM rate curve
by rows, a read-bandwidth curve by working set, a dispatch time per op, per-family efficiencies and
one overlap exponent. Nothing here is fitted to the code's own output: the truth is chosen first."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from bench import run_folder as rf
from bench.cases import Case, calibration_cases, quick_cases, simulator_cost
from daedalus import pipeline
from daedalus.cli import main
from simulators import fit as F
from simulators.hardware import load_profile, resolve_profile
from simulators.roofline import combine, op_time

STREAM_BYTES = 256 * 2**20
TRUE_P = 3.0
TRUE_OVERHEAD_S = 4e-6  # per dispatched op
TRUE_EFF = {  # family: (compute efficiency, memory efficiency)
    "mla_decode_absorbed": (0.5, 0.8), "mla_decode_naive": (0.4, 0.6), "mla_prefill": (0.7, 0.9),
    "attn_decode": (0.6, 0.7), "attn_prefill": (0.45, 0.8), "moe": (0.55, 0.65), "gemm": (0.9, 0.9),
    "read": (1.0, 0.95), "copy": (1.0, 0.5),
    "v4_compressor": (0.8, 0.7), "v4_indexer": (0.5, 0.6), "v4_attn": (0.45, 0.55), "v4_mhc": (0.3, 0.5),
}


# The machine: rate and bandwidth piecewise log-log linear between the reference grid's points (the
# form the simulator assumes), clamped at the ends; a saturating rate by rows, a cache-to-DRAM bandwidth.
# Up to 64 rows the compute rate is flat (the few-row GEMMs stream their weights: memory-bound).
RATE_GRID = ((1.0, 1.6e11), (4.0, 1.6e11), (16.0, 1.6e11), (64.0, 1.6e11), (256.0, 3.6e11), (512.0, 3.8e11),
             (1024.0, 3.9e11), (2048.0, 3.9e11))
BW_GRID = ((2.0**20, 6.0e10), (2.0**22, 5.0e10), (2.0**24, 2.5e10), (2.0**26, 1.6e10), (2.0**28, 1.5e10))


def _loglog(x, grid):
    xs, ys = np.log([g[0] for g in grid]), np.log([g[1] for g in grid])
    return np.exp(np.interp(np.log(np.clip(np.asarray(x, float), grid[0][0], grid[-1][0])), xs, ys))


def true_rate_flop_per_s(rows):
    return _loglog(rows, RATE_GRID)


def true_bandwidth_bytes_per_s(ws):
    return _loglog(ws, BW_GRID)


def synthetic_measured(noise: float = 0.0, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recs = []
    for c in calibration_cases("cpu", STREAM_BYTES) + quick_cases("fp32", STREAM_BYTES):
        cost = simulator_cost(c)
        flop, byt, rows = cost["flop"], cost["bytes_read"] + cost["bytes_written"], cost["rows"]
        n_ops = {"dispatch": 200.0, "read": 2.0, "gemm": 1.0}.get(c.kernel, 12.0)
        ws = np.inf if c.cache_state == "cold" else byt
        if c.kernel == "dispatch":
            t = n_ops * TRUE_OVERHEAD_S
        elif c.role == "reference":  # a GEMM at its compute rate (or streaming, if slower), a read streaming
            t = byt / true_bandwidth_bytes_per_s(ws)
            if c.kernel == "gemm":
                t = max(t, flop / true_rate_flop_per_s(rows))
            t += n_ops * TRUE_OVERHEAD_S
        else:
            ce, me = TRUE_EFF[c.family]
            t = float(combine(flop / (true_rate_flop_per_s(rows) * ce), byt / (true_bandwidth_bytes_per_s(ws) * me),
                              TRUE_P)) + n_ops * TRUE_OVERHEAD_S
        t *= float(np.exp(rng.normal(0.0, noise)))
        recs.append({**c.key(), "flop": flop, "bytes": byt, "rows": rows, "median_s": t, "n_ops": n_ops, "status": "ok",
                     "achieved_flop_per_s": flop / t, "achieved_bytes_per_s": byt / t, "noisy": False})
    return pd.DataFrame(recs)


def synthetic_run(tmp_path, noise: float = 0.0):
    run = tmp_path / "run-1"
    run.mkdir()
    synthetic_measured(noise).to_csv(run / rf.MEASURED, index=False)
    (run / rf.ENV).write_text("{}")
    doc = yaml.safe_load(open(resolve_profile("host-cpu").path))
    doc["name"] = "host-measured"
    doc.pop("calibration", None)
    rf.write_profile(run, measured=doc)
    return run


def test_curves_come_from_reference_rows_only():
    m = synthetic_measured()
    curves = F.measure_curves(m)
    rows, rate = zip(*curves.rate_by_rows["fp32"])
    assert len(rows) >= 4 and min(rows) > 1  # the m = 1 GEMM streams its weights: not a compute point
    np.testing.assert_allclose(rate, true_rate_flop_per_s(np.array(rows)), rtol=1e-9)  # net of dispatch time
    ws, bw = zip(*curves.bandwidth_by_bytes)
    np.testing.assert_allclose(bw, true_bandwidth_bytes_per_s(np.array(ws)), rtol=1e-9)
    assert curves.overhead_s_per_op == pytest.approx(TRUE_OVERHEAD_S)
    ref_shapes = {c.case_id for c in calibration_cases("cpu", STREAM_BYTES)}
    assert not ref_shapes & set(F.scored(F.roofline_inputs(m, resolve_profile("host-cpu"), curves))["case_id"])


def test_rate_curve_never_falls_as_rows_grow():
    # the largest square GEMM ran slower than a smaller one (the small one fits the cache whole):
    # the curve caps every rate by what more rows reached, so a kernel with many rows and large
    # operands is not priced at the small GEMM's cache-resident rate
    m = synthetic_measured()
    big = (m["kernel"] == "gemm") & (m["role"] == "reference") & (m["dtype"] == "fp32")
    top = m.loc[big, "rows"].max()
    m.loc[big & (m["rows"] == top), "median_s"] *= 3.0
    rows, rate = zip(*F.measure_curves(m).rate_by_rows["fp32"])
    assert all(a <= b * (1 + 1e-12) for a, b in zip(rate, rate[1:]))  # non-decreasing in rows
    slow = rate[rows.index(top)]
    below = [r for x, r in zip(rows, rate) if x < top]
    assert max(below) == pytest.approx(slow) and slow < true_rate_flop_per_s(top) / 2.5
    # points that already rise with rows are kept as measured
    assert F.no_faster_than_more_rows(((1.0, 2.0), (4.0, 3.0), (16.0, 5.0))) == ((1.0, 2.0), (4.0, 3.0), (16.0, 5.0))


def test_dispatch_time_is_the_fastest_sample_of_its_row():
    # a neighbour slowed most samples of the dispatch row (median 2x the floor): the per-op time is
    # the floor, which the other rows' dispatch share is netted with
    m = synthetic_measured()
    disp = m["kernel"] == "dispatch"
    m.loc[disp, "min_s"] = m.loc[disp, "median_s"]
    m.loc[disp, "median_s"] *= 2.0
    assert F.measure_curves(m).overhead_s_per_op == pytest.approx(TRUE_OVERHEAD_S)
    m.loc[disp, "min_s"] = np.nan  # not recorded (an older run): the median
    assert F.measure_curves(m).overhead_s_per_op == pytest.approx(2.0 * TRUE_OVERHEAD_S)


def test_fit_recovers_the_identifiable_factors():
    m = synthetic_measured()
    rows = F.scored(F.roofline_inputs(m, resolve_profile("host-cpu"), F.measure_curves(m)))
    f, _ = F.fit(rows)
    assert f.overlap_exponent == pytest.approx(TRUE_P, rel=0.05)
    c0 = rows["flop"] / rows["curve_flop_per_s"]
    m0 = rows["bytes"] / rows["curve_bytes_per_s"]
    for fam, g in rows.groupby("family"):
        ce, me = TRUE_EFF[fam]
        share = (c0[g.index] / ce) / (c0[g.index] / ce + m0[g.index] / me)
        if (share > 0.6).sum() >= 2:  # compute-dominated cases pin the compute efficiency
            assert f.compute_efficiency[fam] == pytest.approx(ce, rel=0.05), fam
        if (share < 0.4).sum() >= 2:
            assert f.memory_efficiency[fam] == pytest.approx(me, rel=0.05), fam


def test_leave_one_out_beats_speed_of_light_and_flags_nothing_on_quiet_data():
    m = synthetic_measured(noise=0.03)
    rows = F.roofline_inputs(m, resolve_profile("host-cpu"), F.measure_curves(m))
    cases = F.leave_one_out(rows)
    summary = F.summarise(cases).set_index(["mode", "family"])
    assert summary.loc[("calibrated", "all"), "mdape_pct"] < 5.0  # 3 % noise
    assert summary.loc[("speed_of_light", "all"), "mdape_pct"] > 30.0
    assert summary.loc[("speed_of_light", "all"), "bias"] > 1.0  # speed of light is optimistic
    assert summary.loc[("calibrated", "all"), "n"] == len(F.scored(rows))


def test_simulator_uses_the_fitted_block(tmp_path):
    """validate writes the block; op_time(mode=calibrated) on the loaded profile predicts a held-in
    case within the noise, through the block's curves (not the profile's peaks)."""
    run = synthetic_run(tmp_path)
    v = pipeline.validate(run)
    hw = load_profile(run / rf.PROFILE)
    assert hw.calibration is not None and hw.calibration.run_id == "run-1"
    assert v.overall() < 2.0
    m = synthetic_measured()
    case = m[(m["kernel"] == "mla_decode_absorbed") & (m["role"] == "case")].iloc[0]
    cost = simulator_cost(Case.from_row(case.to_dict()))
    t = op_time(cost["flop"], cost["bytes_read"] + cost["bytes_written"], "mla_decode_absorbed", "fp32", hw,
                mode="calibrated", rows=cost["rows"], n_ops=case["n_ops"])
    assert float(t.time_s) == pytest.approx(case["median_s"], rel=0.03)


def test_validate_command_writes_tables_and_calibration(tmp_path, capsys):
    run = synthetic_run(tmp_path, noise=0.02)
    assert main(["validate", "--results", str(tmp_path), "--format", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert {"mode", "subset", "family", "n", "n_noisy", "mdape_pct", "within_25_pct", "bias"} <= set(recs[0])
    assert {r["mode"] for r in recs} == {"speed_of_light", "calibrated"}
    assert (run / rf.VALIDATION_CASES).exists() and (run / rf.VALIDATION_SUMMARY).exists()
    assert main(["simulate", "--hardware", str(run / rf.PROFILE), "--mode", "calibrated", "--model",
                 "deepseek-v2-lite", "--format", "csv"]) == 0


def test_an_old_calibration_block_is_refit_not_fatal(tmp_path, capsys):
    run = synthetic_run(tmp_path)
    path = run / rf.PROFILE
    doc = yaml.safe_load(path.read_text())
    doc["calibration"] = {"run_id": "old", "compute_efficiency": {"gemm": 0.5}}  # version 1 layout
    path.write_text(yaml.safe_dump(doc))
    assert main(["simulate", "--hardware", str(path), "--mode", "calibrated", "--model", "deepseek-v2-lite"]) == 2
    assert "validate" in capsys.readouterr().err  # says how to fix it
    pipeline.validate(run)
    assert load_profile(path).calibration.run_id == "run-1"


def test_validate_without_runs_is_one_line_error(tmp_path, capsys):
    assert main(["validate", "--results", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["simulate", "--mode", "calibrated"]) == 2  # datasheet profile has no calibration
    assert "calibration" in capsys.readouterr().err
