"""The run report: every section present, every image embedded as a data URI and decodable by a
real browser, text escaped, missing inputs reported as "not available", and `daedalus report`
picking the right run folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from daedalus.report.report import write_report
from bench.run_folder import find_run
from daedalus.cli import main
from simulators.errors import ConfigError

SECTIONS = ("summary", "validation", "measured", "figures", "planning", "environment", "provenance")
HOSTILE = "<script>alert('x')</script> & \"quotes\""
SMALL = {"models": ("deepseek-v2-lite", "llama-3.1-8b"), "hardware": ("h100-sxm", "host-cpu"),
         "breakdown_model": "deepseek-v2-lite", "breakdown_hardware": "h100-sxm"}
MEASURED_COLUMNS = ["run_id", "case_id", "kernel", "family", "model", "phase", "batch", "query_len", "context", "dtype",
                    "device", "flop", "bytes_read", "bytes_written", "bytes", "median_s", "iqr_s", "cv", "min_s",
                    "n_samples", "achieved_flop_per_s", "achieved_bytes_per_s", "status", "skip_reason"]
FAMILIES = ("mla_decode", "mla_prefill", "attn_decode", "attn_prefill", "moe", "gemm", "copy")
HOST_PROFILE = """name: host-measured
display_name: Benchmark host (measured)
vendor: host
peak_flop_per_s:
  fp32: {value: 6.0e+10, status: measured, source: "run r1 gemm sweep"}
memory_bytes: {value: 25769803776, status: datasheet, source: "machine size"}
memory_bandwidth_bytes_per_s: {value: 2.0e+10, status: measured, source: "run r1 copy sweep"}
"""


def make_run(run_dir, *, files=("measured", "expert_load", "env", "profile", "validation"), seed: int = 0):
    """A synthetic run folder with the exact columns the benchmark and validation write."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    rows = []
    for i in range(21):
        fam = FAMILIES[i % len(FAMILIES)]
        flop = 0.0 if fam == "copy" else float(10 ** rng.uniform(6, 9))
        byt = float(10 ** rng.uniform(6, 8))
        t = max(flop / 50e9, byt / 15e9) * rng.uniform(1.1, 2.0)
        ok = i % 10 != 9
        rows.append([run_dir.name, f"{fam}-{i}", f"{fam}_kernel", fam, "deepseek-v2-lite",
                     "prefill" if "prefill" in fam else "decode", 1 + i % 3, 1, 1024, "fp32", "cpu", flop, byt * 0.9,
                     byt * 0.1, byt, t, t * 0.05, rng.uniform(0.01, 0.1), t * 0.97, 15, flop / t, byt / t,
                     "ok" if ok else "skipped", "" if ok else "over the time budget"])
    measured = pd.DataFrame(rows, columns=MEASURED_COLUMNS)
    if "measured" in files:
        measured.to_csv(run_dir / "measured.csv", index=False)
    if "expert_load" in files:
        pd.DataFrame([{"case_id": "moe-b32", "expert": e, "tokens": int(rng.poisson(12))} for e in range(32)]).to_csv(
            run_dir / "expert_load.csv", index=False)
    if "env" in files:
        (run_dir / "env.json").write_text(json.dumps({
            "device": "cpu", "cores": 2, "torch": "2.13.0", "timestamp_utc": "2025-01-01T00:00:00Z",
            "note": HOSTILE, "threads": {"torch": 2}}))
    if "profile" in files:
        (run_dir / "hardware_profile.yaml").write_text(HOST_PROFILE)
    if "validation" in files:
        ok = measured[measured["status"] == "ok"]
        cases = []
        for mode, lo, hi in (("speed_of_light", 0.3, 0.9), ("calibrated", 0.8, 1.2)):
            pred = ok["median_s"] * rng.uniform(lo, hi, len(ok))
            cases.append(pd.DataFrame({
                "case_id": ok["case_id"], "kernel": ok["kernel"], "family": ok["family"], "mode": mode,
                "model": ok["model"], "phase": ok["phase"], "batch": ok["batch"], "query_len": ok["query_len"],
                "context": ok["context"], "flop": ok["flop"], "bytes": ok["bytes"], "measured_s": ok["median_s"],
                "predicted_s": pred, "error_pct": (pred - ok["median_s"]) / ok["median_s"] * 100}))
        cases = pd.concat(cases, ignore_index=True)
        cases.to_csv(run_dir / "validation_cases.csv", index=False)
        summary = []
        for (mode, fam), g in [((m, "all"), g) for m, g in cases.groupby("mode")] + list(
                cases.groupby(["mode", "family"])):
            err = g["error_pct"].abs()
            summary.append({"mode": mode, "family": fam, "n": len(g), "mdape_pct": err.median(),
                            "mape_pct": err.mean(), "within_25_pct": 100 * (err <= 25).mean(),
                            "bias": float(np.exp(np.log(g["measured_s"] / g["predicted_s"]).mean()))})
        pd.DataFrame(summary).to_csv(run_dir / "validation_summary.csv", index=False)
    return run_dir


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """The default report (all shipped defaults) of a complete synthetic run, built once."""
    run = make_run(tmp_path_factory.mktemp("results") / "run-full")
    path = write_report(run)
    return run, path, path.read_text()


def test_report_has_every_section_and_embedded_images(full_report):
    run, path, text = full_report
    assert path == run / "report.html"
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in text
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', text)
    assert len(srcs) >= 10  # kv, 7 rooflines, breakdown, comparison, pred-vs-measured, expert load
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(srcs) == text.count("<img")
    hrefs = re.findall(r'\shref="([^"]*)"', text)
    assert all(h.startswith("#") for h in hrefs)  # nothing outside the file
    assert "<link" not in text and "@import" not in text and "url(" not in text
    for name in ("kv_memory", "roofline_h100-sxm", "roofline_host-measured", "op_breakdown",
                 "hardware_comparison", "pred_vs_measured", "expert_load"):
        for ext in ("png", "svg"):
            assert (run / "figures" / f"{name}.{ext}").stat().st_size > 0
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # atomic write left nothing behind


def test_report_content(full_report):
    _, _, text = full_report
    assert "speed of light" in text and "calibrated" in text and "MdAPE" in text
    assert 'class="estimate"' in text and 'class="badge estimate"' in text  # estimates visibly marked
    assert "host-measured" in text and "run r1 gemm sweep" in text
    assert "not available" not in text
    assert "over the time budget" in text  # skip reasons
    assert HOSTILE not in text and html_escaped(HOSTILE) in text
    assert "mla_decode" in text and "median CV" in text


def _table_rows(text: str, css_class: str) -> list[list[str]]:
    """Body rows of the report table with `css_class`, as cell texts."""
    body = re.search(rf'<table class="{css_class}">.*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_report_planning_section_shows_the_plan_api_answer(full_report):
    """The planning section: present, its Pareto figure written, and every breakdown and answer
    number equal to `simulators.plan.plan`'s for the same model, accelerators and workload."""
    from daedalus.report.report import DEFAULT_HARDWARE
    from daedalus.report.report_html import fmt_num
    from daedalus.report.report_plan import PLAN_OPTIONS, PLAN_WORKLOAD
    from simulators.hardware import resolve_profile
    from simulators.model_config import resolve_model
    from simulators.plan import plan

    run, _, text = full_report
    assert '<section id="planning">' in text and 'href="#planning"' in text
    assert (run / "figures" / "plan_pareto.png").stat().st_size > 0
    accel = [resolve_profile(n) for n in DEFAULT_HARDWARE if resolve_profile(n).vendor != "host"]
    table = plan(resolve_model("deepseek-v3"), accel, PLAN_WORKLOAD, PLAN_OPTIONS).table
    breakdown = {(r[0], r[1]): r for r in _table_rows(text, "plan-breakdown")}
    answer = {r[1]: r for r in _table_rows(text, "plan-answer")}
    assert set(answer) == set(table["hardware"])
    ms = lambda v: fmt_num(v * 1e3)  # noqa: E731
    for _, r in table.iterrows():
        row = answer[r["hardware"]]
        assert row[0] == str(r["rank"]) and row[2] == fmt_num(int(r["devices"]))
        assert row[6] == fmt_num(r["decode_tokens_per_s_per_device"]) and row[9] == ms(r["tpot_s"])
        for phase in ("decode", "prefill"):
            cells = breakdown[(r["hardware"], phase)]
            expected = [ms(r[f"{phase}_{k}_s"]) for k in ("step", "compute_bound", "memory_bound", "straggler",
                                                         "exposed_comm")]
            assert cells[2:7] == expected, (r["hardware"], phase)
            assert html_escaped(r[f"{phase}_why"]) == cells[7]


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


def test_missing_files_say_not_available(tmp_path):
    run = make_run(tmp_path / "only-env", files=("env",))
    text = write_report(run, **SMALL).read_text()
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in text
    assert text.count("not available") >= 4  # validation, measured, pred-vs-measured, expert load
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'<img[^>]*\ssrc="([^"]*)"', text))


def test_report_reads_the_predict_files(tmp_path, monkeypatch):
    """The predict step's files are written once; a later report reads them instead of simulating."""
    from daedalus.report import frames

    run = make_run(tmp_path / "p", files=("env",))
    write_report(run, **SMALL, out_dir=run)  # an explicit --out of the run folder itself
    for name in ("predicted.csv", "ops.csv", "memory.csv", "predicted.json"):
        assert (run / name).stat().st_size > 0, name
    meta = json.loads((run / "predicted.json").read_text())
    assert meta["models"] == list(SMALL["models"]) and meta["breakdown_model"] == SMALL["breakdown_model"]
    ops = pd.read_csv(run / "ops.csv")
    assert set(ops["set"]) == {"roofline", "breakdown"} and set(ops["model"]) <= set(SMALL["models"])

    def no_simulation(*a, **k):
        raise AssertionError("the report re-simulated although predict files exist")

    monkeypatch.setattr("daedalus.report.report.simulate_frames", no_simulation)
    text = write_report(run).read_text()
    assert "deepseek-v2-lite" in text and "llama-3.1-8b" in text
    (run / "ops.csv").unlink()
    assert frames.read_frames(run) is None  # an incomplete set is predicted again, not half-used


def test_unreadable_inputs_are_reported_not_fatal(tmp_path):
    run = make_run(tmp_path / "bad", files=("env", "measured"))
    (run / "validation_summary.csv").write_text("mode,family\nx,y\n")  # columns missing
    (run / "hardware_profile.yaml").write_text("name: [unclosed\n")
    text = write_report(run, **SMALL).read_text()
    assert "validation_summary.csv: missing column(s)" in text
    assert "hardware_profile.yaml" in text and "malformed" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH: chromium is not a pip package "
                    "(apt-get install chromium); the report itself is checked by the other tests")
def test_images_render_in_headless_chromium(full_report, tmp_path):
    _, path, text = full_report
    n_img = text.count("<img")
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", "--dump-dom",
           path.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    ok = re.search(r'data-images-ok="(\d+)"', out.stdout)
    total = re.search(r'data-images-total="(\d+)"', out.stdout)
    assert ok and total, "the load handler did not run before the DOM was dumped"
    assert int(total.group(1)) == n_img
    assert int(ok.group(1)) == n_img  # every image decoded: naturalWidth > 0


def test_cli_picks_newest_run_and_rejects_unknown(tmp_path, capsys):
    results = tmp_path / "results"
    make_run(results / "2025-01-01-a", files=("env",))
    newest = make_run(results / "2025-01-02-b", files=("env",))
    (results / "not-a-run").mkdir()
    os.utime(results / "2025-01-01-a", (1_000_000, 1_000_000))
    assert find_run(results, None) == newest
    assert find_run(results, "2025-01-01-a") == results / "2025-01-01-a"
    with pytest.raises(ConfigError, match=r"--run: no run 'not-a-run' in .*results/; .*runs: 2025-01-01-a, 2025-01-"):
        find_run(results, "not-a-run", flag="--run")
    assert main(["report", "--results", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("daedalus: error: --run-id: no run in")


def test_cli_report(tmp_path, capsys):
    results = tmp_path / "results"
    run = make_run(results / "r1", files=("env", "measured"))
    args = ["report", "--results", str(results), "--model", "deepseek-v2-lite", "--hardware", "host-cpu",
            "--breakdown-model", "deepseek-v2-lite", "--breakdown-hardware", "host-cpu"]
    (run / "report.html").write_text("the run's own report")
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(run / "custom_report" / "report.html")
    assert (run / "report.html").read_text() == "the run's own report"  # a chosen selection never overwrites it
    assert not (run / "predicted.csv").exists() and (run / "custom_report" / "predicted.csv").stat().st_size > 0
    assert "deepseek-v2-lite" in (run / "custom_report" / "report.html").read_text()
    assert (run / "custom_report" / "figures" / "kv_memory.png").stat().st_size > 0
    out = tmp_path / "elsewhere"
    assert main(args + ["--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    assert main(["report", "--results", str(results), "--run", "r2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"daedalus: error: --run-id: no run 'r2' in {results}/;")
    assert err.rstrip().endswith("r1")


def test_run_files_that_are_fifos_or_folders_are_reported_without_blocking(tmp_path):
    """A FIFO as measured.csv blocked the report forever (open() waits for a writer); a folder as a
    run file is named too. Both become problems in the report's own words."""
    import os
    import signal

    run = make_run(tmp_path / "odd", files=("measured", "env", "profile"))
    (run / "measured.csv").unlink()
    os.mkfifo(run / "measured.csv")
    (run / "env.json").unlink()
    (run / "env.json").mkdir()
    os.mkfifo(run / "validation_summary.csv")

    def hung(signum, frame):
        raise TimeoutError("a run file blocked the report")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        text = write_report(run, **SMALL).read_text()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert "measured.csv" in text and text.count("expected a regular file") >= 2


def test_a_hardware_file_given_by_path_keeps_its_figures(tmp_path):
    """`report --hardware my.yaml`: the profile was found again by its name only, which is no
    shipped profile, and its roofline was dropped without a word; a name too long to be a path
    (400 characters) raised a file-system error."""
    from pathlib import Path

    h100 = (Path(__file__).resolve().parents[1] / "hardware_profiles/h100-sxm.yaml").read_text()
    run = make_run(tmp_path / "run", files=("measured", "env"))
    files = []
    for name in ("my-accel", "h" * 400):
        path = tmp_path / f"{name[:10]}.yaml"
        path.write_text(h100.replace("name: h100-sxm", f"name: {name}", 1))
        files.append(str(path))
    write_report(run, models=("llama-3.1-8b",), hardware=files, breakdown_model="llama-3.1-8b",
                 breakdown_hardware=files[0], out_dir=tmp_path / "out")
    made = sorted(p.name for p in (tmp_path / "out" / "figures").glob("roofline_*.png"))
    assert "roofline_my-accel.png" in made and any(n.startswith("roofline_hhhh") for n in made)
