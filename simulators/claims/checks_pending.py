"""Claim checks that need what other branches are building: the DeepSeek-V4 models and the exact KV
ledger (`simulators.kv_ledger`, issue 9), and the load-balancing simulation (`simulators.balancing`,
issue 10). Each raises `Pending` naming what it needs until that lands; none invents a number.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..model_cost import step_ops
from ..precision import Precision
from ..predict import resolve_mla_mode
from .outcome import Outcome, need_model, need_module

V4_WHY = "DeepSeek-V4 configs and the exact KV ledger, issue 9"
BALANCING_WHY = "the load-balancing simulation, issue 10"


def _v4(name: str):
    """A V4-era model only once the ledger that models its compressed cache has landed too: without it
    a V4 config would be costed as something else (issue 9)."""
    need_module("simulators.kv_ledger", "kv_ledger", why=V4_WHY)
    return need_model(name, V4_WHY)


def attention_kind(model: str) -> Outcome:
    m = _v4(model)
    return Outcome(m.attention, f"{m.name}: kv_lora_rank {m.kv_lora_rank} (0 = no MLA latent)")


def v4_params_total(model: str) -> Outcome:
    from ..params import count_params

    m = _v4(model)
    return Outcome(float(count_params(m).total), f"{m.name}: recount, main layers, embedding and head")


def v4_params_active(model: str) -> Outcome:
    from ..params import count_params

    m = _v4(model)
    return Outcome(float(count_params(m).active), f"{m.name}: recount, main layers, embedding and head")


def v4_shared_experts(model: str) -> Outcome:
    m = _v4(model)
    return Outcome(float(m.n_shared_experts), f"{m.name}: {m.n_shared_experts} shared + {m.n_routed_experts} routed")


def kv_ratio_at_context(model: str, baseline: str, context: int, kv_dtype: str = "fp8",
                        indexer_dtype: str = "fp8") -> Outcome:
    """KV bytes of one sequence at `context`, model / baseline, from the exact ledger."""
    ledger = need_module("simulators.kv_ledger", "kv_ledger", why=V4_WHY)
    m, b = _v4(model), _v4(baseline)
    ours = float(np.asarray(ledger.kv_ledger(m, context, kv_dtype, indexer_dtype).total))
    base = float(np.asarray(ledger.kv_ledger(b, context, kv_dtype, indexer_dtype).total))
    return Outcome(ours / base, f"context {context:,}, KV {kv_dtype}, indexer keys {indexer_dtype}: "
                                f"{ours / 1e9:.2f} GB vs {base / 1e9:.2f} GB ({b.name})")


def single_token_flop_ratio(model: str, baseline: str, context: int) -> Outcome:
    """FLOPs of one decode token at `context`, model / baseline (all ops of one step, batch 1)."""
    m, b = _v4(model), _v4(baseline)

    def flop(x) -> float:
        ops = step_ops(x, 1, 1, context, Precision.of(x.weight_dtype), phase="decode",
                       mla_mode=resolve_mla_mode("auto", "decode"))
        return sum(float(np.sum(o.flop)) * o.n_layers for o in ops)

    return Outcome(flop(m) / flop(b), f"decode, batch 1, context {context:,}: {flop(m) / 1e9:.1f} vs "
                                      f"{flop(b) / 1e9:.1f} GFLOP ({b.name})")


@lru_cache(maxsize=8)
def _balancing(policy: str, n_experts: int, top_k: int, tokens_per_step: int, steps: int, skew: float):
    bal = need_module("simulators.balancing", "simulate", why=BALANCING_WHY)
    r = bal.simulate(policy, n_experts=n_experts, top_k=top_k, tokens_per_step=tokens_per_step, steps=steps,
                     skew=skew)
    return np.asarray(r.loads, dtype=np.float64)


def balanced_load_violation(policy: str, n_experts: int, top_k: int, tokens_per_step: int, steps: int,
                            skew: float, last: int) -> Outcome:
    """MaxVio of the expert load summed over the last `last` steps (a global-batch statistic, as
    Wang et al. report): (max - mean) / mean."""
    total = _balancing(policy, n_experts, top_k, tokens_per_step, steps, skew)[-last:].sum(axis=0)
    return Outcome(float((total.max() - total.mean()) / total.mean()),
                   f"{policy}: {n_experts} experts, top-{top_k}, {tokens_per_step} tokens/step, skew {skew}, "
                   f"load over the last {last} of {steps} steps")


def step_load_violation(policy: str, n_experts: int, top_k: int, tokens_per_step: int, steps: int,
                        skew: float, last: int) -> Outcome:
    """Mean per-step MaxVio over the last `last` steps: the imbalance one decode step sees."""
    loads = _balancing(policy, n_experts, top_k, tokens_per_step, steps, skew)[-last:]
    mean = loads.mean(axis=1)
    vio = (loads.max(axis=1) - mean) / mean
    return Outcome(float(vio.mean()), f"{policy}: {n_experts} experts, top-{top_k}, {tokens_per_step} tokens per "
                                      f"step, skew {skew}, mean over the last {last} of {steps} steps")


CHECKS = {f.__name__: f for f in (attention_kind, v4_params_total, v4_params_active, v4_shared_experts,
                                  kv_ratio_at_context, single_token_flop_ratio, balanced_load_violation,
                                  step_load_violation)}
