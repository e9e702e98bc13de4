"""The sweep runner: check -> noise probe -> build -> time -> results/<run-id>/, one case at a time.

Files (bench/journal_store.py): a case is finished when its line in cases.jsonl (append-only,
fsync'd, checksummed) is durable; the tables below are views rebuilt atomically from it after
every case, and again on --resume (so a crash between two writes loses nothing):
    cases.jsonl      the journal: one line per finished case (row, raw samples, expert load)
    measured.csv     one row per case (status ok or skipped)
    samples.csv      case_id, sample, time_s: every raw timing sample
    expert_load.csv  case_id, expert, tokens: routed tokens per expert of MoE cases
    env.json         the environment, and when the run was resumed
"""

from __future__ import annotations

import gc
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from simulators.errors import ConfigError
from simulators.moe import expected_distinct_experts

from . import workloads
from .cases import Case, model_config, simulator_cost
from .allocator import keep_freed_memory
from .device import CacheFlusher, Device, is_oom, make_probe, set_threads
from .env import collect_env, utc_now
from .kernels.common import KernelCheckError
from . import run_folder as rf
from .run_folder import MEASURED_COLUMNS
from .contention import wait_for_quiet
from .registry import spec
from .run_lock import RunLock
from .run_folder import find_run as _find_run
from .run_folder import new_run_id as _new_run_id
from .journal_store import JournalStore
from .timing import Measurement, TimingConfig, measure, summarize

FILES = {"measured": rf.MEASURED, "samples": rf.SAMPLES, "expert_load": rf.EXPERT_LOAD, "env": rf.ENV}
COUNT_OPS_BELOW_S = 0.2  # count dispatched ops of calls shorter than this (longer: overhead negligible)


def new_run_id(results_dir: Path, prefix: str = "run") -> str:
    return _new_run_id(prefix, results_dir)


def find_run(results_dir: Path, run_id: str | None) -> str:
    """--resume [ID]: the named run, or the newest run folder (one with env.json)."""
    return _find_run(results_dir, run_id, need=FILES["env"], flag="--resume").name


def base_row(run_id: str, case: Case, dev: Device) -> dict:
    row = {"run_id": run_id, **case.key(), "tokens": case.tokens, "device": dev.kind}
    row.update(simulator_cost(case, dev.kind))
    row["bytes"] = row["bytes_read"] + row["bytes_written"]
    if case.family == "moe":
        m = model_config(case.model)
        row["expected_distinct_experts"] = float(expected_distinct_experts(case.tokens, m.n_routed_experts,
                                                                           m.num_experts_per_tok))
    return row


def skipped(row: dict, reason: str) -> dict:
    return {**row, "status": "skipped", "skip_reason": reason, "time_utc": utc_now()}


def _time_case(wl: workloads.Workload, dev: Device, timing: TimingConfig, flusher, probe,
               after_each=None) -> tuple[Measurement, int]:
    """Time once; if the spread is large, probe again and re-time, keeping the steadier attempt.
    `after_each`: the bandwidth probe run after every sample (`interleaves_probe`)."""
    best = measure(wl.fn, dev.synchronize, timing, before_each=flusher, after_each=after_each)
    attempts = 1
    if summarize(best.samples_s).cv > timing.cv_retry:
        if probe is not None:
            probe.wait_quiet()
        again = measure(wl.fn, dev.synchronize, timing, before_each=flusher, after_each=after_each)
        attempts = 2
        if summarize(again.samples_s).cv < summarize(best.samples_s).cv:
            best = again
    return best, attempts


def run_cases(cases: Sequence[Case], dev: Device, results_dir: Path | str, run_id: str | None = None,
              **kwargs) -> pd.DataFrame:
    """`_run_cases` holding the run folder's lock: a second process on the same run id (a second
    bench, a --resume of a run still measuring) is refused with one line instead of overwriting."""
    results_dir = Path(results_dir)
    run_id = run_id or new_run_id(results_dir)
    with RunLock(results_dir / run_id, "bench"):
        return _run_cases(cases, dev, results_dir, run_id, **kwargs)


def _run_cases(cases: Sequence[Case], dev: Device, results_dir: Path | str, run_id: str | None = None, *,
              resume: bool = False, timing: TimingConfig = TimingConfig(), probe: bool = True,
              progress: bool = True, max_cases: int | None = None, env_extra: dict | None = None,
              on_case_done: Callable[[Case, dict], None] | None = None, noise_probe=None,
              second_pass: bool = True) -> pd.DataFrame:
    """Run `cases` into results_dir/run_id; return measured.csv as a DataFrame.

    resume: continue that run folder, skipping case ids already recorded. max_cases: stop after this
    many new cases (a tiny-sweep hook for tests). on_case_done(case, row) runs after each case is saved.
    noise_probe: a calibrated probe to reuse (its reference then comes from an earlier, quieter step).
    second_pass: re-time the cases flagged noisy once more at the end, keeping the quieter timing.
    """
    results_dir = Path(results_dir)
    run_id = run_id or new_run_id(results_dir)
    store = JournalStore(results_dir / run_id, MEASURED_COLUMNS,
                         say=lambda msg: tqdm.write(f"daedalus bench: {msg}", file=sys.stderr))
    if resume:
        done = store.load()
    elif store.has_cases():  # checked under the lock: a second writer that started fresh meanwhile
        raise ConfigError(f"run {run_id} already holds measured cases ({store.dir}); continue it with "
                          f"--resume {run_id} or pick a new --run-id")
    else:
        done = set()
    threads = set_threads() if dev.kind == "cpu" else os.cpu_count() or 1
    allocator = keep_freed_memory() if dev.kind == "cpu" else "the device's caching allocator"
    store.write_env(collect_env(dev, threads, {"run_id": run_id, "host_allocator": allocator, **(env_extra or {})}),
                    resumed=resume)
    noise = noise_probe if noise_probe is not None else (make_probe(dev) if probe else None)
    if noise is not None and not noise.history:
        noise.calibrate()
    checked: dict[tuple, tuple[str, str | None]] = {}  # check key -> (variant, failure message)
    llc_bytes = dev.last_level_cache_bytes()
    flusher = None
    todo = [c for c in cases if c.case_id not in done][:max_cases]
    bar = tqdm(total=len(todo), file=sys.stderr, disable=not progress, unit="case", dynamic_ncols=True)

    def one(case: Case, pass_no: int) -> None:
        nonlocal flusher
        row = base_row(run_id, case, dev)
        key = workloads.check_key(case)
        if key not in checked:
            try:
                checked[key] = (spec(case.kernel).check(case, dev), None)
            except Exception as exc:  # noqa: BLE001 - a kernel that cannot run here is aborted, not the sweep
                what = str(exc) if isinstance(exc, KernelCheckError) else f"{type(exc).__name__}: {exc}"
                checked[key] = ("", f"correctness check failed: {what.splitlines()[0][:300]}")
                tqdm.write(f"daedalus bench: {case.kernel} ({case.dtype}, {case.model or '-'}) aborted: "
                           f"{checked[key][1]}", file=sys.stderr)
        variant, failure = checked[key]
        row["variant"] = variant
        if failure:
            store.add(skipped(row, failure))
            return
        if case.cache_state == "cold" and flusher is None:
            flusher = CacheFlusher(dev)
        result = _run_one(case, row, dev, timing, noise, flusher if case.cache_state == "cold" else None,
                          contention=probe and dev.kind == "cpu", llc_bytes=llc_bytes)
        result[0]["passes"] = pass_no
        store.add(*result)

    try:
        for case in todo:
            bar.set_postfix_str(case.case_id, refresh=False)
            one(case, 1)
            bar.update(1)
            if on_case_done is not None:
                on_case_done(case, store.rows[-1])
        noisy = [c for c in todo if _is_noisy(store, c.case_id)] if second_pass and probe else []
        if noisy:
            tqdm.write(f"daedalus bench: second pass over {len(noisy)} case(s) flagged noisy", file=sys.stderr)
        for case in noisy:
            first = next(r for r in store.rows if r["case_id"] == case.case_id)
            one(case, 2)
            again = store.rows[-1]
            if again.get("noisy") and first.get("status") == "ok" and first["median_s"] <= again.get("median_s", 0):
                store.add(first)  # still noisy and not faster: keep the first timing (slowness is the noise)
    finally:
        bar.close()
        workloads.release()
    return store.measured()


def interleaves_probe(row: dict, cache_state: str, llc_bytes: int | None) -> bool:
    """Whether a case's samples are each followed by the memory probe: a working set beyond the last-
    level cache (or a flushed one), whose time follows the DRAM bandwidth. On the 2-vCPU AMD EPYC
    guest that bandwidth flips between ~30 and ~50 GB/s within seconds, inside one case's timing
    window (the probes just before and just after a case differed up to 1.7x). Twelve rounds of 15
    samples, 5 s apart: a 192 MiB read's median varied 24.4% (CV) raw and 2.3% paired sample by
    sample with a 96 MiB read right after it; a 96 MiB copy 23.5% -> 9.3%. The bench pairs each
    sample with its noise probe's 256 MiB read. The probe evicts the cache, so cache-resident cases are not interleaved (their time does not follow DRAM)."""
    if cache_state == "cold":
        return True
    return bool(llc_bytes) and float(row.get("bytes") or 0.0) > llc_bytes


def _is_noisy(store: JournalStore, case_id: str) -> bool:
    row = next((r for r in store.rows if r["case_id"] == case_id), None)
    return bool(row and row.get("status") == "ok" and row.get("noisy"))


def _run_one(case: Case, row: dict, dev: Device, timing: TimingConfig, noise, flusher, contention: bool = False,
             llc_bytes: int | None = None):
    """(row, samples, expert load) of one case; out of memory -> a skipped row, and the sweep goes on."""
    wl = None
    try:
        quiet = wait_for_quiet() if contention else None
        pr = noise.wait_quiet() if noise is not None else None
        wl = spec(case.kernel).build(case, dev, row["variant"])
        read_bytes = getattr(noise, "memory_bytes", None)  # the bytes one memory probe reads (None: no probe)
        paired = noise.memory if read_bytes and interleaves_probe(row, case.cache_state, llc_bytes) else None
        meas, attempts = _time_case(wl, dev, timing, flusher, noise, after_each=paired)
        mem_after_s = noise.memory_s() if noise is not None else math.nan  # bandwidth drift over the window
        after = wait_for_quiet(max_wait_s=0.0) if quiet is not None else None  # a neighbour started meanwhile?
    except Exception as exc:  # noqa: BLE001 - classified below; anything but OOM is re-raised
        wl = None
        gc.collect()
        dev.empty_cache()
        if is_oom(exc):
            return skipped(row, f"out of memory: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"), (), None
        raise
    st = summarize(meas.samples_s)
    row.update(st.as_dict())
    if st.median_s < COUNT_OPS_BELOW_S:
        row["n_ops"] = workloads.count_ops(wl.fn)
    contended = quiet is not None and not (quiet.quiet and after.quiet)
    row["other_cpu_cores"] = max(quiet.other_cpu_cores, after.other_cpu_cores) if quiet is not None else float("nan")
    row["contention_wait_s"] = quiet.waited_s if quiet is not None else 0.0
    row["noisy"] = bool(contended or (pr is not None and not pr.quiet) or st.cv > timing.cv_retry)
    row.update({
        "inner_calls": meas.inner,
        "attempts": attempts,
        "achieved_flop_per_s": row["flop"] / st.median_s,
        "achieved_bytes_per_s": row["bytes"] / st.median_s,
        "status": "ok",
        "skip_reason": "",
        "time_utc": utc_now(),
    })
    if pr is not None:
        row.update({"probe_compute_ratio": pr.compute_ratio, "probe_memory_ratio": pr.memory_ratio,
                    "probe_parallel_ratio": pr.parallel_ratio, "probe_retries": pr.retries,
                    "probe_wait_s": pr.waited_s, "probe_quiet": pr.quiet})
        if read_bytes:  # absolute probe bandwidth just before and just after the case's timing window
            row["probe_read_bytes_per_s"] = read_bytes / pr.memory_s
            row["probe_read_after_bytes_per_s"] = read_bytes / mem_after_s
            row["probe_read_paired_bytes_per_s"] = meas.paired_rate(read_bytes)  # nan: not interleaved
    row.update(wl.extra)
    if wl.variant:
        row["variant"] = wl.variant
    load = wl.expert_load
    del wl
    gc.collect()
    dev.empty_cache()
    return row, meas.samples_s, load
