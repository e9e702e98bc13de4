"""Tables for people: default views fit 120 columns, --columns and --format choose what is printed,
one number formatter, variants on the command line, --version, the light commands stay pandas-free."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daedalus import log, output
from daedalus.cli import main
from simulators.hardware import builtin_profiles
from simulators.model_config import builtin_models

WIDTH = 120  # issue 12: a 120-column terminal


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def _no_columns_env(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.mark.parametrize("argv", [["hardware"], ["models"], ["hardware", "--provenance"],
                                  ["hardware", "--provenance", "--hardware", "h200"]])
def test_default_views_fit_120_columns(capsys, argv):
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    lines = out.rstrip("\n").split("\n")
    assert len(lines) > 3
    assert max(len(x) for x in lines) <= WIDTH, max(lines, key=len)


def test_default_views_name_every_row(capsys):
    """Shortening to fit never cuts the first column: every name is printed whole."""
    _, out, _ = run_cli(capsys, "models")
    assert all(name in out for name in builtin_models())
    _, out, _ = run_cli(capsys, "hardware")
    assert all(name in out for name in builtin_profiles())


def test_table_units_in_headers_and_values(capsys):
    """H200: 141 GB HBM3e at 4.8 TB/s (NVIDIA H200 datasheet, as the profile cites it): the table
    shows them in GB and GB/s with units in the header, csv keeps raw SI bytes."""
    _, out, _ = run_cli(capsys, "hardware", "--hardware", "h200", "--columns", "hardware,memory_bytes,"
                        "memory_bandwidth_bytes_per_s")
    head, row = out.split("-\n")[0], out.strip().split("\n")[-1]
    assert "(GB)" in head and "(GB/s)" in head
    assert row.split() == ["h200", "141", "4,800"]
    _, out, _ = run_cli(capsys, "hardware", "--hardware", "h200", "--format", "csv", "--columns",
                        "hardware,memory_bytes")
    rec = next(csv.DictReader(io.StringIO(out)))
    assert set(rec) == {"hardware", "memory_bytes"}
    assert float(rec["memory_bytes"]) == pytest.approx(141e9)


def test_columns_choose_table_and_json_fields(capsys):
    _, out, _ = run_cli(capsys, "models", "--columns", "model,kv_heads", "--format", "json")
    recs = json.loads(out)
    assert {tuple(r) for r in recs} == {("model", "kv_heads")}
    _, full, _ = run_cli(capsys, "models", "--format", "json")
    assert {"source", "aliases", "display_name", "hidden_size"} <= set(json.loads(full)[0])  # full data
    _, out, _ = run_cli(capsys, "models", "--columns", "model,attention")
    assert out.split("\n")[0].split() == ["model", "attention"]
    _, out, _ = run_cli(capsys, "hardware", "--columns", "all")
    assert "display name" in out and "tdp" in out


def test_unknown_column_is_one_line_exit_2(capsys):
    code, out, err = run_cli(capsys, "hardware", "--columns", "hardware,memroy_bytes")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--columns" in err and "memroy_bytes" in err and "memory_bytes" in err


def test_csv_of_records_is_complete_and_raw(capsys):
    _, out, _ = run_cli(capsys, "models", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["model"] for r in rows} == set(builtin_models())
    v3 = next(r for r in rows if r["model"] == "deepseek-v3")
    # DeepSeek-V3 MLA cache: (kv_lora_rank 512 + rope 64) x 61 layers x 2 bytes (V3 paper / config.json)
    assert float(v3["kv_bf16_bytes_per_token"]) == (512 + 64) * 61 * 2
    assert v3["kv_heads"] == ""  # MLA: no KV heads; missing is empty in csv, null in json


@pytest.mark.parametrize("v, text", [
    (1979.0, "1,979"), (1504, "1,504"), (989.4, "989"), (19.5, "19.5"), (68.72, "68.7"), (2.0, "2"),
    (0.0412, "0.0412"), (0.001, "0.001"), (2.5e-5, "2.50e-05"), (3.2e15, "3.20e+15"), (0, "0"), (0.0, "0"),
    (None, "-"), (float("nan"), "-"), (True, "yes"), (-1234.5, "-1,234"), (10**16, "1.00e+16"), ("fp8", "fp8"),
])
def test_fmt_number_examples(v, text):
    assert output.fmt_number(v) == text


@given(st.floats(min_value=1e-3, max_value=1e15 * 0.999))
def test_fmt_number_no_exponent_and_three_significant_figures(v):
    text = output.fmt_number(v)
    assert "e" not in text
    back = float(text.replace(",", ""))
    assert math.isclose(back, v, rel_tol=5e-3 + 1e-12)  # 3 significant figures: within half a unit of the 3rd


@given(st.integers(min_value=-(10**14), max_value=10**14))
def test_fmt_number_integers_exact_with_separators(n):
    text = output.fmt_number(n)
    assert int(text.replace(",", "")) == n
    assert all(len(g) == 3 for g in text.lstrip("-").split(",")[1:])


def test_dataframe_and_records_render_alike():
    pd = pytest.importorskip("pandas")
    recs = [{"hardware": "x", "memory_bytes": 8e10, "tdp_w": None}, {"hardware": "y", "memory_bytes": 1.41e11,
                                                                     "tdp_w": 700.0}]
    assert output.render_table(pd.DataFrame(recs)) == output.render_table(recs)
    assert output.as_records(pd.DataFrame(recs))[0]["tdp_w"] is None  # NaN -> None


def test_plain_renderer_without_tabulate(monkeypatch):
    """The GPU image may lack tabulate: the fallback still fits, aligns numbers right and keeps units."""
    from daedalus.commands.hardware import TABLE_COLUMNS, hardware_records
    from simulators.hardware import load_profile

    recs = hardware_records([load_profile(p) for p in builtin_profiles().values()])
    monkeypatch.setitem(sys.modules, "tabulate", None)
    text = output.render_table(recs, TABLE_COLUMNS, width=WIDTH)
    lines = text.split("\n")
    assert max(map(len, lines)) <= WIDTH
    assert "(TFLOP/s)" in text and all(h in text for h in builtin_profiles())
    h200 = next(x for x in lines if x.startswith("h200 "))
    assert "4,800" in h200 and "141" in h200


def test_long_text_is_shortened_to_fit():
    recs = [{"name": "a", "source": "x" * 300, "value": 1.0}]
    text = output.render_table(recs, width=80)
    assert max(map(len, text.split("\n"))) <= 80 and "…" in text


@pytest.mark.parametrize("spec, expected_bytes", [
    # Llama-3.1-8B: 32 layers, head_dim 128 (HF config.json); K and V x kv_heads x head_dim x 2 bytes x layers
    ("llama-3.1-8b:kv_heads=1", 2 * 1 * 128 * 2 * 32),
    ("llama-3.1-8b:kv_heads=1,layers=16", 2 * 1 * 128 * 2 * 16),
])
def test_variant_on_the_command_line(capsys, spec, expected_bytes):
    code, out, _ = run_cli(capsys, "models", "--model", spec, "--format", "json")
    assert code == 0
    (rec,) = json.loads(out)
    assert rec["model"] == spec and rec["kv_bf16_bytes_per_token"] == expected_bytes


@pytest.mark.parametrize("spec, needle", [
    ("llama-3.1-8b:foo=1", "'foo'"), ("llama-3.1-8b:kv_heads=3", "divide"), ("llama-3.1-8b:", "field=value"),
    ("llama-3.1-8b:kv_heads=x", "integer"), ("nope:kv_heads=1", "unknown model"),
])
def test_variant_errors_are_one_line(capsys, spec, needle):
    for cmd in ("models", "memory"):
        code, out, err = run_cli(capsys, cmd, "--model", spec)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith("daedalus: error:") and needle in err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("daedalus ")


@pytest.mark.parametrize("command", ["hardware", "models", "memory"])
def test_light_commands_do_not_import_pandas(command):
    """Issue 8 §4 / issue 12: `hardware`, `models` and `memory` start in a fraction of a second; pandas
    alone costs ~0.4-0.8 s."""
    code = (f"import sys; from daedalus.cli import main; main([{command!r}]); "
            "sys.stderr.write(' '.join(m for m in ('pandas', 'matplotlib', 'scipy', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""


def test_done_line_and_levels(tmp_path):
    import logging

    line = log.done_line("64 benchmark cases", 192.0, 2, tmp_path)
    assert line == f"done: 64 benchmark cases in 3 min 12 s; 2 flagged noisy; files in {tmp_path}/"
    assert log.done_line("plan", 0.4) == "done: plan in 0.4 s"
    assert "none flagged noisy" in log.done_line("x", 1, 0)
    stream = io.StringIO()
    logger = log.setup(-1, stream)  # -q: no progress; warnings and the final line stay
    log.get("daedalus.commands.bench").info("progress")
    log.get(__name__).warning("careful")
    log.done("x", 1.0)
    assert stream.getvalue() == "careful\ndone: x in 1.0 s\n" and logger.level == log.DONE
    stream = io.StringIO()
    log.setup(-2, stream)  # -qq: errors only
    log.done("x", 1.0)
    log.get("y").warning("careful")
    log.get("y").error("broken")
    assert stream.getvalue() == "broken\n" and logging.WARNING > log.DONE > logging.INFO
    log.setup(1, stream)
    log.get("x").debug("detail")
    assert "DEBUG daedalus.x: detail" in stream.getvalue()
    log.setup(0, sys.stderr)
