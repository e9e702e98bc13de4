"""Hostile input, one class at a time (issue 11): each case must end in exactly one line on stderr
naming the file / flag / field and the right exit status (2 bad input, 1 environment, 130
interrupted), never a traceback, a hang or a silently wrong number. The API refuses what the flag
refuses, in the field's name."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daedalus import cli
from daedalus.cli import main
from simulators.errors import ConfigError
from simulators.hardware import resolve_profile
from simulators.model_config import resolve_model
from simulators.predict import memory_table, simulate
from simulators.variants import resolve_variant

ROOT = Path(__file__).resolve().parents[1]
LLAMA = (ROOT / "simulators/model_configs/llama-3.1-8b.yaml").read_text()
V2LITE = (ROOT / "simulators/model_configs/deepseek-v2-lite.yaml").read_text()
H100 = (ROOT / "hardware_profiles/h100-sxm.yaml").read_text()


def one_line(capsys, argv, code=2) -> str:
    got = main(list(argv))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1, (got, err)
    assert "Traceback" not in err
    return lines[0]


def with_field(text: str, field: str, value: str) -> str:
    out, n = re.subn(rf"(?m)^(\s+{field}): .*$", rf"\1: {value}", text, count=1)
    assert n == 1, field
    return out


# ---- loaders -------------------------------------------------------------------------------------

@pytest.mark.parametrize("base,field,value,needle", [
    (LLAMA, "num_hidden_layers", "9223372036854775808", "below 2**63"),  # would wrap / build a 2**63-entry tuple
    (LLAMA, "num_hidden_layers", "200000", "<= 100000"),
    (LLAMA, "hidden_size", "4096.0", "expected an integer"),
    (LLAMA, "hidden_size", '"4096"', "expected an integer"),
    (LLAMA, "hidden_size", "{a: 1}", "expected an integer"),
    (LLAMA, "num_key_value_heads", "[8]", "expected an integer"),
    (LLAMA, "head_dim", ".inf", "expected an integer"),
    (LLAMA, "vocab_size", "3000000000", "<= 2147483647"),
    (V2LITE, "routed_scaling_factor", '"big"', "expected a number"),  # router fields are typed too
    (V2LITE, "routed_scaling_factor", ".nan", "finite"),
    (V2LITE, "routed_scaling_factor", "-2.5", "positive"),
    (V2LITE, "norm_topk_prob", "3", "true or false"),
    (V2LITE, "scoring_func", "{a: 1}", "expected a string"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_model_fields_of_the_wrong_type_or_range(tmp_path, capsys, base, field, value, needle):
    path = tmp_path / "m.yaml"
    path.write_text(with_field(base, field, value))
    line = one_line(capsys, ["models", "--model", str(path)])
    assert str(path) in line and f"'{field}'" in line and needle in line


def test_unreadable_model_inputs(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(LLAMA.encode().replace(b"Llama-3.1-8B", b"Llama\xe9"))
    assert "not UTF-8" in one_line(capsys, ["models", "--model", str(bad)])
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 500 + "]" * 500 + "\n")
    assert "nesting" in one_line(capsys, ["models", "--model", str(deep)])
    dup = tmp_path / "dup.yaml"
    dup.write_text(LLAMA.replace("  hidden_size: 4096\n", "  hidden_size: 4096\n  hidden_size: 8192\n"))
    assert "duplicate key 'hidden_size'" in one_line(capsys, ["models", "--model", str(dup)])
    assert "--model" in one_line(capsys, ["models", "--model", ""])
    assert "directory" in one_line(capsys, ["models", "--model", str(tmp_path)])


def test_a_fifo_as_model_path_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    assert "FIFO" in one_line(capsys, ["models", "--model", str(fifo)])
    assert time.monotonic() - t0 < 5


def test_inf_and_huge_sourced_values_in_a_hardware_file(tmp_path, capsys):
    for value in (".inf", "9223372036854775808", "-80.0e+9"):
        path = tmp_path / "hw.yaml"
        path.write_text(H100.replace("memory_bytes: {value: 80.0e+9", f"memory_bytes: {{value: {value}", 1))
        line = one_line(capsys, ["simulate", "--hardware", str(path)])
        assert str(path) in line and "memory_bytes" in line


def test_zero_efficiency_is_refused_not_a_nan_time(tmp_path, capsys):
    path = tmp_path / "hw.yaml"
    path.write_text(H100.replace("gemm_bandwidth: {value: 2298.5e+9", "gemm_bandwidth: {value: 0", 1))
    assert "gemm_bandwidth" in one_line(capsys, ["simulate", "--hardware", str(path)])


@pytest.mark.parametrize("value", ["8.5", "0", "9223372036854775808"])
def test_a_device_count_in_a_hardware_file_is_a_whole_number(tmp_path, capsys, value):
    path = tmp_path / "hw.yaml"  # 8.5 was truncated to an 8-device domain without a word
    path.write_text(H100.replace("domain_devices: {value: 8,", f"domain_devices: {{value: {value},", 1))
    line = one_line(capsys, ["plan", "--model", "llama-3.1-8b", "--hardware", str(path)])
    assert str(path) in line and "domain_devices" in line


# ---- numbers: the flag and the API field refuse alike --------------------------------------------

@pytest.mark.parametrize("flag,value,api", [
    ("--decode-tokens", "-1", dict(decode_tokens=-1)),
    ("--decode-tokens", "0", dict(decode_tokens=0)),
    ("--routing-skew", "nan", dict(routing_skew=math.nan)),
    ("--routing-skew", "-0.5", dict(routing_skew=-0.5)),
    ("--routing-skew", "inf", dict(routing_skew=math.inf)),
    ("--batch", "1.5", dict(batches=[1.5])),
    ("--batch", "0", dict(batches=[0])),
    ("--context", "nan", dict(contexts=[math.nan])),
    ("--batch", "9223372036854775808", dict(batches=[2**63])),
])
def test_flag_and_api_refuse_the_same_values(capsys, flag, value, api):
    line = one_line(capsys, ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", flag, value])
    assert flag in line
    field = next(iter(api)).rstrip("es") if flag in ("--batch", "--context") else next(iter(api))
    with pytest.raises(ConfigError, match=rf"^{field}"):
        simulate([resolve_model("llama-3.1-8b")], [resolve_profile("h100-sxm")], **api)


@pytest.mark.parametrize("argv", [["bench", "--budget-s", "nan"], ["bench", "--budget-s", "-1"],
                                  ["bench", "--max-cases", "0"], ["plan", "--max-devices", "1.5"],
                                  ["plan", "--request-rate", "inf"], ["memory", "--devices", "0"],
                                  ["plan", "--decode-layout", "tp=1,tp=2"],  # was: the last tp silently won
                                  ["figures", "--kind", ""]])  # was: every kind, unlike `--batch ''`
def test_bad_numeric_flags(capsys, argv):
    assert argv[1] in one_line(capsys, argv)


def test_huge_axes_are_refused_never_wrapped():
    m, h = resolve_model("llama-3.1-8b"), resolve_profile("h100-sxm")
    with pytest.raises(ConfigError, match="batch"):
        simulate([m], [h], batches=[2**62])
    with pytest.raises(ConfigError, match="exceeds 2\\*\\*53"):
        simulate([m], [h], phases=["prefill"], batches=[2**30], contexts=[2**30])
    with pytest.raises(ConfigError, match="^tp"):
        memory_table([m], devices=8, tp=1.5)


@pytest.mark.parametrize("load", [math.inf, math.nan, -1.0, "a", True])
def test_a_measured_routing_histogram_is_checked_load_by_load(load):
    """PlanOptions(routing='histogram'): one inf load made every expert share NaN (a plan with NaN
    times), a string raised a bare ValueError."""
    from simulators.plan import plan
    from simulators.sizing import PlanOptions, Workload

    opt = PlanOptions(max_devices=8, routing="histogram", routing_histogram=(1.0,) * 10 + (load,) + (1.0,) * 53)
    with pytest.raises(ConfigError, match=r"^routing histogram\[10\]"):
        plan(resolve_model("deepseek-v2-lite"), [resolve_profile("h100-sxm")], Workload(input_len=1024, output_len=128),
             opt)


@pytest.mark.parametrize("spec,needle", [
    ("llama-3.1-8b:layers=0", ">= 1"), ("llama-3.1-8b:hidden=0", ">= 1"), ("llama-3.1-8b:kv_heads=3", "divide"),
    ("deepseek-v3:layers=4", "MoE layers"), ("deepseek-v3:num_experts_per_tok=300", "num_experts_per_tok"),
    ("deepseek-v3:v_head_dim=0", "MLA"), ("deepseek-v4-flash:layers=50", "per layer"),
    ("llama-3.1-8b:layers=²", "non-negative integer"), ("llama-3.1-8b:layers=1e3", "non-negative integer"),
])
def test_variants_are_checked_like_model_files(spec, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        resolve_variant(spec)


# ---- names as paths, markup and cells ------------------------------------------------------------

@pytest.mark.parametrize("run_id", ["../../x", "/tmp/x", "..", "a/b", ".hidden", "-x"])
def test_run_ids_are_one_path_component_also_for_comm(tmp_path, capsys, run_id):
    line = one_line(capsys, ["bench", "--comm", "--results", str(tmp_path), "--run-id", run_id])
    assert "--run-id" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["bench"], ["bench", "--comm"], ["bench", "--resume"], ["calibrate"], ["run"],
                                  ["report"], ["validate"], ["figures", "--kind", "pred-vs-measured"]])
def test_an_empty_run_id_is_refused_not_the_newest_or_a_new_run(tmp_path, capsys, argv):
    """`--run-id "$RUN"` with RUN unset: was a fresh timestamped sweep (bench, calibrate, run) or the
    newest run (report, validate, figures); a bare `figures --run-id` still means the newest run."""
    line = one_line(capsys, [*argv, "--results", str(tmp_path), "--run-id", ""])
    assert "--run-id" in line and list(tmp_path.iterdir()) == []


def test_hostile_hardware_names_stay_in_their_folder_and_render(tmp_path, capsys):
    for i, name in enumerate(["h100/../../evil", r"$\frac{1}{$", "=cmd|' /C calc'!A0"]):
        path = tmp_path / f"hw{i}.yaml"
        path.write_text(H100.replace("name: h100-sxm", f"name: {json.dumps(name)}", 1))  # JSON string = YAML
        out = tmp_path / f"out{i}"
        assert main(["plan", "--model", "llama-3.1-8b", "--hardware", str(path), "--plot", str(out / "p.png"),
                     "--save", str(out / "save"), "--format", "csv"]) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out
        assert main(["figures", "--out", str(out / "figs"), "--hardware", str(path), "--model", "llama-3.1-8b",
                     "--kind", "roofline"]) == 0, capsys.readouterr().err
        capsys.readouterr()
        made = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != tmp_path]
        assert all(p.relative_to(tmp_path).parts[0].startswith("out") for p in made)  # nothing outside
        assert not [p for p in tmp_path.parent.glob("*evil*")]
        assert (out / "p.png").stat().st_size > 0 and list((out / "figs").glob("roofline_*.png"))
        if name.startswith("="):
            assert "'=cmd" in printed and "\n=cmd" not in printed and ",=cmd" not in printed
            assert ",=cmd" not in (out / "save" / "plan.csv").read_text()


# ---- damaged run folders -------------------------------------------------------------------------

REFERENCE_RUN = ROOT / "results/reference/amd-epyc-2vcpu-avx512"


def test_a_fifo_in_a_run_folder_is_refused_without_blocking(tmp_path, capsys):
    import shutil

    shutil.copytree(REFERENCE_RUN, tmp_path / "r")
    (tmp_path / "r" / "measured.csv").unlink()
    os.mkfifo(tmp_path / "r" / "measured.csv")  # validate blocked here forever
    t0 = time.monotonic()
    line = one_line(capsys, ["validate", "--results", str(tmp_path), "--run-id", "r"])
    assert "measured.csv" in line and "regular file" in line and time.monotonic() - t0 < 30


def test_non_finite_measured_times_are_left_out_by_name_never_a_traceback(tmp_path, capsys):
    """One `median_s` of inf crashed the fit (non-finite residuals); every one NaN raised a KeyError."""
    import shutil

    import pandas as pd

    run = tmp_path / "r"
    shutil.copytree(REFERENCE_RUN, run)
    measured = pd.read_csv(run / "measured.csv")
    first = measured.index[measured["status"] == "ok"][0]
    measured.loc[first, "median_s"] = math.inf
    measured.to_csv(run / "measured.csv", index=False)
    assert main(["validate", "--results", str(tmp_path), "--run-id", "r", "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert f"{measured.loc[first, 'case_id']}: left out (median_s inf" in err and "Traceback" not in err
    assert pd.read_csv(run / "validation_cases.csv")["error_pct"].map(math.isfinite).all()
    measured["median_s"] = math.nan
    measured.to_csv(run / "measured.csv", index=False)
    assert "no finished case with a positive median_s" in one_line(
        capsys, ["validate", "--results", str(tmp_path), "--run-id", "r"])


def test_a_name_too_long_to_be_a_path_is_an_unknown_name(capsys):
    for flag in ("--model", "--hardware"):
        assert "unknown" in one_line(capsys, ["simulate", flag, "x" * 400])


# ---- file-system errors and signals at the CLI boundary ------------------------------------------

def test_a_file_where_a_folder_is_expected(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert str(f) in one_line(capsys, ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm",
                                       "--save", str(f / "sub")])


def test_a_name_too_long(tmp_path, capsys):
    line = one_line(capsys, ["memory", "--model", "llama-3.1-8b", "--plot", str(tmp_path / ("a" * 300 + ".png"))])
    assert "too long" in line


@pytest.mark.parametrize("options,reason", [("size=64k", "No space left"), ("ro,size=64k", "Read-only")])
def test_a_full_or_read_only_disk_names_the_file_and_leaves_no_temporary_file(mount_tmpfs, capsys, options,
                                                                               reason):
    """Every writer, on a real tmpfs: one line naming the file that could not be written (a full disk
    used to say only 'writing output'), exit 1, no half-written or temporary file left behind."""
    disk = mount_tmpfs(options)
    if "ro" not in options:
        (disk / "fill").write_bytes(b"\0" * 64 * 1024)
    plan = ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"]
    for argv, path in [([*plan, "--save", str(disk / "save")], disk / "save"),
                       ([*plan, "--plot", str(disk / "p.png")], disk / "p.png"),
                       (["figures", "--out", str(disk / "figs"), "--model", "llama-3.1-8b", "--hardware", "h100-sxm",
                         "--kind", "roofline"], disk / "figs"),
                       (["claims", "--results", str(disk)], disk / "claims.csv"),
                       (["bench", "--comm", "--results", str(disk), "--run-id", "c1"], disk / "c1")]:
        line = one_line(capsys, argv, code=1)
        assert str(path) in line and reason in line, line
    left = [p.name for p in disk.rglob("*") if p.is_file() and p.name != "fill"]
    assert left == []  # no temporary file, and no run folder left holding only its `.lock`
    assert not (disk / "c1").exists()
    assert not (disk / "save").exists() and not (disk / "figs").exists()  # nor an empty output folder


def test_new_folder_removes_only_the_empty_folders_it_made(tmp_path):
    from daedalus.safety import new_folder

    (tmp_path / "kept").mkdir()
    with pytest.raises(OSError):
        with new_folder(tmp_path / "kept" / "a" / "b"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "a").exists()
    with pytest.raises(OSError):
        with new_folder(tmp_path / "x" / "y") as out:
            (out / "part.csv").write_text("1")  # something was written: the folder stays
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (tmp_path / "x" / "y" / "part.csv").exists()
    with new_folder(tmp_path / "ok") as out:
        (out / "f").write_text("1")
    assert (tmp_path / "ok" / "f").exists()


def test_stdout_to_a_full_device_is_one_line_exit_1():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "daedalus", "hardware", "--provenance"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "No space left" in proc.stderr


@pytest.mark.parametrize("argv", [["simulate", "--model", "deepseek-v3", "--hardware", "h100-sxm"], ["--help"]])
def test_stdout_to_a_full_device_fails_every_time(argv):
    """Ten tries in a row, each exit 1 with one line: the flush at the end is main's own, never left to
    the interpreter's exit (where it once gave exit 0 one time in six)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    for _ in range(10):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "daedalus", *argv], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "No space left" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig,word", [(signal.SIGTERM, "terminated (SIGTERM)"), (signal.SIGHUP, "terminated (SIGHUP)"),
                                      (signal.SIGINT, "interrupted")])
def test_sigterm_is_handled_like_ctrl_c(monkeypatch, capsys, sig, word):
    import daedalus.commands.models as cmd

    def busy(args):
        os.kill(os.getpid(), sig)
        time.sleep(5)  # the handler interrupts this
        return 0
    monkeypatch.setattr(cmd, "run", busy)
    # a job started in the background by a non-interactive shell inherits SIGINT ignored (POSIX), and
    # Python then keeps it ignored: give this test the handler an interactive run has
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t0 = time.monotonic()
        line = one_line(capsys, ["models"], code=130)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert word in line and time.monotonic() - t0 < 4


@pytest.mark.parametrize("module", ["daedalus.cli", "daedalus.commands", "daedalus.commands.models"])
def test_ctrl_c_during_start_up_is_one_line(module):
    """Ctrl-C while `python -m daedalus` is still importing (before main() has its handlers): made
    deterministic by an import hook that raises KeyboardInterrupt when `module` is imported."""
    code = ("import runpy, sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name == {module!r}:\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "sys.argv = ['daedalus', 'models']\n"
            "runpy.run_module('daedalus', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 130 and proc.stderr.count("\n") == 1, proc.stderr
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr


def test_os_errors_map_to_one_line_and_the_right_status():
    import errno

    cases = [(errno.ENOSPC, 1, "disk full"), (errno.EROFS, 1, "read-only"), (errno.EACCES, 1, "permission"),
             (errno.ENOTDIR, 2, "folder"), (errno.ENAMETOOLONG, 2, "too long"), (errno.ENOENT, 2, "")]
    for code, status, word in cases:
        msg, got = cli.describe_os_error(OSError(code, os.strerror(code), "/x/y"))
        assert got == status and "/x/y" in msg and word in msg.lower() and "\n" not in msg


# ---- fuzz: the API on generated inputs -----------------------------------------------------------

_any = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                 st.text(max_size=4), st.none())


@settings(max_examples=60, deadline=None)
@given(batch=_any, context=_any, decode=_any, skew=_any)
def test_simulate_api_never_crashes_and_never_returns_a_non_finite_number(batch, context, decode, skew):
    m, h = resolve_model("deepseek-v2-lite"), resolve_profile("h100-sxm")
    try:
        r = simulate([m], [h], phases=["decode", "prefill"], batches=[batch], contexts=[context],
                     decode_tokens=decode, routing_skew=skew, per_op=False)
    except ConfigError as exc:
        assert "\n" not in str(exc) and re.match(r"^(batch|context|decode_tokens|routing_skew)", str(exc))
        return
    num = r.totals.select_dtypes("number")
    assert num.map(math.isfinite).all().all()
    assert (r.totals["batch"] == batch).all() and (r.totals["time_s"] > 0).all()


_BASE_HF = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 1000, "intermediate_size": 512, "n_routed_experts": 8, "num_experts_per_tok": 2,
            "moe_intermediate_size": 64, "first_k_dense_replace": 1, "kv_lora_rank": 64, "qk_nope_head_dim": 32,
            "qk_rope_head_dim": 16, "v_head_dim": 32, "routed_scaling_factor": 1.0}
_value = st.one_of(_any, st.integers(0, 4096), st.lists(st.integers(-2, 8), max_size=3),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


@settings(max_examples=80, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(_BASE_HF) + ["mlp_only_layers", "norm_topk_prob",
                                                                    "torch_dtype", "head_dim"]), _value, max_size=3))
def test_model_loader_fuzz_one_line_or_a_model_with_finite_results(changes):
    from simulators.model_config import parse_hf_config, ModelConfig

    cfg = {**_BASE_HF, **changes}
    try:
        m = ModelConfig(**parse_hf_config(cfg, "fuzz.json", "fuzz"))
        r = simulate([m], [resolve_profile("h100-sxm")], phases=["decode", "prefill"], batches=[1, 8],
                     contexts=[128], per_op=False)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.json")
        return
    assert r.totals.select_dtypes("number").map(math.isfinite).all().all()
    assert (r.totals["time_s"] > 0).all()
