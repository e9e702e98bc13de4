"""Measured communication: all-reduce and all-to-all with torch.distributed.

  python -m bench.comm --world-size 4                 # spawns 4 local ranks: gloo on CPU, NCCL on GPUs
  torchrun --nnodes 2 --nproc-per-node 8 -m bench.comm --full   # across nodes, unchanged: RANK,
                                                      # WORLD_SIZE, LOCAL_RANK come from the environment
Local runs rendezvous through a file store in a private temporary folder (no listening socket)
and keep gloo / NCCL traffic on the loopback interface. Each size: correctness check, warm-up, then repeats within a
time budget; every repeat's time is the slowest rank's. Writes into the run folder:
  comm.jsonl         the journal (bench/journal.py): rank 0 appends each collective x size, with every
                     repeat's time, fsync'd as soon as it is measured, so a crash or `kill -9` keeps
                     what was finished and `--resume` measures only the rest
  comm.csv           one row per collective x size: median, spread, algbw, busbw
  comm_compare.csv   the comm model (simulators.comm) on a fabric fitted to these measurements
  comm_env.json      versions and launch settings
(the last three atomically, from the journal, at the end)
Bus bandwidth follows nccl-tests: all-reduce 2(n-1)/n x algbw, all-to-all (n-1)/n x algbw.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from simulators.checks import integer
from simulators.comm import compare_comm
from simulators.errors import ConfigError

from .journal import Journal
from .run_folder import DEFAULT_RESULTS, new_run_id, write_atomic
from .run_lock import RunLock

KiB = 1024
MiB = 1024 * KiB
SIZES_FULL = [4 * KiB * 4**i for i in range(8)]  # 4 KiB ... 64 MiB (x4 steps)
SIZES_QUICK = [4 * KiB, 64 * KiB, 1 * MiB, 4 * MiB]
BUDGET_S = {True: 0.15, False: 1.0}  # per collective x size, after warm-up
WARMUP = {True: 2, False: 5}
MAX_LOCAL_RANKS = 64  # local processes one host spawns (one per core or GPU; more is a typo, not a run)
MIN_REPEATS, MAX_REPEATS = 5, 200
LARGE_SPREAD = 0.25  # warn when the interquartile range exceeds this share of the median
ELEMENT_BYTES = 4  # float32 payloads
COLUMNS = ["collective", "world_size", "backend", "device", "bytes", "median_s", "p25_s", "p75_s", "min_s", "cv",
           "iqr_over_median", "repeats", "algbw_bytes_per_s", "busbw_bytes_per_s", "correct"]
COMM_JOURNAL = "comm.jsonl"
BUS_FACTOR = {"all_reduce": lambda n: 2.0 * (n - 1) / n, "all_to_all": lambda n: (n - 1) / n}


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_all_reduce(dist, torch, n: int, rank: int, world: int, device) -> bool:
    x = torch.full((n,), float(rank + 1), device=device)
    dist.all_reduce(x)
    return bool(torch.all(x == world * (world + 1) / 2).item())


def _check_all_to_all(dist, torch, n: int, rank: int, world: int, device) -> bool:
    """Chunk j of rank r holds r * world + j; after the exchange chunk i of rank r holds i * world + r."""
    chunk = n // world
    src = (rank * world + torch.arange(world, device=device, dtype=torch.float32)).repeat_interleave(chunk)
    out = torch.empty_like(src)
    dist.all_to_all_single(out, src)
    expect = (torch.arange(world, device=device, dtype=torch.float32) * world + rank).repeat_interleave(chunk)
    return bool(torch.equal(out, expect))


def case_key(collective: str, world: int, nbytes: int) -> str:
    """The journal's name of one measured collective x size."""
    return f"{collective}/world{world}/{nbytes}B"


def rank_device():
    """This rank's device in an initialised group: its local GPU under NCCL (set current), else the CPU."""
    import torch
    import torch.distributed as dist

    rank = dist.get_rank()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()}"
                          if dist.get_backend() == "nccl" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def from_rank0(flag: bool, device=None) -> bool:
    """Rank 0's `flag`, broadcast: every rank gets the same answer (others' `flag` is ignored)."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device if device is not None else rank_device())
    dist.broadcast(t, 0)
    return t.item() == 1.0


def measure(sizes: list[int], quick: bool, done: frozenset[str] = frozenset(), on_row=None) -> list[dict]:
    """Run inside an initialised process group (every rank). Returns rows on rank 0, [] elsewhere.
    `done` (read on rank 0): case keys already in the journal, skipped by every rank (rank 0 decides,
    then broadcasts); `on_row(key, row, times_s)` runs on rank 0 as soon as a row is measured."""
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    backend = dist.get_backend()
    device = rank_device()
    rows = []
    for collective in ("all_reduce", "all_to_all"):
        for size in sizes:
            n = max(world, size // ELEMENT_BYTES // world * world)  # elements, a multiple of world
            nbytes = n * ELEMENT_BYTES
            key = case_key(collective, world, nbytes)
            if from_rank0(rank == 0 and key in done, device):  # every rank skips the same cases
                continue
            check = _check_all_reduce if collective == "all_reduce" else _check_all_to_all
            ok = torch.tensor([1.0 if check(dist, torch, n, rank, world, device) else 0.0], device=device)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            buf = torch.ones(n, device=device)
            out = torch.empty_like(buf)

            def op(buf=buf, out=out, collective=collective):
                if collective == "all_reduce":
                    dist.all_reduce(buf)
                else:
                    dist.all_to_all_single(out, buf)

            t0 = time.perf_counter()
            for _ in range(WARMUP[quick]):
                buf.fill_(1.0)
                op()
            _sync(device)
            per_op = (time.perf_counter() - t0) / WARMUP[quick]
            reps = torch.tensor([min(MAX_REPEATS, max(MIN_REPEATS, int(BUDGET_S[quick] / max(per_op, 1e-6))))],
                                device=device)
            dist.broadcast(reps, 0)  # every rank runs the same number of repeats
            times = torch.zeros(int(reps.item()), dtype=torch.float64, device=device)
            for i in range(times.numel()):
                buf.fill_(1.0)  # keep all-reduce sums finite; untimed
                dist.barrier()
                _sync(device)
                start = time.perf_counter()
                op()
                _sync(device)
                times[i] = time.perf_counter() - start
            dist.all_reduce(times, op=dist.ReduceOp.MAX)  # a collective ends when its slowest rank does
            if rank == 0:
                t = sorted(times.cpu().tolist())
                q = statistics.quantiles(t, n=4) if len(t) >= 2 else [t[0]] * 3
                med = statistics.median(t)
                algbw = nbytes / med
                rows.append(row := {
                    "collective": collective, "world_size": world, "backend": backend, "device": device.type,
                    "bytes": nbytes, "median_s": med, "p25_s": q[0], "p75_s": q[2], "min_s": t[0],
                    "cv": statistics.pstdev(t) / statistics.mean(t), "iqr_over_median": (q[2] - q[0]) / med,
                    "repeats": len(t),
                    "algbw_bytes_per_s": algbw, "busbw_bytes_per_s": algbw * BUS_FACTOR[collective](world),
                    "correct": bool(ok.item() == 1.0),
                })
                if on_row is not None:
                    on_row(key, row, t)
    return rows


def loopback_ifname() -> str | None:
    """The loopback interface's name (`lo` on Linux, `lo0` on macOS), or None when none is listed."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):
        return None
    return next((n for n in names if n == "lo"), next((n for n in names if n.startswith("lo")), None))


def _local_only_env() -> None:
    """Keep a local run's traffic on loopback: gloo's and NCCL's socket transports bind to the
    interface named here (left alone when the user set one)."""
    lo = loopback_ifname()
    if lo is not None:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", lo)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", lo)


def journal_rows(run_dir: Path, say=None) -> list:
    """The journal's entries (a torn last line, from a kill mid-write, is dropped and said)."""
    j = Journal(run_dir, COMM_JOURNAL)
    entries = j.read()
    for msg in j.dropped:
        (say or (lambda m: sys.stderr.write(f"daedalus bench: {m}\n")))(msg)
    return entries


def _appender(run_dir: Path):
    j = Journal(run_dir, COMM_JOURNAL)
    return lambda key, row, times_s: j.append(key, row, times_s)


def _spawned(rank: int, world: int, backend: str, store_path: str, sizes: list[int], quick: bool,
             run_dir: str, done: frozenset[str] = frozenset()) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # local ranks share the host's cores
    _local_only_env()
    # Rendezvous through a file in a private temporary folder: no TCP store listening on any
    # interface (a TCPStore's server binds to all of them, whatever MASTER_ADDR says).
    store = dist.FileStore(store_path, world)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world)
    try:
        measure(sizes, quick, done, _appender(Path(run_dir)) if rank == 0 else None)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def default_backend(world_size: int) -> str:
    import torch

    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world_size else "gloo"


def _environment(backend: str, world_size: int, quick: bool, launcher: str) -> dict:
    import torch

    return {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "backend": backend, "world_size": world_size, "quick": quick,
            "launcher": launcher, "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def write_results(out_dir: Path, rows: list[dict], env: dict) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values(["collective", "bytes"], kind="stable",
                                                         ignore_index=True)
    write_atomic(out_dir / "comm.csv", df)
    write_atomic(out_dir / "comm_env.json", json.dumps(env, indent=1) + "\n")
    timed = df[df["median_s"] > 0]
    if len(timed) >= 2:
        cases, summary = compare_comm(timed)
        write_atomic(out_dir / "comm_compare.csv", cases)
        write_atomic(out_dir / "comm_compare_summary.csv", summary)
    return df


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def run_comm_bench(out_dir: Path, world_size: int = 2, quick: bool = True, backend: str | None = None,
                   sizes: list[int] | None = None, resume: bool = False) -> pd.DataFrame:
    """Measure all-reduce and all-to-all; write comm.csv (+ comparison) into `out_dir`; return the
    measured table. Under torchrun the current process is one rank (world size from the
    environment; rank 0 writes); otherwise `world_size` local processes are spawned. `resume`:
    continue the run in `out_dir`, measuring only what its journal does not hold."""
    sizes = sizes or (SIZES_QUICK if quick else SIZES_FULL)
    out_dir = Path(out_dir)
    if launched_by_torchrun():
        import torch.distributed as dist

        world = int(os.environ["WORLD_SIZE"])
        backend = backend or default_backend(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        rank0 = int(os.environ["RANK"]) == 0
        # the group first (torchrun starts every rank), then rank 0 takes the folder and tells the
        # others whether it may: a refusal ends every rank with one line, none waits for a timeout
        dist.init_process_group(backend)
        try:
            with contextlib.ExitStack() as held:
                done: frozenset[str] = frozenset()
                if rank0:
                    try:
                        held.enter_context(RunLock(out_dir, "bench --comm"))  # rank 0 is the one writer
                        done = frozenset(start(out_dir, resume, world, backend))
                    except BaseException:
                        from_rank0(True)  # refused: tell the other ranks, then say why
                        raise
                if from_rank0(False) and not rank0:
                    raise ConfigError(f"{out_dir}: rank 0 refused this run folder (its message says why)")
                rows = measure(sizes, quick, done, _appender(out_dir) if rank0 else None)
                df = write_results(out_dir, [e.row for e in journal_rows(out_dir)],
                                   _environment(backend, world, quick, "torchrun")) \
                    if rank0 else pd.DataFrame(rows, columns=COLUMNS)
                dist.barrier()
        finally:
            dist.destroy_process_group()
        return df
    world_size = integer(world_size, "world_size", minimum=2, maximum=MAX_LOCAL_RANKS)
    import torch.multiprocessing as mp

    backend = backend or default_backend(world_size)
    with RunLock(out_dir, "bench --comm"):  # one writer: a second comm run on this folder is refused
        done = frozenset(start(out_dir, resume, world_size, backend))
        with tempfile.TemporaryDirectory() as tmp:  # mode 0700: the store file is this user's alone
            store = str(Path(tmp) / "store")
            ranks = mp.spawn(_spawned, args=(world_size, backend, store, list(sizes), quick, str(out_dir), done),
                             nprocs=world_size, join=False)
            try:
                while not ranks.join():
                    pass
            except BaseException:  # SIGTERM / Ctrl-C / a rank failed: no rank outlives this process
                stop_ranks(ranks.processes)
                raise
        rows = [e.row for e in journal_rows(out_dir)]
        return write_results(out_dir, rows, _environment(backend, world_size, quick, "spawn"))


def stop_ranks(processes, grace_s: float = 5.0) -> None:
    """Terminate the spawned ranks still alive, then kill those that ignore it: without this a
    SIGTERM to the parent left it waiting forever at exit for ranks blocked in a collective."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def refuse_overwrite(out_dir: Path) -> None:
    """A folder that already holds comm.csv or its journal keeps them: a second comm run would
    replace those measurements without a word (name a new --run-id, or --resume it)."""
    for name in (COMM_JOURNAL, "comm.csv"):
        if (Path(out_dir) / name).exists():
            raise ConfigError(f"--run-id: {out_dir} already holds {name} (measured collectives); continue it with "
                              f"--resume --run-id {Path(out_dir).name} or name a new run id to measure again")


def start(out_dir: Path, resume: bool, world: int, backend: str) -> set[str]:
    """Under the lock, before any rank starts: the case keys already measured (resume), or refuse
    a folder that holds measured collectives (no resume). A resume keeps the world size and backend."""
    if not resume:
        refuse_overwrite(out_dir)
        return set()
    if not (Path(out_dir) / COMM_JOURNAL).exists() and (Path(out_dir) / "comm.csv").exists():
        raise ConfigError(f"--resume: {out_dir} holds comm.csv from before the journal ({COMM_JOURNAL}); "
                          "name a new run id to measure again")
    entries = journal_rows(out_dir)
    for e in entries:
        if e.row.get("world_size") != world or e.row.get("backend") != backend:
            raise ConfigError(f"--resume: {out_dir / COMM_JOURNAL} was measured with world size "
                              f"{e.row.get('world_size')} on {e.row.get('backend')}, not {world} on {backend}; "
                              "pass the same --world-size or name a new run id")
    return {e.case_id for e in entries}


def newest_comm_run(results: Path) -> Path:
    """`bench --comm --resume` without --run-id: the run folder whose comm journal changed last."""
    runs = sorted((p.stat().st_mtime, p.parent.name, p.parent) for p in Path(results).glob(f"*/{COMM_JOURNAL}")
                  if p.is_file()) if Path(results).is_dir() else []
    if not runs:
        raise ConfigError(f"--resume: no comm run with {COMM_JOURNAL} in {results}/")
    return runs[-1][2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.comm", description=__doc__.splitlines()[0])
    p.add_argument("--world-size", type=int, default=2, help="local ranks to spawn (ignored under torchrun)")
    p.add_argument("--full", action="store_true", help="4 KiB ... 64 MiB and longer time budgets (default: quick)")
    p.add_argument("--backend", choices=["gloo", "nccl"], help="default: nccl with enough GPUs, else gloo")
    p.add_argument("--out", help="run folder (default results/comm-<timestamp>/)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else DEFAULT_RESULTS / new_run_id("comm")
    df = run_comm_bench(out, args.world_size, quick=not args.full, backend=args.backend)
    if not launched_by_torchrun() or os.environ.get("RANK") == "0":
        cols = ["collective", "world_size", "backend", "bytes", "median_s", "iqr_over_median", "algbw_bytes_per_s",
                "busbw_bytes_per_s", "correct"]
        sys.stdout.write(df[cols].to_string(index=False) + f"\n(written to {out}/)\n")
        if (df["iqr_over_median"] > LARGE_SPREAD).any():
            sys.stdout.write(f"warning: interquartile range above {LARGE_SPREAD:.0%} of the median for some sizes "
                             "(a busy host?); the median is kept, the spread is in comm.csv\n")
    return 0 if df.empty or bool(df["correct"].all()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
