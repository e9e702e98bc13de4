"""Issue 12, one command-line surface: the same flag names in every command (`--run-id`, `--resume`
a switch, `--results`, `--full`), the older spellings still accepted but hidden, enums refused at
parse time, `--format` / `--columns` wherever output is a table, default views <= 120 columns
(the measured views rendered from the stored runs under results/reference/, nothing measured),
-v / -q and the final `done:` line, the torch-missing hint."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daedalus import output, views
from daedalus.cli import build_parser, main

WIDTH = 120
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
RUN = "amd-epyc-2vcpu-avx512"


@pytest.fixture(autouse=True)
def _no_columns_env(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def results(tmp_path):
    """A copy of one stored run (validate writes into its run folder)."""
    shutil.copytree(REFERENCE / RUN, tmp_path / RUN)
    return tmp_path


def _widest(text: str) -> int:
    return max(len(x) for x in text.rstrip("\n").split("\n"))


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v) if v not in ("", None) else None
            except ValueError:
                pass
    return rows


# ---- widths of the default views -----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["plan", "--hardware", "h200,mi300x,host-cpu"],
    ["simulate", "--phase", "prefill,decode", "--batch", "1,64", "--model", "deepseek-v2-lite,llama-3.1-405b"],
    ["simulate", "--per-op", "--model", "deepseek-v2-lite", "--hardware", "mi300x", "--context", "128k"],
    ["memory"],
    ["memory", "--hardware", "h200", "--devices", "8", "--tp", "8"],
    ["memory", "--devices", "8", "--tp", "8"],
])
def test_default_views_fit_120_columns(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") > 3
    assert _widest(out) <= WIDTH, max(out.split("\n"), key=len)


def test_validate_view_fits_and_ends_with_done_line(capsys, results):
    assert main(["validate", "--results", str(results), "--run-id", RUN]) == 0
    out, err = capsys.readouterr()
    assert _widest(out) <= WIDTH and "calibrated" in out
    last = err.strip().split("\n")[-1]
    assert last.startswith("done: validated ") and "flagged noisy" in last and f"files in {results / RUN}/" in last


def test_bench_view_from_a_stored_run():
    """The bench table of a stored run: <= 120 columns, and GEMM / read rows leave batch, query and
    context blank (not 0) while their shape column names the GEMM or the working set."""
    measured, roof = _read(REFERENCE / RUN / "measured.csv"), _read(REFERENCE / RUN / "roofline.csv")
    rows = views.blank_not_applicable(views.bench_rows(measured, roof))
    assert len(rows) == sum(r["status"] == "ok" for r in measured)
    text = output.render_table(rows, [c for c in views.BENCH_COLUMNS if c in rows[0]], width=WIDTH)
    assert _widest(text) <= WIDTH
    gemm = [r for r in rows if r["kernel"] == "gemm"]
    assert gemm and all(r["batch"] is output.NOT_APPLICABLE and r["context"] is output.NOT_APPLICABLE for r in gemm)
    assert any(r["shape"] == "512x512x512" for r in gemm)
    attn = next(r for r in rows if r["kernel"] == "mla_decode_absorbed")
    assert attn["batch"] >= 1 and attn["shape"] == ""
    only = output.render_table([r for r in rows if r["kernel"] in ("gemm", "read")], ["kernel", "batch", "context"])
    assert all(line.split() in (["gemm"], ["read"]) for line in only.split("\n")[2:])  # blank, not "0" or "-"


def test_calibrate_view_is_one_row_per_kernel_and_dtype():
    measured = _read(REFERENCE / RUN / "measured.csv")
    ref = [r for r in measured if r["kernel"] in ("gemm", "read", "dispatch")]
    summary = views.calibrate_summary(ref)
    keys = {(r["kernel"], r["dtype"]) for r in ref}
    assert len(summary) == len(keys) < len(ref)
    fp32 = next(s for s in summary if s["kernel"] == "gemm" and s["dtype"] == "fp32")
    assert fp32["cases"] == sum(1 for r in ref if r["kernel"] == "gemm" and r["dtype"] == "fp32")
    assert fp32["best_flop_per_s"] == max(r["achieved_flop_per_s"] for r in ref
                                          if r["kernel"] == "gemm" and r["dtype"] == "fp32")
    read = next(s for s in summary if s["kernel"] == "read")
    assert read["best_bytes_per_s"] > 0 and read["best_flop_per_s"] is output.NOT_APPLICABLE
    text = output.render_table(summary, views.CALIBRATE_COLUMNS, width=WIDTH)
    assert _widest(text) <= WIDTH and " 0 " not in text


# ---- one flag vocabulary -------------------------------------------------------------------------

def _parse(argv: list[str]):
    return build_parser([argv[0]]).parse_args(argv)


@pytest.mark.parametrize("command", ["report", "validate"])
def test_run_id_and_hidden_run_alias(command, capsys, tmp_path):
    assert _parse([command, "--run", "x"]).run_id == _parse([command, "--run-id", "x"]).run_id == "x"
    with pytest.raises(SystemExit):
        _parse([command, "--help"])
    help_text = capsys.readouterr().out
    assert "--run-id ID" in help_text and "--run " not in help_text and "--run," not in help_text
    for flag in ("--run", "--run-id"):  # both spellings, one message naming the current one
        assert main([command, "--results", str(tmp_path), flag, "nope"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error: --run-id: no run" in err


def test_resume_is_a_switch_everywhere_and_old_forms_still_work():
    for command in ("bench", "run"):
        a = _parse([command, "--resume"])
        assert a.resume is True and a.run_id is None
    old = build_parser(["bench"]).parse_args(__import__("daedalus.args", fromlist=["x"]).legacy_argv(
        ["bench", "--resume", "r1", "--quick"]))
    assert old.resume is True and old.run_id == "r1" and old.quick
    assert _parse(["bench", "--comm", "--full-comm"]).full is True  # older spelling of --full
    assert _parse(["bench", "--comm", "--full"]).full is True


def test_old_resume_value_reaches_the_run_lookup(capsys, tmp_path):
    assert main(["bench", "--quick", "--resume", "nope", "--results", str(tmp_path)]) == 2
    assert "--resume: no run 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["simulate", "--mode", "speed-of-light"], ["plan", "--overlap", "twomicrobatch"], ["plan", "--mode", "sol"],
    ["memory", "--kv-dtype", "fp9"], ["simulate", "--mla-mode", "fused"], ["bench", "--device", "gpu"],
    ["run", "--device", "tpu"], ["calibrate", "--dtype", "int3"], ["report", "--format", "html"],
    ["run", "--format", "xml"], ["plan", "--dispatch-dtype", "fp9"],
])
def test_enum_typos_are_refused_at_parse_time(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err and argv[-1] in err


@pytest.mark.parametrize("command", ["bench", "calibrate", "validate", "run", "report", "plan", "simulate", "memory",
                                     "hardware", "models"])
def test_format_and_columns_wherever_output_is_a_table(command):
    a = _parse([command, "--format", "json", "--columns", "a,b"])
    assert a.format == "json" and a.columns == ["a", "b"]


@pytest.mark.parametrize("command", ["bench", "calibrate", "run", "report", "validate", "figures", "claims"])
def test_results_everywhere_a_results_root_is_used(command):
    assert _parse([command, "--results", "elsewhere"]).results == "elsewhere"


def test_verbosity_before_and_after_the_command():
    assert _parse(["validate", "-q", "-q"]).quiet == 2
    a = build_parser(["validate"]).parse_args(["-v", "validate"])
    assert a.verbose == 1


def test_quiet_keeps_the_done_line_and_qq_drops_it(capsys, results):
    assert main(["-q", "validate", "--results", str(results), "--run-id", RUN]) == 0
    err = capsys.readouterr().err
    assert err.strip().split("\n")[-1].startswith("done: validated")
    assert main(["validate", "-qq", "--results", str(results), "--run-id", RUN, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("mode,")


def test_report_headline_rows_come_from_the_validation_summary():
    from daedalus.commands.report import headline

    rows = headline(REFERENCE / RUN)
    stored = [r for r in _read(REFERENCE / RUN / "validation_summary.csv")
              if r["family"] == "all" and r.get("subset", "all") == "all"]
    assert [r["mode"] for r in rows] == [r["mode"] for r in stored] and rows
    assert all(r["mdape_pct"] == s["mdape_pct"] for r, s in zip(rows, stored))
    assert headline(Path("/nonexistent")) == []


def test_figures_end_with_done_line(capsys, tmp_path):
    assert main(["figures", "--kind", "kv-memory", "--model", "deepseek-v2-lite", "--out", str(tmp_path),
                 "--dpi", "40"]) == 0
    last = capsys.readouterr().err.strip().split("\n")[-1]
    assert last.startswith("done: 1 figures (kv-memory) in ") and f"files in {tmp_path}/" in last


def test_missing_torch_names_the_cpu_wheel(tmp_path):
    """torch absent (sys.modules['torch'] = None makes `import torch` fail): one line, exit 2, the pinned
    CPU wheel and not a bare `pip install torch`."""
    code = ("import sys; sys.modules['torch'] = None; from daedalus.cli import main; "
            f"raise SystemExit(main(['bench', '--quick', '--results', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install torch==2.13.0" in proc.stderr and "download.pytorch.org/whl/cpu" in proc.stderr


def test_top_level_help_imports_no_command_module():
    code = ("import sys; from daedalus.cli import main; main(['--help']); "
            "sys.stderr.write(' '.join(m for m in sys.modules if m.startswith('daedalus.commands.') or m == 'pandas'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    assert all(name in proc.stdout for name in ("memory", "plan", "bench", "figures", "claims"))


@pytest.mark.parametrize("command", ["models", "hardware", "memory", "simulate", "validate", "report", "plan",
                                     "figures", "claims", "bench", "calibrate", "run"])
def test_every_command_help_names_verbosity(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "-q, --quiet" in out and "done:" in out
