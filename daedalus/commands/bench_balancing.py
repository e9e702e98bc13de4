"""`daedalus bench --balancing`: DeepSeek-V3's auxiliary-loss-free bias balancing on the bench's own
MoE layer (bench/balancing.py): the real router's load trajectory beside the simulated one, and the
layer timed at the skewed and the balanced routing. Writes into the run folder:
    balancing.csv          step, policy, source (host / simulated), max_violation
    balancing_summary.csv  mean MaxVio over the first and the last 50 steps, per policy and source
    balancing_timing.csv   the layer at the skewed and the balanced routing (median_s, cv, max/mean, noisy)
    env.json               the environment (lscpu, torch, threads) and the settings
    figures/balancing.png  the trajectories
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import log
from ..output import emit

MODEL = "deepseek-v2-lite"  # 64 experts, top-6: its weights fit a CPU host (fp32 ~2 GiB)
TOKENS_PER_STEP = 512
STEPS = 300


def run_balancing(args, dev, run_id: str) -> int:
    import torch

    from bench import balancing as HB
    from bench import run_folder as rf
    from bench.kernels import moe
    from bench.device import set_threads
    from bench.env import collect_env
    from bench.run_lock import RunLock
    from bench.workloads import CPU_MOE_CHUNK_ROWS, MOE_GROUPED_PREFERENCE, moe_dims

    from ..report.plots_balancing import plot_balancing

    results = Path(args.results)
    out_dir = results / run_id
    skew = args.routing_skew  # finite and >= 0: the flag rules (daedalus/args.py RULES)
    t0 = time.perf_counter()
    with RunLock(out_dir, "bench --balancing"):
        threads = set_threads() if dev.kind == "cpu" else 0
        env = collect_env(dev, threads, {"run_id": run_id, "sweep": "balancing", "model": MODEL,
                                         "tokens_per_step": TOKENS_PER_STEP, "steps": STEPS, "routing_skew": skew})
        rf.write_atomic(out_dir / rf.ENV, json.dumps(env, indent=1))  # lscpu, torch, threads with the result
        dims = moe_dims(MODEL)
        dt = torch.float32 if dev.kind == "cpu" else torch.bfloat16
        log.get(__name__).info(f"balancing: {MODEL} router, {STEPS} steps x {TOKENS_PER_STEP} tokens, skew {skew}")
        params = moe.make_params(dims, dev.torch_device, dt)
        impl = next(i for i in MOE_GROUPED_PREFERENCE if i in moe.grouped_impls(dev.torch_device))  # as the sweep
        res = HB.measure_host(dims, params, T=TOKENS_PER_STEP, steps=STEPS, skew=skew, impl=impl,
                              chunk_rows=CPU_MOE_CHUNK_ROWS if dev.kind == "cpu" else None, sync=dev.synchronize,
                              contention=dev.kind == "cpu")
        summary = HB.summary(res)
        rf.write_atomic(out_dir / "balancing.csv", res.trajectory)
        rf.write_atomic(out_dir / "balancing_summary.csv", summary)
        rf.write_atomic(out_dir / "balancing_timing.csv", res.timing)
        plot_balancing(res.trajectory, out_dir / rf.FIGURES,
                       title=f"{MODEL} router (V3 gating), {TOKENS_PER_STEP} tokens/step, skew {skew}")
    emit(summary, args.format, columns=args.columns, default_columns=list(summary.columns))
    ratio = HB.ratio_balanced_over_skewed_s(res)
    log.done(f"balancing over {STEPS} steps; layer balanced/skewed time {ratio:.2f}x ({impl})",
             time.perf_counter() - t0, where=out_dir)
    return 0
