"""How fast the simulator sweeps: `python -m bench.sim_speed [--cases N]`.

Builds a models x hardware x batch x context x phase grid of at least N cases (default 100,000)
from every shipped model and profile, times `simulators.predict.simulate` on it (totals only, and
with per-op rows) and prints cases per second. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import math
import time

from simulators.hardware import builtin_profiles, load_profile
from simulators.model_config import builtin_models, load_model
from simulators.predict import simulate


def grid_for(n_cases: int, n_models: int, n_hw: int) -> tuple[list[int], list[int]]:
    """Batches and contexts so that models x hardware x 2 phases x batches x contexts >= n_cases."""
    per_pair = math.ceil(n_cases / (n_models * n_hw * 2))
    n_ctx = 16
    n_batch = math.ceil(per_pair / n_ctx)
    return list(range(1, n_batch + 1)), [2 ** (8 + i) for i in range(n_ctx)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    models = [load_model(p) for p in builtin_models().values()]
    profiles = [load_profile(p) for p in builtin_profiles().values()]
    batches, contexts = grid_for(args.cases, len(models), len(profiles))
    for per_op in (False, True):
        best = math.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = simulate(models, profiles, ("prefill", "decode"), batches, contexts, per_op=per_op)
            best = min(best, time.perf_counter() - t0)
        n = len(res.totals)
        rows = "" if res.ops is None else f", {len(res.ops):,} op rows"
        print(f"per_op={per_op}: {n:,} cases{rows} in {best:.2f} s (best of {args.repeats}) "
              f"= {n / best:,.0f} cases/s")


if __name__ == "__main__":
    main()
