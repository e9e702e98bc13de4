"""`daedalus bench` and `daedalus calibrate` end to end on tiny sweeps, and their one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("torch")

import bench.cases  # noqa: E402
import bench.device  # noqa: E402
from bench.cases import Case  # noqa: E402
from daedalus.cli import main  # noqa: E402
from simulators.hardware import load_profile  # noqa: E402

QUICK = ["--no-probe", "--no-progress", "--budget-s", "0.002"]


def err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("argv,match", [
    (["bench", "--quick", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["bench", "--quick", "--hardware", "no-such-gpu"], "--hardware: unknown hardware 'no-such-gpu'"),
    (["bench", "--quick", "--hardware", "missing.yaml"], "--hardware: missing.yaml: hardware file not found"),
    (["bench", "--quick", "--dtype", "int3"], "argument --dtype: invalid choice: 'int3'"),
    (["bench", "--quick", "--max-cases", "0"], "--max-cases: expected an integer >= 1"),
    (["calibrate", "--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
])
def test_bad_input_is_one_line_exit_2(argv, match, capsys, tmp_path):
    assert main(argv + ["--results", str(tmp_path)]) == 2
    assert match in err_line(capsys)


def test_resume_errors(tmp_path, capsys):
    assert main(["bench", "--quick", "--resume", "nope", "--results", str(tmp_path)]) == 2
    assert "--resume: no run 'nope'" in err_line(capsys)
    assert main(["bench", "--quick", "--resume", "--results", str(tmp_path)]) == 2
    assert "--resume: no run with env.json" in err_line(capsys)


def test_resume_of_a_run_whose_env_json_is_damaged_asks_for_the_sweep(tmp_path, capsys):
    # it fell back to the full (accelerator) sweep without a word
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "env.json").write_bytes(b'{"sweep": "qu')
    assert main(["bench", "--resume", "--run-id", "r", "--results", str(tmp_path), *QUICK]) == 2
    line = err_line(capsys)
    assert "env.json" in line and "--quick or --full" in line


def test_cuda_requested_without_one(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["bench", "--quick", "--device", "cuda", "--results", str(tmp_path)]) == 2
    assert "--device: cuda requested" in err_line(capsys)


def test_bench_quick_tiny_then_resume(tmp_path, capsys, monkeypatch):
    # the sweep starts with its reference rows: one tiny GEMM here, then the quick kernel cases
    monkeypatch.setattr(bench.cases, "calibration_cases",
                        lambda kind, n_bytes, quick=True: [Case("gemm", m=32, n=32, k=32, role="reference")])
    argv = ["bench", "--quick", "--device", "cpu", "--results", str(tmp_path), "--run-id", "q", *QUICK]
    assert main(argv + ["--max-cases", "2"]) == 0
    out = capsys.readouterr()
    assert "mla_decode_absorbed" in out.out and "2 ok, 0 skipped" in out.err
    assert main(argv + ["--max-cases", "1"]) == 2  # the run exists: --resume it instead
    assert "use --resume q" in err_line(capsys)
    assert main(["bench", "--resume", "--results", str(tmp_path), "--max-cases", "1", *QUICK,
                 "--hardware", "host-cpu", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "fraction_of_roofline" in out.split("\n")[0]  # csv header: the table's headers are for people
    measured = pd.read_csv(tmp_path / "q" / "measured.csv")
    assert len(measured) == 3 and measured["case_id"].is_unique
    assert (tmp_path / "q" / "roofline.csv").exists()
    assert not (tmp_path / "q" / "hardware_profile.yaml").exists()  # no reference read yet: no bandwidth


def test_calibrate_writes_a_loadable_profile(tmp_path, monkeypatch, capsys):
    ref = dict(role="reference")
    tiny = [Case("gemm", m=n, n=n, k=n, **ref) for n in (32, 64)] + [Case("gemm", m=m, n=128, k=128, **ref)
                                                                     for m in (1, 4)]
    tiny += [Case("gemm", dtype="bf16", m=n, n=n, k=n, **ref) for n in (32, 64)]
    tiny += [Case("read", n_bytes=1 << 20, **ref), Case("dispatch", **ref)]
    monkeypatch.setattr(bench.cases, "calibration_cases", lambda kind, n_bytes, quick=True: tiny)
    monkeypatch.setattr(bench.device, "stream_bytes", lambda dev: 1 << 20)
    assert main(["calibrate", "--device", "cpu", "--results", str(tmp_path), "--run-id", "cal", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "hardware profile:" in out and "peak: " in out
    hw = load_profile(tmp_path / "cal" / "hardware_profile.yaml")
    assert hw.name == "host-measured" and hw.peak("fp32") > 0 and hw.memory_bandwidth_bytes_per_s.value > 0
    assert all(r["status"] == "measured" and "daedalus calibrate run cal" in r["source"] for r in hw.provenance())
    assert "skinny_gemm_fp32_n128_k128_m1_flop_per_s" in hw.notes
    measured = pd.read_csv(tmp_path / "cal" / "measured.csv")
    assert set(measured["kernel"]) == {"gemm", "read", "dispatch"} and len(measured) <= len(tiny)
    assert (measured["role"] == "reference").all()


def test_comm_world_size_must_be_two_or_more(capsys, tmp_path):
    assert main(["bench", "--comm", "--world-size", "1", "--results", str(tmp_path)]) == 2
    assert "--world-size" in err_line(capsys)


def test_run_is_one_pipeline_into_one_folder(tmp_path, monkeypatch, capsys):
    """`daedalus run` on a tiny sweep: reference rows, scored cases, profile, validation, predict files and
    the report all land in the one run folder."""
    from bench import run_folder as rf
    from daedalus import pipeline

    ref = dict(role="reference")
    tiny_ref = [Case("gemm", m=n, n=n, k=n, **ref) for n in (32, 64, 128)] + [
        Case("read", n_bytes=n << 20, **ref) for n in (1, 4)] + [Case("dispatch", **ref)]
    tiny = [Case("gemm", m=m, n=96, k=96) for m in (2, 8, 24)] + [Case("copy", n_bytes=n << 20) for n in (1, 2, 3)]
    tiny += [Case("mla_decode_absorbed", "deepseek-v2-lite", "decode", 1, 1, L) for L in (256, 512)]
    monkeypatch.setattr(pipeline, "sweep_cases", lambda dev, sweep: tiny_ref + tiny)
    monkeypatch.setattr(pipeline, "report", lambda run_dir, **kw: run_dir / rf.REPORT)  # figures tested elsewhere
    assert main(["run", "--device", "cpu", "--results", str(tmp_path), "--run-id", "r", "--no-progress"]) == 0
    run = tmp_path / "r"
    for name in (rf.ENV, rf.MEASURED, rf.SAMPLES, rf.PROFILE, rf.VALIDATION_CASES, rf.VALIDATION_SUMMARY):
        assert (run / name).exists(), name
    hw = load_profile(run / rf.PROFILE)
    assert hw.calibration is not None and hw.calibration.run_id == "r"
    assert "calibrated median |error|" in capsys.readouterr().err
    assert main(["run", "--device", "cpu", "--results", str(tmp_path), "--run-id", "r"]) == 2  # exists
    assert "--resume" in err_line(capsys)
