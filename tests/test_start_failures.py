"""A start that cannot go on: bad input to `daedalus run` / `bench` is exactly one line on stderr (no
progress line before it) and exit 2; a start that fails on a full disk leaves no empty run folder
behind; a folder the process may not write is one line naming the path (tests run as root, so
`chmod` denies nothing: PermissionError is raised by a patched call instead)."""

from __future__ import annotations

import errno
import fcntl
import json
import os

import pytest

pytest.importorskip("torch")

from bench import run_folder as rf  # noqa: E402
from bench import run_lock  # noqa: E402
from daedalus import pipeline  # noqa: E402
from daedalus.cli import main  # noqa: E402


def stderr_lines(capfd) -> list[str]:
    return [line for line in capfd.readouterr().err.splitlines() if line.strip()]


@pytest.fixture
def no_measuring(monkeypatch):
    """Reaching the measurement would be a test failure (a traceback, not one line)."""
    def refuse(*a, **k):
        raise AssertionError("bad input reached the measurement")
    monkeypatch.setattr(pipeline, "measure", refuse)
    monkeypatch.setattr(pipeline, "run_all", refuse)
    import bench.comm
    monkeypatch.setattr(bench.comm, "run_comm_bench", refuse)


@pytest.fixture
def held_run(tmp_path):
    """results/held: a started run (env.json) whose lock another open file holds, as a live writer would."""
    run = tmp_path / "res" / "held"
    run.mkdir(parents=True)
    (run / rf.ENV).write_text(json.dumps({"run_id": "held", "sweep": "quick"}))
    fd = os.open(run / run_lock.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    os.write(fd, json.dumps({"pid": 4242, "what": "bench"}).encode())
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield run
    os.close(fd)


def test_bad_input_to_run_and_bench_is_exactly_one_line_before_any_progress(tmp_path, capfd, no_measuring,
                                                                            held_run):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    res = str(held_run.parent)
    cases = [
        (["run", "--results", str(a_file)], "is a file, expected a folder"),
        (["run", "--results", str(a_file / "deeper")], "is a file, expected a folder"),
        (["run", "--results", res, "--run-id", "nosuch", "--resume"], "--resume: no run 'nosuch'"),
        (["run", "--results", res, "--run-id", "held", "--resume"], "in use by pid 4242"),
        (["bench", "--quick", "--results", str(a_file)], "is a file, expected a folder"),
        (["bench", "--quick", "--results", res, "--run-id", "held", "--resume"], "in use by pid 4242"),
        (["bench", "--comm", "--results", str(a_file)], "is a file, expected a folder"),
        (["bench", "--comm", "--results", res, "--run-id", "../x"], "--run-id"),
    ]
    for argv, word in cases:
        assert main([*argv, "--device", "cpu"] if argv[0] == "run" else argv) == 2, argv
        lines = stderr_lines(capfd)
        assert len(lines) == 1 and word in lines[0] and "Traceback" not in lines[0], (argv, lines)
    assert sorted(p.name for p in held_run.parent.iterdir()) == ["held"]  # no run folder was started


def test_a_start_that_fails_on_a_full_disk_leaves_no_empty_run_folder(tmp_path, capfd, monkeypatch):
    results = tmp_path / "new-results"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    # the first write of a start: the lock's owner line, then (lock written) env.json
    for module, name in [(run_lock.os, "pwrite"), (rf.os, "fchmod")]:
        with monkeypatch.context() as m:
            m.setattr(module, name, full)
            m.setattr(pipeline, "sweep_cases", lambda dev, sweep: [])
            code = main(["bench", "--quick", "--device", "cpu", "--no-probe", "--results", str(results),
                         "--run-id", "r1"])
        lines = stderr_lines(capfd)
        assert code == 1 and len(lines) == 1 and "disk full" in lines[0] and str(results / "r1") in lines[0], lines
        assert not results.exists(), list(results.rglob("*"))  # neither the run folder nor --results it made


def test_the_lock_keeps_a_folder_it_did_not_create_or_that_holds_more(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    with run_lock.RunLock(kept):
        pass
    assert kept.is_dir()  # existed before: only ever emptied of nothing
    made = tmp_path / "made"
    with run_lock.RunLock(made):
        (made / "measured.csv").write_text("case_id\n")
    assert (made / "measured.csv").exists()  # holds a result: stays, lock and all


@pytest.mark.parametrize("argv,target", [
    (["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--save", "{d}/save"], "{d}/save"),
    (["bench", "--comm", "--results", "{d}", "--run-id", "c1"], "{d}/c1"),
    (["bench", "--quick", "--device", "cpu", "--results", "{d}", "--run-id", "b1"], "{d}/b1"),
])
def test_a_folder_that_may_not_be_written_is_one_line_naming_it_exit_1(tmp_path, capfd, monkeypatch, argv,
                                                                       target):
    d = tmp_path / "forbidden"
    d.mkdir()
    real_mkdir = os.mkdir

    def deny(path, *a, **k):
        if str(path).startswith(str(d)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *a, **k)
    monkeypatch.setattr(os, "mkdir", deny)
    code = main([a.format(d=d) for a in argv])
    lines = stderr_lines(capfd)
    assert code == 1 and len(lines) == 1, lines
    assert target.format(d=d) in lines[0] and "Permission denied" in lines[0]


# ---- run files are read up to a cap ----------------------------------------------------------------

def sparse(path, n_bytes: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(n_bytes)  # no blocks written: cheap at any size
    return path


@pytest.mark.parametrize("name,cap_name", [("measured.csv", "RUN_TABLE_MAX_BYTES"), ("cases.jsonl", "RUN_TABLE_MAX_BYTES"),
                                           ("env.json", "RUN_DOC_MAX_BYTES"),
                                           ("hardware_profile.yaml", "RUN_DOC_MAX_BYTES")])
def test_a_run_file_over_its_cap_is_refused_naming_file_and_cap(tmp_path, name, cap_name):
    from simulators import safe_load
    from simulators.errors import ConfigError

    cap = getattr(safe_load, cap_name)
    assert safe_load.read_regular(sparse(tmp_path / "ok" / name, 1000)) == b"\0" * 1000
    big = sparse(tmp_path / name, cap + 1)
    with pytest.raises(ConfigError) as err:
        safe_load.read_regular(big)
    assert str(big) in str(err.value) and str(cap) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("argv,name", [
    (["bench", "--quick", "--device", "cpu", "--no-probe", "--resume"], "cases.jsonl"),
    (["validate"], "measured.csv"),
])
def test_resume_and_validate_refuse_an_oversized_run_file_in_one_line(tmp_path, capfd, monkeypatch, argv, name):
    from simulators.safe_load import RUN_TABLE_MAX_BYTES

    run = tmp_path / "r"
    run.mkdir()
    (run / rf.ENV).write_text(json.dumps({"run_id": "r", "sweep": "quick"}))
    sparse(run / name, RUN_TABLE_MAX_BYTES + 1)
    monkeypatch.setattr(pipeline, "sweep_cases", lambda dev, sweep: [])
    assert main([*argv, "--results", str(tmp_path), "--run-id", "r"]) == 2
    lines = stderr_lines(capfd)
    assert len(lines) == 1 and str(run / name) in lines[0] and "too large" in lines[0], lines
