"""`memory --plot` and `plan --plot` write their figure; `plan` writes a results folder only with --save."""

from __future__ import annotations

from daedalus.cli import main


def test_memory_plot_writes_a_figure(tmp_path, capsys):
    path = tmp_path / "kv.svg"
    assert main(["memory", "--model", "deepseek-v3", "--model", "deepseek-v4-flash", "--plot", str(path)]) == 0
    assert path.stat().st_size > 1000 and path.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_plan_plot_and_save(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    png = tmp_path / "pareto.png"
    assert main(["plan", "--model", "deepseek-v3", "--hardware", "h200", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "results").exists()  # nothing written unless --save
    assert main(["plan", "--model", "deepseek-v3", "--hardware", "h200", "--save", "out", "--format", "csv"]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"plan.csv", "pareto.csv", "plan_inputs.json"}
