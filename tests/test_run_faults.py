"""Faults in a run folder: kill -9 at any point of recording a case, torn and damaged files, two
writers, a full disk. The promise under test: a case is finished exactly when its journal line is
durable; whatever a crash leaves, the next open keeps every finished case with all its samples,
names what it dropped, and measures the rest again; nothing is lost without a message.

No torch needed: the store is driven with synthetic rows (the sweep runner's use of it is covered
in test_bench_run.py)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench import journal as J
from bench import run_folder as rf
from bench.journal import Journal
from bench.journal_store import JournalStore
from bench.run_lock import RunInUse, RunLock
from simulators.errors import ConfigError

CASES = [f"case-{i}" for i in range(3)]


def row(cid: str, **kw) -> dict:
    return {"run_id": "r", "case_id": cid, "kernel": "gemm", "median_s": 0.5e-3 + len(cid) * 1e-6,
            "noisy": False, "status": "ok", "skip_reason": "", "time_utc": "2026-01-01T00:00:00+00:00", **kw}


def samples(cid: str) -> list[float]:
    return [1e-3 * (1 + int(cid.split("-")[1])) + j * 1e-7 for j in range(4)]


def load(cid: str) -> list[int] | None:
    return [3, 0, 5] if cid.endswith("1") else None


def record(store: JournalStore, cids=CASES) -> None:
    for cid in cids:
        store.add(row(cid), samples(cid), load(cid))


def quiet_store(run_dir, said=None) -> JournalStore:
    return JournalStore(run_dir, list(row("x")), say=(said.append if said is not None else lambda m: None))


def check_consistent(run_dir, done: set[str]) -> None:
    """Every finished case has its row, its exact samples and its load in the views; no temp files."""
    measured = pd.read_csv(run_dir / rf.MEASURED)
    assert sorted(measured["case_id"]) == sorted(done)
    s = pd.read_csv(run_dir / rf.SAMPLES)
    for cid in done:
        assert s[s["case_id"] == cid]["time_s"].tolist() == pytest.approx(samples(cid), rel=1e-15)
    ld = pd.read_csv(run_dir / rf.EXPERT_LOAD)
    assert sorted(set(ld["case_id"])) == sorted(c for c in done if load(c) is not None)
    assert not list(run_dir.glob(".*.tmp"))


# ---- kill -9 at any point ------------------------------------------------------------------------

IO_CALLS = ("write", "fsync", "fchmod", "replace", "ftruncate", "open")  # os.*: what the store does


def _child(run_dir, kill_at: int, torn: bool) -> None:
    """In a forked child: record CASES, killing itself with SIGKILL just before I/O call number
    `kill_at` (with `torn`, a journal write is cut in half first). The child owns its copy of `os`."""
    n = [0]

    def hook(name, real):
        def hooked(*a, **kw):
            n[0] += 1
            if n[0] == kill_at:
                if torn and name == "write":
                    real(a[0], bytes(a[1])[: max(1, len(a[1]) // 2)])
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **kw)
        return hooked

    for name in IO_CALLS:
        setattr(os, name, hook(name, getattr(os, name)))
    store = quiet_store(run_dir)
    store.load()
    record(store)
    os._exit(0)


def _run_child(run_dir, kill_at: int, torn: bool) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            _child(run_dir, kill_at, torn)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize("torn", [False, True])
def test_kill_9_at_every_io_call_then_resume_loses_nothing(tmp_path, torn):
    kill_at, finished_runs = 1, 0
    while finished_runs == 0:
        run_dir = tmp_path / f"k{kill_at}"
        status = _run_child(run_dir, kill_at, torn)
        if os.WIFEXITED(status):  # ran past its last I/O call: every point has been tried
            assert os.WEXITSTATUS(status) == 0
            finished_runs += 1
        else:
            assert os.WTERMSIG(status) == signal.SIGKILL
        durable = [e.case_id for e in Journal(run_dir).read(repair=False)] if run_dir.exists() else []
        said: list[str] = []
        store = quiet_store(run_dir, said)
        done = store.load()
        assert done == set(durable) and durable == CASES[: len(durable)]  # finished = durable, in order
        if (run_dir / J.JOURNAL).exists() and (run_dir / J.JOURNAL).read_bytes()[-1:] not in (b"", b"\n"):
            pytest.fail("the journal still ends in a torn line after load()")
        if torn and any("cut short" in m for m in said):
            assert len(said) == 1
        record(store, [c for c in CASES if c not in done])  # the resume measures the rest
        check_consistent(run_dir, set(CASES))
        assert [e.case_id for e in Journal(run_dir).read()] == CASES  # no duplicate, no loss
        kill_at += 1
    assert kill_at > 10  # the loop really visited every write, fsync and rename


def test_a_torn_last_entry_at_any_length_is_dropped_with_a_message(tmp_path):
    store = quiet_store(tmp_path)
    record(store)
    whole = (tmp_path / J.JOURNAL).read_bytes()
    last = whole[: -1].rfind(b"\n") + 1
    for cut in range(last + 1, len(whole)):  # every proper prefix of the last line (its newline included)
        (tmp_path / J.JOURNAL).write_bytes(whole[:cut])
        said: list[str] = []
        done = quiet_store(tmp_path, said).load()
        assert done == set(CASES[:-1]), cut
        assert len(said) == 1 and "cut short" in said[0] and "measured again" in said[0]
        if f'"case_id":"{CASES[-1]}"'.encode() in whole[last:cut]:  # named once its id was written
            assert f"(case {CASES[-1]})" in said[0]
        assert (tmp_path / J.JOURNAL).read_bytes() == whole[:last]


def test_a_flipped_byte_in_the_last_entry_fails_its_checksum(tmp_path):
    store = quiet_store(tmp_path)
    record(store)
    data = bytearray((tmp_path / J.JOURNAL).read_bytes())
    pos = data.rfind(b'"samples_s":[') + len(b'"samples_s":[0.00')  # a digit of the last case's first sample
    assert pos > data[:-1].rfind(b"\n") and chr(data[pos]).isdigit()
    data[pos] = ord("9") if data[pos] != ord("9") else ord("8")  # still valid JSON, a different number
    (tmp_path / J.JOURNAL).write_bytes(bytes(data))
    said: list[str] = []
    assert quiet_store(tmp_path, said).load() == set(CASES[:-1]) and len(said) == 1


@pytest.mark.parametrize("damage", [b"\x00\xff\xfe garbage\n", b"{\"v\": 1, \"crc\": 0, \"payload\": {}}\n",
                                    b"[1, 2]\n", b"{" * 5000 + b"\n"])
def test_damage_before_the_last_line_is_refused_in_one_line(tmp_path, damage):
    store = quiet_store(tmp_path)
    record(store, CASES[:1])
    with open(tmp_path / J.JOURNAL, "ab") as fh:
        fh.write(damage)
    record(quiet_store(tmp_path), CASES[1:2])  # appended after the damage
    with pytest.raises(ConfigError, match=r"cases\.jsonl: damaged entry at line 2") as err:
        quiet_store(tmp_path).load()
    assert "\n" not in str(err.value)


# ---- a run from before the journal: its CSVs are imported ---------------------------------------

def _old_run(tmp_path, measured_text: str, samples_rows=()) -> None:
    (tmp_path / rf.MEASURED).write_text(measured_text)
    pd.DataFrame(list(samples_rows), columns=["case_id", "sample", "time_s"]).to_csv(tmp_path / rf.SAMPLES,
                                                                                     index=False)


def test_old_run_with_a_truncated_last_row_measures_that_case_again(tmp_path):
    full = pd.DataFrame([row(c) for c in CASES]).to_csv(index=False)
    cut = full[: full.rstrip("\n").rfind(",") + 5]  # the last row ends inside its time_utc
    _old_run(tmp_path, cut, [(c, j, t) for c in CASES for j, t in enumerate(samples(c))])
    said: list[str] = []
    done = quiet_store(tmp_path, said).load()
    assert done == set(CASES[:-1])
    assert any(CASES[-1] in m and "measured again" in m or "cut short" in m for m in said)
    assert [e.case_id for e in Journal(tmp_path).read()] == CASES[:-1]  # imported into the journal


def test_old_run_whose_samples_were_lost_measures_those_cases_again(tmp_path):
    _old_run(tmp_path, pd.DataFrame([row(c) for c in CASES]).to_csv(index=False),
             [(c, j, t) for c in CASES[:1] for j, t in enumerate(samples(c))])
    said: list[str] = []
    assert quiet_store(tmp_path, said).load() == {CASES[0]}
    assert sum("no raw samples" in m for m in said) == 2


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\n", b"case_id,status\n\"open,ok\n",
                                     b"a,b\n1,2\n"])
def test_old_run_with_a_damaged_measured_csv_is_one_line(tmp_path, content):
    (tmp_path / rf.MEASURED).write_bytes(content)
    with pytest.raises(ConfigError) as err:
        quiet_store(tmp_path).load()
    assert "measured.csv" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", b'{"device": "cpu", "trunc', b"[1, 2]"])
def test_damaged_env_json_is_kept_aside_on_resume(tmp_path, content):
    (tmp_path / rf.ENV).write_bytes(content)
    said: list[str] = []
    quiet_store(tmp_path, said).write_env({"time_utc": "t", "device": "cpu"}, resumed=True)
    assert (tmp_path / (rf.ENV + ".damaged")).read_bytes() == content
    assert json.loads((tmp_path / rf.ENV).read_text())["resumed"][0]["time_utc"] == "t"
    assert len(said) == 1 and rf.read_env(tmp_path)["device"] == "cpu"


def test_stale_temp_files_are_removed_on_open(tmp_path):
    record(quiet_store(tmp_path), CASES[:1])
    (tmp_path / ".measured.csv.abc123.tmp").write_text("half")
    quiet_store(tmp_path).load()
    assert not list(tmp_path.glob(".*.tmp"))


# ---- two writers ---------------------------------------------------------------------------------

def _hold_lock(run_dir, what="bench") -> subprocess.Popen:
    code = ("import sys, time; from bench.run_lock import RunLock; RunLock(sys.argv[1], sys.argv[2]).acquire(); "
            "print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(run_dir), what], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_writer_is_refused_naming_the_owner_and_a_dead_owner_is_taken_over(tmp_path):
    holder = _hold_lock(tmp_path, "bench")
    try:
        with pytest.raises(RunInUse, match=rf"in use by pid {holder.pid} \(bench\)"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()  # kill -9: the kernel drops its flock
        holder.wait()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid  # the stale record stays ...
    with RunLock(tmp_path, "resume"):  # ... and is taken over
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_a_fresh_bench_on_a_folder_with_cases_is_refused_under_the_lock(tmp_path):
    pytest.importorskip("torch")
    from bench.device import resolve_device
    from bench.run import run_cases

    record(quiet_store(tmp_path / "r"), CASES[:1])
    with pytest.raises(ConfigError, match="already holds measured cases.*--resume r"):
        run_cases([], resolve_device("cpu"), tmp_path, "r", probe=False, progress=False)
    assert [e.case_id for e in Journal(tmp_path / "r").read()] == CASES[:1]


# ---- a full disk ---------------------------------------------------------------------------------

def test_enospc_in_the_journal_loses_no_finished_case(tmp_path, monkeypatch):
    store = quiet_store(tmp_path)
    record(store, CASES[:2])
    real = os.write

    def full(fd, data):
        real(fd, bytes(data)[:7])  # a partial write, then the device is full
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(J.os, "write", full)
    with pytest.raises(OSError) as err:
        store.add(row(CASES[2]), samples(CASES[2]))
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    said: list[str] = []
    assert quiet_store(tmp_path, said).load() == set(CASES[:2]) and len(said) == 1


@pytest.fixture
def tiny_tmpfs(mount_tmpfs):
    """A 64 KiB tmpfs (needs root and mount permission; skipped otherwise)."""
    return mount_tmpfs("size=64k")


def test_full_tmpfs_fails_with_one_line_and_keeps_every_finished_case(tiny_tmpfs):
    run = tiny_tmpfs / "r"
    store = quiet_store(run)
    n_ok, big = 0, [1e-3] * 400  # each case: ~8 KB of samples in the journal and again in samples.csv
    with pytest.raises(OSError) as err:
        for i in range(1000):
            store.add(row(f"case-{i}"), big)
            n_ok += 1
    assert err.value.errno == errno.ENOSPC and n_ok >= 1
    from daedalus.cli import describe_os_error

    msg, code = describe_os_error(err.value)
    assert code == 1 and "disk full" in msg and "\n" not in msg
    (run / rf.SAMPLES).unlink()  # free space, as the user would, then resume
    for tmp in run.glob(".*.tmp"):
        tmp.unlink()
    said: list[str] = []
    done = quiet_store(run, said).load()
    durable = {f"case-{i}" for i in range(n_ok)}
    assert durable <= done <= durable | {f"case-{n_ok}"}  # the case that hit the full disk: journal or not
    s = pd.read_csv(run / rf.SAMPLES)
    assert all(s[s["case_id"] == c]["time_s"].tolist() == big for c in done)


# ---- run files that are not regular files ---------------------------------------------------------

def _bounded(fn, seconds: int = 20):
    """fn() or a TimeoutError: a FIFO opened for reading blocks until a writer comes, forever."""
    def hung(signum, frame):
        raise TimeoutError("blocked on a run file")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("name", [J.JOURNAL, rf.MEASURED, rf.SAMPLES])
def test_a_run_file_that_is_a_fifo_or_a_folder_is_one_line_never_a_hang(tmp_path, name, kind):
    if name == rf.SAMPLES:  # read while importing a run from before the journal
        (tmp_path / rf.MEASURED).write_text(pd.DataFrame([row(c) for c in CASES]).to_csv(index=False))
    os.mkfifo(tmp_path / name) if kind == "fifo" else (tmp_path / name).mkdir()
    with pytest.raises(ConfigError, match="expected a regular file") as err:
        _bounded(quiet_store(tmp_path).load)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_an_env_json_fifo_is_kept_aside_and_never_read(tmp_path):
    os.mkfifo(tmp_path / rf.ENV)
    assert _bounded(lambda: rf.read_env(tmp_path)) == {}
    said: list[str] = []
    _bounded(lambda: quiet_store(tmp_path, said).write_env({"time_utc": "t"}, resumed=True))
    assert (tmp_path / (rf.ENV + ".damaged")).is_fifo() and rf.read_env(tmp_path)["resumed"][0]["time_utc"] == "t"
    assert len(said) == 1 and "regular file" in said[0]
