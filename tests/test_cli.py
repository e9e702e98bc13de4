"""The CLI: every shipped model and profile answers; bad input gives one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daedalus.cli import main
from simulators.hardware import builtin_profiles
from simulators.provenance import STATUSES
from simulators.model_config import builtin_models


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_and_hardware_list_everything(capsys):
    code, out, _ = run_cli(capsys, "models", "--format", "json")
    assert code == 0
    names = {r["model"] for r in json.loads(out)}
    assert names == set(builtin_models())
    code, out, _ = run_cli(capsys, "hardware", "--format", "json")
    assert {r["hardware"] for r in json.loads(out)} == set(builtin_profiles())
    code, out, _ = run_cli(capsys, "hardware", "--provenance", "--format", "json")
    rows = json.loads(out)
    assert rows and all(r["source"] and r["status"] in STATUSES for r in rows)


def test_memory_json_example(capsys):
    code, out, _ = run_cli(capsys, "memory", "--model", "deepseek-v3", "--model", "llama-3.1-405b", "--context",
                           "4096,131072", "--batch", "1", "--kv-dtype", "bf16", "--format", "json")
    assert code == 0
    recs = json.loads(out)
    assert len(recs) == 4
    required = {"model", "context", "batch", "kv_dtype", "kv_bytes_per_token", "kv_bytes", "weight_bytes",
                "params_total", "params_active"}
    for r in recs:
        assert required <= set(r)
        assert r["kv_bytes"] == pytest.approx(r["kv_bytes_per_token"] * r["context"] * r["batch"])
    v3 = [r for r in recs if r["model"] == "deepseek-v3"]
    assert v3[0]["kv_bytes_per_token"] == pytest.approx(70272)


def test_simulate_json_example(capsys):
    code, out, _ = run_cli(capsys, "simulate", "--model", "deepseek-v3", "--hardware", "h100-sxm", "--hardware",
                           "ascend-910c", "--phase", "decode", "--batch", "1,64", "--context", "4096",
                           "--format", "json")
    assert code == 0
    recs = json.loads(out)
    assert len(recs) == 4
    for r in recs:
        assert {"flop", "bytes", "time_s", "bound", "ops"} <= set(r)
        assert r["bound"] in ("compute", "memory")
        assert sum(o["flop"] for o in r["ops"]) == pytest.approx(r["flop"])
        assert sum(o["time_s"] for o in r["ops"]) == pytest.approx(r["time_s"])
    # the faster memory of the H100 makes bandwidth-bound decode faster than on the 910C per device
    by = {(r["hardware"], r["batch"]): r for r in recs}
    assert by[("h100-sxm", 1)]["bound"] == "memory"


@pytest.mark.parametrize("model", sorted(builtin_models()))
def test_every_model_simulates_on_every_profile(capsys, model):
    args = ["simulate", "--model", model, "--phase", "prefill,decode", "--batch", "1,8", "--context", "1k,32k",
            "--format", "csv"]
    for hw in builtin_profiles():
        args += ["--hardware", hw]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1 + 2 * 2 * 2 * len(builtin_profiles())
    code, out, err = run_cli(capsys, "memory", "--model", model, "--format", "table")
    assert code == 0 and model in out


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_table_and_csv_formats(capsys, fmt):
    code, out, _ = run_cli(capsys, "simulate", "--per-op", "--format", fmt)
    assert code == 0 and "moe_routed" in out


def test_hf_config_json_path(tmp_path, capsys):
    cfg = {"_name_or_path": "org/tiny-moe", "hidden_size": 512, "num_hidden_layers": 4, "num_attention_heads": 8,
           "num_key_value_heads": 2, "vocab_size": 32000, "intermediate_size": 1024, "num_local_experts": 8,
           "num_experts_per_tok": 2, "torch_dtype": "bfloat16"}
    d = tmp_path / "tiny-moe"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    code, out, err = run_cli(capsys, "memory", "--model", str(d / "config.json"), "--format", "json")
    assert code == 0, err
    rec = json.loads(out)[0]
    assert rec["model"] == "tiny-moe"
    assert rec["kv_bytes_per_token"] == 2 * 2 * 64 * 2 * 4  # K,V x kv heads x head dim x bf16 x layers


BAD_HW = {
    "missing field": ("name: x\npeak_flop_per_s: {bf16: {value: 1.0e+12, status: datasheet, source: s}}\n"
                      "memory_bytes: {value: 1.0e+9, status: datasheet, source: s}\n", "memory_bandwidth_bytes_per_s"),
    "zero bandwidth": ("name: x\npeak_flop_per_s: {bf16: {value: 1.0e+12, status: datasheet, source: s}}\n"
                       "memory_bytes: {value: 1.0e+9, status: datasheet, source: s}\n"
                       "memory_bandwidth_bytes_per_s: {value: 0, status: datasheet, source: s}\n",
                       "memory_bandwidth_bytes_per_s"),
    "unknown dtype": ("name: x\npeak_flop_per_s: {bf17: {value: 1.0e+12, status: datasheet, source: s}}\n"
                      "memory_bytes: {value: 1.0e+9, status: datasheet, source: s}\n"
                      "memory_bandwidth_bytes_per_s: {value: 1.0e+9, status: datasheet, source: s}\n", "bf17"),
    "wrong type": ("name: x\npeak_flop_per_s: {bf16: {value: fast, status: datasheet, source: s}}\n"
                   "memory_bytes: {value: 1.0e+9, status: datasheet, source: s}\n"
                   "memory_bandwidth_bytes_per_s: {value: 1.0e+9, status: datasheet, source: s}\n", "bf16"),
    "bad status": ("name: x\npeak_flop_per_s: {bf16: {value: 1.0e+12, status: guess, source: s}}\n"
                   "memory_bytes: {value: 1.0e+9, status: datasheet, source: s}\n"
                   "memory_bandwidth_bytes_per_s: {value: 1.0e+9, status: datasheet, source: s}\n", "status"),
    "malformed yaml": ("name: [x\n", "malformed"),
}


@pytest.mark.parametrize("case", sorted(BAD_HW))
def test_bad_hardware_file_is_one_line_exit_2(tmp_path, capsys, case):
    text, needle = BAD_HW[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = run_cli(capsys, "simulate", "--hardware", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert str(path) in err and needle in err


BAD_MODEL = {
    "missing field": ({"hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 8},
                      "num_hidden_layers"),
    "wrong type": ({"hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10,
                    "intermediate_size": 8}, "hidden_size"),
    "negative": ({"hidden_size": 64, "num_hidden_layers": -2, "num_attention_heads": 4, "vocab_size": 10,
                  "intermediate_size": 8}, "num_hidden_layers"),
    "unknown dtype": ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10,
                       "intermediate_size": 8, "torch_dtype": "float13"}, "torch_dtype"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODEL))
def test_bad_model_file_is_one_line_exit_2(tmp_path, capsys, case):
    cfg, needle = BAD_MODEL[case]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    code, _, err = run_cli(capsys, "memory", "--model", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(path) in err and needle in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["simulate", "--model", "gpt-5"], "valid names"),
        (["simulate", "--hardware", "h300"], "valid names"),
        (["simulate", "--context", "lots"], "--context"),
        (["simulate", "--phase", "training"], "--phase"),
        (["memory", "--kv-dtype", "fp7"], "dtype"),
        (["simulate", "--mla-mode", "fused"], "--mla-mode"),
        (["simulate", "--model", "missing/file.yaml"], "not found"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(capsys, argv, needle):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_no_traceback_from_the_console_script(tmp_path):
    """The real entry point: exit 2 and a single line, never a Python traceback."""
    proc = subprocess.run([sys.executable, "-m", "daedalus", "memory", "--model", "nope"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
