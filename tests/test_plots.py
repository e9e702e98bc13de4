"""Every figure function writes a non-empty PNG and SVG from small frames, and survives edge cases
(a profile with only an fp32 peak, empty inputs, a MoE-free run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from daedalus.report import plots
from simulators.hardware import parse_profile, resolve_profile
from simulators.model_config import resolve_model
from simulators.predict import memory_table, simulate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ("deepseek-v2-lite", "llama-3.1-8b")


def assert_written(paths) -> None:
    png, svg = paths
    assert png.suffix == ".png" and svg.suffix == ".svg"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 2000
    text = svg.read_text()
    assert "<svg" in text and svg.stat().st_size > 2000


@pytest.fixture(scope="module")
def sim():
    models = [resolve_model(n) for n in MODELS]
    profiles = [resolve_profile("h100-sxm"), resolve_profile("host-cpu")]
    result = simulate(models, profiles, phases=("decode", "prefill"), batches=(1, 8), contexts=(1024,))
    return models, profiles, result


def measured_frame(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fams = ["mla_decode", "attn_decode", "moe", "gemm", "copy", "mla_prefill"]
    rows = []
    for i in range(n):
        fam = fams[i % len(fams)]
        flop = 0.0 if fam == "copy" else 10 ** rng.uniform(6, 9)
        byt = 10 ** rng.uniform(6, 8)
        t = max(flop / 50e9, byt / 15e9) * 1.5
        rows.append({"case_id": f"c{i}", "kernel": fam, "family": fam, "dtype": "fp32", "flop": flop, "bytes": byt,
                     "median_s": t, "achieved_flop_per_s": flop / t, "achieved_bytes_per_s": byt / t,
                     "cv": 0.05, "status": "ok" if i % 5 else "skipped"})
    return pd.DataFrame(rows)


def validation_cases(n: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for mode, lo, hi in (("speed_of_light", 0.3, 0.9), ("calibrated", 0.8, 1.2)):
        for i in range(n):
            measured = 10 ** rng.uniform(-4, -1)
            predicted = measured * rng.uniform(lo, hi)
            rows.append({"case_id": f"c{i}", "kernel": "k", "family": ["gemm", "moe", "mla_decode"][i % 3],
                         "mode": mode, "measured_s": measured, "predicted_s": predicted,
                         "error_pct": 100 * (predicted / measured - 1)})
    return pd.DataFrame(rows)


def test_kv_memory(tmp_path, sim):
    models, profiles, _ = sim
    mem = memory_table(models, contexts=(1024, 8192, 65536))
    caps = {f"{h.name} {h.memory_bytes.value / 1e9:.0f} GB": h.memory_bytes.value for h in profiles}
    assert_written(plots.plot_kv_memory(mem, caps, tmp_path, "kv"))
    assert_written(plots.plot_kv_memory(mem, caps, tmp_path, "kv2", same_dims_df=mem))


def test_roofline_with_and_without_measured(tmp_path, sim):
    _, profiles, result = sim
    assert_written(plots.plot_roofline(result.ops, profiles[0], tmp_path, "roof_gpu"))
    assert_written(plots.plot_roofline(result.ops, profiles[1], tmp_path, "roof_host", measured_df=measured_frame()))


def test_roofline_fp32_only_profile(tmp_path, sim):
    models, _, _ = sim
    src = {"status": "measured", "source": "test"}
    hw = parse_profile({"name": "fp32-only", "peak_flop_per_s": {"fp32": {"value": 5e10, **src}},
                        "memory_bytes": {"value": 1.6e10, **src},
                        "memory_bandwidth_bytes_per_s": {"value": 2e10, **src}}, "test")
    ops = simulate(models, [hw], phases=("decode", "prefill"), batches=(1,), contexts=(512,)).ops
    assert set(ops["compute_dtype"]) == {"fp32"}  # bf16 / fp8 widened to the only peak
    assert_written(plots.plot_roofline(ops, hw, tmp_path, "roof_fp32", measured_df=measured_frame()))
    assert_written(plots.plot_roofline(None, hw, tmp_path, "roof_empty"))


def test_op_breakdown(tmp_path, sim):
    _, _, result = sim
    assert_written(plots.plot_op_breakdown(result.ops, tmp_path, "brk", model="deepseek-v2-lite",
                                           hardware="h100-sxm"))
    assert_written(plots.plot_op_breakdown(result.ops, tmp_path, "brk_missing", model="nope", hardware="h100-sxm"))


def test_hardware_comparison(tmp_path, sim):
    _, _, result = sim
    assert_written(plots.plot_hardware_comparison(result.totals, tmp_path, "hw", model="llama-3.1-8b"))


def test_pred_vs_measured(tmp_path):
    assert_written(plots.plot_pred_vs_measured(validation_cases(), tmp_path, "pvm"))
    one_mode = validation_cases()
    assert_written(plots.plot_pred_vs_measured(one_mode[one_mode["mode"] == "calibrated"], tmp_path, "pvm1"))


def test_expert_load(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame([{"case_id": c, "expert": e, "tokens": int(rng.poisson(20))}
                       for c in ("moe-b16", "moe-b64") for e in range(16)])
    assert_written(plots.plot_expert_load(df, tmp_path, "experts"))


@pytest.mark.parametrize("fn", [plots.plot_op_breakdown, plots.plot_hardware_comparison,
                                plots.plot_pred_vs_measured, plots.plot_expert_load])
def test_empty_frames_give_a_placeholder(tmp_path, fn):
    png, svg = fn(pd.DataFrame(), tmp_path, "empty")
    assert png.read_bytes()[:8] == PNG_MAGIC and svg.stat().st_size > 0
