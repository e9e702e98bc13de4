"""Load balancing of a skewed MoE router, simulated over steps: none, DeepSeek-V3's auxiliary-loss-free
bias, and an auxiliary balance loss. The resulting expert loads feed the EP straggler model
(`simulators.expert_load`, routing kind 'histogram'), so balancing shows up in step time.

Router (shape legend: T tokens per step, E routed experts, k per token):
    u[t, i] = base_i + noise[t, i]          base_i = -skew * log(i + 1) (a Zipf-like preference over a
                                            seeded random expert order), noise ~ Normal(0, 1)
    s[t, i] = sigmoid(u[t, i])              affinity (DeepSeek-V3 gating)
Policies (DeepSeek-V3 report arXiv 2412.19437 sec. 2.1.2; Wang et al. arXiv 2408.15664):
    none      experts = TopK(s, k)
    aux-free  experts = TopK(s + b, k); b is used for selection only (gate weights keep s); after each
              step b_i -= gamma if expert i's load is above the mean, += gamma if below
              (sign update; V3: gamma = 0.001 per step)
    aux-loss  the router learns an offset theta (u + theta) by gradient descent on
              L_bal = alpha * sum_i f_i P_i, f_i = E / (k T) * load_i (a constant in the gradient),
              P_i = mean_t s'_i with s' = the affinities normalised over the experts:
              dL/dtheta_i = alpha * mean_t s'_i * (f_i - sum_j f_j s'_j) * (1 - s_i) (sigmoid chain)
Output: per-step loads (steps x E) and MaxVio_batch = (max load - mean) / mean per step.

numpy only; seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

POLICIES = ("none", "aux-free", "aux-loss")
DEFAULT_GAMMA = 0.001  # DeepSeek-V3 bias update speed
DEFAULT_AUX_ALPHA = 0.001  # Wang et al.'s loss-controlled baseline coefficient
DEFAULT_AUX_LR = 10.0  # learning rate of the router offset in this toy (no language-model loss pulls back)


@dataclass(frozen=True)
class BalancingResult:
    policy: str
    loads: np.ndarray  # steps x E: token-expert assignments per expert per step
    bias: np.ndarray  # E: final selection bias (aux-free) or learned offset (aux-loss)

    @property
    def max_violation(self) -> np.ndarray:
        """MaxVio_batch per step: (max_i load_i - mean load) / mean load."""
        mean = self.loads.mean(axis=1)
        return (self.loads.max(axis=1) - mean) / mean

    def histogram(self, last: int) -> tuple[float, ...]:
        """Mean per-expert load over the last `last` steps (the straggler model's 'histogram')."""
        return tuple(float(x) for x in self.loads[-last:].mean(axis=0))


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


def simulate(policy: str, n_experts: int = 64, top_k: int = 6, tokens_per_step: int = 1024, steps: int = 300,
             skew: float = 1.0, gamma: float = DEFAULT_GAMMA, aux_alpha: float = DEFAULT_AUX_ALPHA,
             aux_lr: float = DEFAULT_AUX_LR, seed: int = 0) -> BalancingResult:
    """Route `steps` batches of fresh tokens through the skewed router under `policy`."""
    if policy not in POLICIES:
        raise ConfigError(f"balancing policy {policy!r}: expected one of {', '.join(POLICIES)}")
    if not 0 < top_k < n_experts or tokens_per_step < 1 or steps < 1:
        raise ConfigError("balancing: expected 0 < top_k < n_experts, tokens_per_step >= 1, steps >= 1")
    rng = np.random.default_rng(seed)
    E, k, T = n_experts, top_k, tokens_per_step
    base = -skew * np.log(np.arange(1, E + 1, dtype=np.float64))[rng.permutation(E)]
    b = np.zeros(E)  # aux-free selection bias
    theta = np.zeros(E)  # aux-loss learned offset
    loads = np.zeros((steps, E))
    for step in range(steps):
        u = base + theta + rng.standard_normal((T, E))
        s = 1.0 / (1.0 + np.exp(-u))
        chosen = _topk(s + b if policy == "aux-free" else s, k)
        load = np.bincount(chosen.ravel(), minlength=E).astype(np.float64)
        loads[step] = load
        if policy == "aux-free":
            b += gamma * np.sign(load.mean() - load)
        elif policy == "aux-loss":
            f = E / (k * T) * load
            s_norm = s / s.sum(axis=1, keepdims=True)
            inner = f[None, :] - (s_norm * f[None, :]).sum(axis=1, keepdims=True)
            grad = aux_alpha * (s_norm * inner * (1.0 - s)).mean(axis=0)
            theta -= aux_lr * grad
    return BalancingResult(policy, loads, b if policy == "aux-free" else theta)
