"""`daedalus figures`, `memory_figure` and `plan_figure`: every kind writes a non-empty PNG and SVG
without a benchmark run; coinciding series stay distinguishable; log axes carry readable labels;
expert-load panels never repeat a chart."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from daedalus.cli import main
from daedalus.report import figures as rfig
from daedalus.report.plot_style import new_figure, readable_log_axis
from daedalus.report.plots_measured import distinct_routings, expert_load_figure
from daedalus.report.plots_sim import kv_memory_figure
from simulators.errors import ConfigError
from simulators.hardware import resolve_profile
from simulators.model_config import resolve_model
from simulators.variants import resolve_variant

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = ["--model", "deepseek-v2-lite,llama-3.1-8b", "--hardware", "h100-sxm,h200"]


def assert_image(path) -> None:
    data = path.read_bytes()
    assert len(data) > 2000, path
    if path.suffix == ".png":
        assert data[:8] == PNG_MAGIC
    else:
        assert b"<svg" in data[:2000]


@pytest.mark.parametrize("kind", rfig.SIM_KINDS)
def test_each_kind_png_and_svg_without_a_run(tmp_path, capsys, kind):
    code = main(["figures", "--kind", kind, *SMALL, "--out", str(tmp_path), "--image-format", "png",
                 "--image-format", "svg"])
    out, err = capsys.readouterr()
    assert code == 0
    written = [tmp_path / p.split("/")[-1] for p in out.split()]
    assert written and {p.suffix for p in written} == {".png", ".svg"}
    for p in written:
        assert_image(p)
    if kind == "roofline":  # one per hardware
        assert {p.stem for p in written} == {"roofline_h100-sxm", "roofline_h200"}
    assert err.startswith("done: ") and str(tmp_path) in err


def _run_folder(tmp_path, name="run-x"):
    run = tmp_path / name
    run.mkdir()
    (run / "env.json").write_text(json.dumps({"time_utc": "2026-01-01T00:00:00Z"}))
    rng = np.random.default_rng(0)
    rows = []
    for mode in ("speed_of_light", "calibrated"):
        for i in range(8):
            m = 10 ** rng.uniform(-4, -2)
            rows.append({"case_id": f"c{i}", "family": ["gemm", "moe"][i % 2], "mode": mode, "measured_s": m,
                         "predicted_s": m * rng.uniform(0.5, 1.2), "error_pct": 0.0})
    pd.DataFrame(rows).to_csv(run / "validation_cases.csv", index=False)
    counts = rng.poisson(20, 16)
    load = [{"case_id": f"{k}/m/decode/B16", "expert": e, "tokens": int(counts[e])}
            for k in ("moe_grouped", "moe_loop") for e in range(16)]
    load += [{"case_id": "moe_loop/m/decode/B64", "expert": e, "tokens": int(4 * counts[e] + e)} for e in range(16)]
    pd.DataFrame(load).to_csv(run / "expert_load.csv", index=False)
    return run


def test_measured_kinds_from_a_run(tmp_path, capsys):
    _run_folder(tmp_path)
    out_dir = tmp_path / "figs"
    code = main(["figures", "--kind", "pred-vs-measured,expert-load", *SMALL, "--out", str(out_dir),
                 "--run-id", "run-x", "--results", str(tmp_path)])
    assert code == 0
    for name in ("pred_vs_measured.png", "expert_load.png"):
        assert_image(out_dir / name)
    newest = tmp_path / "figs-newest"  # a bare --run-id: the newest run (an explicit '' is refused)
    assert main(["figures", "--kind", "pred-vs-measured", *SMALL, "--out", str(newest), "--results", str(tmp_path),
                 "--run-id"]) == 0
    assert_image(newest / "pred_vs_measured.png")


@pytest.mark.parametrize("argv, needle", [
    (["--kind", "expert-load"], "--run-id"),
    (["--kind", "rooflin"], "--kind"),
    (["--run-id", "nope"], "--run-id"),
    (["--tpot-ms", "-5"], "--tpot-ms"),
    (["--model", "llama-3.1-8b:kv_heads=5"], "kv_heads=5"),
])
def test_bad_figures_input_is_one_line(tmp_path, capsys, argv, needle):
    code = main(["figures", *argv, "--out", str(tmp_path), "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and needle in err


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_memory_figure_one_file(tmp_path, suffix):
    models = [resolve_model("deepseek-v3"), resolve_variant("llama-3.1-8b:kv_heads=1")]
    path = rfig.memory_figure(models, tmp_path / f"kv{suffix}", profiles=[resolve_profile("h200")])
    assert path == tmp_path / f"kv{suffix}"
    assert_image(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_memory_figure_bad_name_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match=r"--plot: .*\.png or \.svg"):
        rfig.memory_figure([resolve_model("deepseek-v3")], tmp_path / "kv.pdf")
    with pytest.raises(ConfigError, match="--plot: folder"):
        rfig.memory_figure([resolve_model("deepseek-v3")], tmp_path / "missing" / "kv.png")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plan_figure_one_file(tmp_path, suffix):
    result = rfig._plan_result(resolve_model("deepseek-v2-lite"), [resolve_profile("h100-sxm")], 0.05)
    path = rfig.plan_figure(result, tmp_path / f"pareto{suffix}", tpot_target_s=0.05)
    assert_image(path)


def test_pareto_marks_target_and_chosen_point():
    from daedalus.report.plots_plan import pareto_figure

    result = rfig._plan_result(resolve_model("deepseek-v2-lite"), [resolve_profile("h100-sxm"),
                                                                  resolve_profile("h200")], 0.05)
    fig = pareto_figure(result.pareto, chosen=result.table, tpot_target_s=0.05)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "chosen deployment (plan table)" in labels
    assert any("TPOT target 50 ms" in t for t in labels)
    assert any(np.allclose(line.get_xdata(), 1 / 0.05) for line in ax.lines if len(line.get_xdata()) == 2)


def _panel_series(ax):
    return [(line.get_label(), line.get_color(), line.get_marker(), str(line.get_linestyle()))
            for line in ax.lines if not line.get_label().startswith("_")]


def test_coinciding_kv_curves_are_distinguishable():
    """DeepSeek-V3 and Kimi-K2 cache the same MLA latent ((512 + 64) x 61 layers; both configs), so
    their curves coincide; DeepSeek-V2 (60 layers) is within 2 %. Every line differs from every other
    in (colour, marker, dash) and the coinciding one says so in the legend."""
    models = [resolve_model(n) for n in ("deepseek-v3", "kimi-k2", "deepseek-v2", "llama-3.1-405b")]
    mem, _ = rfig.kv_memory_frames(models, same_dims=False)
    fig = kv_memory_figure(mem, {})
    series = _panel_series(fig.axes[0])
    assert len(series) == 4
    assert len({s[1:] for s in series}) == 4
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("kimi-k2") and "same curve as deepseek-v3" in t for t in labels)
    assert not any(t.startswith("deepseek-v2") and "same curve" in t for t in labels)


@pytest.mark.parametrize("lo, hi", [(30.0, 300.0), (45.0, 90.0), (1e-2, 1e4)])
def test_log_axes_have_several_plain_labels(lo, hi):
    fig, (ax,) = new_figure(4, 3)
    ax.plot([lo, hi], [lo, hi])
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    readable_log_axis(ax.xaxis)
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_xticklabels()
             if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert len(shown) >= 2, shown
    assert not any("$" in t or "10^" in t for t in shown)


def test_expert_load_panels_are_distinct():
    rng = np.random.default_rng(1)
    counts = {b: rng.poisson(b, 8) for b in (4, 16, 64)}
    rows = [{"case_id": f"{k}/m/B{b}", "expert": e, "tokens": int(c[e])}
            for b, c in counts.items() for k in ("moe_grouped", "moe_loop") for e in range(8)]
    df = pd.DataFrame(rows)
    panels = distinct_routings(df)
    assert len(panels) == 3  # 6 cases, 3 distinct routings
    for _case, same in panels:
        assert len(same) == 2
    fig = expert_load_figure(df)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == len(set(titles)) == 3
    assert all("same routing" in t for t in titles)
    heights = [tuple(p.get_height() for p in ax.patches) for ax in fig.axes]
    assert len(set(heights)) == 3  # no two panels draw the same chart
