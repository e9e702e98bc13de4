"""The sweep runner on a tiny sweep: files written atomically after each case, interrupt + resume
without duplicates, out of memory -> skipped row, failed check -> kernel aborted, env.json."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from bench import workloads  # noqa: E402
from bench.cases import Case  # noqa: E402
from bench.device import is_oom, resolve_device  # noqa: E402
from bench.kernels import moe  # noqa: E402
from bench.kernels.common import KernelCheckError  # noqa: E402
from bench.run import MEASURED_COLUMNS, find_run, run_cases  # noqa: E402
from bench.timing import TimingConfig  # noqa: E402
from simulators.errors import ConfigError  # noqa: E402

FAST = TimingConfig(budget_s=0.002, warmup_s=0.0, min_samples=2, max_samples=4)
TINY_MOE = moe.MoEDims(d=32, Ie=16, Is=32, router=moe.RouterSpec(n_experts=64, top_k=6))


def tiny_cases() -> list[Case]:
    return [
        Case("mla_decode_absorbed", "deepseek-v2-lite", "decode", 1, 1, 16),
        Case("mla_decode_naive", "deepseek-v2-lite", "decode", 2, 1, 8),
        Case("mla_prefill", "deepseek-v2-lite", "prefill", 1, 8, 8),
        Case("sdpa_decode", "llama-3.1-8b", "decode", 1, 1, 16),
        Case("sdpa_prefill", "llama-3.1-8b:kv_heads=1", "prefill", 1, 8, 8),
        Case("moe_grouped", "deepseek-v2-lite", "decode", 4, 1, 1),
        Case("gemm", m=8, n=16, k=32),
        Case("copy", n_bytes=1 << 20),
        Case("read", n_bytes=1 << 20),
    ]


@pytest.fixture
def cpu():
    return resolve_device("cpu")


@pytest.fixture(autouse=True)
def tiny_moe(monkeypatch):
    """V2-Lite's router (64 experts, top-6) on tiny expert widths: the real weights are 2 GiB."""
    monkeypatch.setattr(workloads, "moe_dims", lambda spec: TINY_MOE)


def read(run_dir, name):
    return pd.read_csv(run_dir / name, keep_default_na=False, na_values=[""])


def test_tiny_sweep_writes_every_file(tmp_path, cpu):
    cases = tiny_cases()
    df = run_cases(cases, cpu, tmp_path, "r1", timing=FAST, probe=False, progress=False)
    run = tmp_path / "r1"
    measured = read(run, "measured.csv")
    assert list(measured.columns[: len(MEASURED_COLUMNS)]) == MEASURED_COLUMNS
    assert list(measured["case_id"]) == [c.case_id for c in cases] == list(df["case_id"])
    assert (measured["status"] == "ok").all() and (measured["median_s"] > 0).all()
    assert set(measured["family"]) == {c.family for c in cases}
    assert {"mla_decode_absorbed", "mla_prefill", "attn_decode", "attn_prefill", "moe", "gemm"} <= set(measured["family"])
    samples = read(run, "samples.csv")
    assert list(samples.columns) == ["case_id", "sample", "time_s"]
    assert samples.groupby("case_id").size().to_dict() == dict(zip(measured["case_id"], measured["n_samples"]))
    load = read(run, "expert_load.csv")
    moe_id = cases[5].case_id
    assert list(load.columns) == ["case_id", "expert", "tokens"] and set(load["case_id"]) == {moe_id}
    assert len(load) == 64 and load["tokens"].sum() == 4 * 6
    row = measured.set_index("case_id").loc[moe_id]
    assert row["distinct_experts"] == (load["tokens"] > 0).sum() and 0 < row["expected_distinct_experts"] <= 24
    assert not list(run.glob(".*.tmp"))  # atomic writes leave no temp files
    assert (measured["achieved_bytes_per_s"] == measured["bytes"] / measured["median_s"]).all()


def test_interrupt_then_resume_has_no_duplicates(tmp_path, cpu):
    cases = tiny_cases()

    def stop_after_3(case, row):
        if len(read(tmp_path / "r2", "measured.csv")) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cases(cases, cpu, tmp_path, "r2", timing=FAST, probe=False, progress=False, on_case_done=stop_after_3)
    first = read(tmp_path / "r2", "measured.csv")
    assert list(first["case_id"]) == [c.case_id for c in cases[:3]]
    assert find_run(tmp_path, None) == "r2"
    df = run_cases(cases, cpu, tmp_path, find_run(tmp_path, None), resume=True, timing=FAST, probe=False,
                   progress=False)
    measured = read(tmp_path / "r2", "measured.csv")
    assert len(df) == len(measured) == len(cases) and measured["case_id"].is_unique
    assert set(measured["case_id"]) == {c.case_id for c in cases}
    assert (measured.iloc[:3]["median_s"].to_numpy() == first["median_s"].to_numpy()).all()  # kept, not re-run
    samples = read(tmp_path / "r2", "samples.csv")
    assert not samples.duplicated(["case_id", "sample"]).any()
    env = json.loads((tmp_path / "r2" / "env.json").read_text())
    assert len(env["resumed"]) == 1


def test_max_cases_stops_early(tmp_path, cpu):
    df = run_cases(tiny_cases(), cpu, tmp_path, "r3", timing=FAST, probe=False, progress=False, max_cases=2)
    assert len(df) == 2


def test_out_of_memory_is_a_skipped_row(tmp_path, cpu, monkeypatch):
    cases = tiny_cases()[:3]
    real_build = workloads.build

    def build(case, dev, variant=""):
        if case.kernel == "mla_decode_naive":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return real_build(case, dev, variant)

    monkeypatch.setattr(workloads, "build", build)
    df = run_cases(cases, cpu, tmp_path, "r4", timing=FAST, probe=False, progress=False)
    assert list(df["status"]) == ["ok", "skipped", "ok"]
    assert df.loc[1, "skip_reason"].startswith("out of memory: OutOfMemoryError")
    assert pd.isna(df.loc[1, "median_s"]) and df.loc[1, "flop"] > 0  # the simulator's count is still recorded


def test_is_oom_recognises_every_kind():
    assert is_oom(MemoryError()) and is_oom(torch.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_oom(RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory"))
    assert not is_oom(RuntimeError("shape mismatch")) and not is_oom(ValueError("out of memory"))


def test_other_errors_are_not_swallowed(tmp_path, cpu, monkeypatch):
    monkeypatch.setattr(workloads, "build", lambda case, dev, variant="": (_ for _ in ()).throw(ValueError("bug")))
    with pytest.raises(ValueError, match="bug"):
        run_cases(tiny_cases()[:1], cpu, tmp_path, "r5", timing=FAST, probe=False, progress=False)


def test_failed_check_aborts_only_that_kernel(tmp_path, cpu, monkeypatch, capsys):
    real_check = workloads.check_case

    def check(case, dev):
        if case.kernel == "sdpa_decode":
            raise KernelCheckError("sdpa vs reference at B=2: max abs error 0.5 exceeds rtol=0.0001")
        return real_check(case, dev)

    monkeypatch.setattr(workloads, "check_case", check)
    cases = tiny_cases()[:1] + [Case("sdpa_decode", "llama-3.1-8b", "decode", B, 1, 16) for B in (1, 2)]
    df = run_cases(cases, cpu, tmp_path, "r6", timing=FAST, probe=False, progress=False)
    assert list(df["status"]) == ["ok", "skipped", "skipped"]
    assert df.loc[1, "skip_reason"].startswith("correctness check failed: sdpa vs reference")
    assert "sdpa_decode (fp32, llama-3.1-8b) aborted" in capsys.readouterr().err


def test_env_json_and_probe_columns(tmp_path, cpu):
    df = run_cases(tiny_cases()[-2:], cpu, tmp_path, "r7", timing=FAST, probe=True, progress=False,
                   env_extra={"sweep": "test"})
    env = json.loads((tmp_path / "r7" / "env.json").read_text())
    for key in ("time_utc", "device", "device_name", "cores", "threads", "torch", "python", "platform", "git",
                "nvml", "run_id", "sweep"):
        assert key in env, key
    assert env["device"] == "cpu" and env["run_id"] == "r7" and env["sweep"] == "test"
    assert env["threads"] == torch.get_num_threads() and env["cores"] >= 1
    assert isinstance(env["nvml"]["available"], bool)
    if not env["nvml"]["available"]:
        assert env["nvml"]["error"]  # e.g. NVMLError_LibraryNotFound on a CPU-only host: caught, recorded
    assert df["probe_compute_ratio"].notna().all() and df["probe_quiet"].notna().all()
    if shutil.which("lscpu"):  # the CPU kind beyond its model name: family, model and stepping
        assert "Architecture" in env["lscpu"] and "Flags" not in env["lscpu"]
        assert "CPU family" in env["lscpu"] or env["lscpu"]["Architecture"] != "x86_64"
    assert env["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_cases_beyond_the_cache_pair_every_sample_with_the_probe(tmp_path, cpu, monkeypatch):
    """A working set beyond the last-level cache (here a pretend 512 KiB one) records the probe
    bandwidth paired with its samples; a cache-resident case does not (the probe would evict it)."""
    monkeypatch.setattr(type(cpu), "last_level_cache_bytes", lambda self: 1 << 19)
    df = run_cases([Case("read", n_bytes=1 << 20), Case("read", n_bytes=1 << 16)], cpu, tmp_path, "r8",
                   timing=FAST, probe=True, progress=False).set_index("n_bytes")
    assert df.loc[1 << 20, "probe_read_paired_bytes_per_s"] > 0
    assert pd.isna(df.loc[1 << 16, "probe_read_paired_bytes_per_s"])


def test_find_run_errors(tmp_path):
    with pytest.raises(ConfigError, match="--resume: no run"):
        find_run(tmp_path, None)
    with pytest.raises(ConfigError, match="--resume: no run 'nope'"):
        find_run(tmp_path, "nope")


@pytest.mark.parametrize("case", [c for c in tiny_cases() if c.model], ids=lambda c: c.kernel)
def test_the_timed_workload_runs_its_cases_kernel(case, cpu):
    """The callable that is timed computes the case's own kernel at the case's own shape: its output
    has the kernel's output shape (a stand-in, e.g. a read of 0 bytes, does not)."""
    from bench.registry import spec

    variant = spec(case.kernel).check(case, cpu)
    wl = workloads.build(case, cpu, variant)
    out = wl.fn()
    out = out[0] if isinstance(out, tuple) else out
    from bench.cases import model_config

    if case.family == "moe":
        assert tuple(out.shape) == (case.tokens, TINY_MOE.d)
    elif case.family.startswith("attn"):  # SDPA layout [B, H, S, D]
        m = model_config(case.model)
        assert tuple(out.shape) == (case.batch, m.num_attention_heads, case.query_len, m.head_dim)
    else:  # MLA [B, S, H, ...]
        m = model_config(case.model)
        assert tuple(out.shape[:3]) == (case.batch, case.query_len, m.num_attention_heads)


def test_a_run_in_use_is_refused_not_overwritten(tmp_path, cpu):
    """While one process holds a run folder, a second one on the same run id gets one line, exit 2."""
    import subprocess
    import sys

    run = tmp_path / "r1"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bench.run_lock import RunLock; "
                               "l = RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(30)",
                               str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="in use"):
            run_cases(tiny_cases()[:1], cpu, tmp_path, "r1", timing=FAST, probe=False, progress=False)
        assert not (run / "measured.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    run_cases(tiny_cases()[:1], cpu, tmp_path, "r1", timing=FAST, probe=False, progress=False)  # taken over
    assert (run / "measured.csv").exists()
