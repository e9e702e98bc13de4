"""The host allocator keeps freed memory while measuring (bench/allocator.py): a kernel that allocates a
large temporary on every call stops paying its page faults after the first call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bench import allocator

pytestmark = pytest.mark.skipif(not allocator._glibc(), reason="glibc's allocator tunables")

BLOCK_BYTES = 96 << 20  # above glibc's largest mmap threshold (32 MiB)
PAGES = BLOCK_BYTES // 4096
FAULTS = textwrap.dedent(f"""
    import json, resource, sys
    import torch
    from bench import allocator
    said = allocator.keep_freed_memory() if sys.argv[1] == "keep" else "default"

    def call():  # a fresh large temporary, touched, then freed
        x = torch.ones({BLOCK_BYTES} // 4)
        del x

    call()
    call()  # the second call may still grow the heap once (the first block's neighbours)
    faults = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        call()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({{"said": said, "faults": faults}}))
""")


def _faults(env: dict, keep: bool = True) -> dict:
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", FAULTS, "keep" if keep else "default"], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", allocator._REEXEC_MARK)}
    return {**env, **extra}


def test_with_the_tunables_a_repeated_large_temporary_stops_faulting():
    got = _faults(allocator.with_tunables(_env()))
    assert got["said"].startswith("glibc tunables"), got
    assert max(got["faults"]) < 0.05 * PAGES, got


def test_without_them_it_faults_every_call_and_says_which_fallback_ran():
    # glibc's default policy: every page of the block, every call (the cost the tunables remove)
    plain = _faults(_env(), keep=False)
    assert min(plain["faults"]) > 0.9 * PAGES, plain
    assert "tcache on" in _faults(_env())["said"]  # mallopt alone, and it says so


def test_with_tunables_keeps_other_tunables_and_overrides_ours():
    env = allocator.with_tunables({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_max=7"})
    got = dict(p.split("=") for p in env["GLIBC_TUNABLES"].split(":"))
    assert got["glibc.malloc.arena_max"] == "2" and got["glibc.malloc.mmap_max"] == "0"
    assert all(got[k] == v for k, v in allocator.TUNABLES.items())


def test_daedalus_bench_reexecutes_itself_once_with_the_tunables(tmp_path):
    # the console entry point re-executes a measuring command before anything runs; the new process
    # reads the tunables at start and records them in env.json
    daedalus = os.path.join(os.path.dirname(sys.executable), "daedalus")
    if not os.path.exists(daedalus):
        pytest.skip("console script not installed")
    pytest.importorskip("torch")
    out = subprocess.run([daedalus, "bench", "--quick", "--max-cases", "1", "--results", str(tmp_path),
                          "--run-id", "r", "-qq"], env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    env = json.loads((tmp_path / "r" / "env.json").read_text())
    assert env["host_allocator"].startswith("glibc tunables"), env["host_allocator"]
