"""Shared piece of the routing Monte-Carlos (tests/test_expert_load.py, tests/test_hash_load.py):
from the experts each token chose to the busiest EP rank's load."""

from __future__ import annotations

import numpy as np


def busiest_rank(chosen: np.ndarray, first: np.ndarray, reps: np.ndarray, by_expert: np.ndarray,
                 slot_rank: np.ndarray, ep: int, rng: np.random.Generator) -> tuple[float, float]:
    """chosen: [tokens, K] expert ids. Each choice goes to one of its expert's replicas at random
    (`first[e]` .. `first[e] + reps[e] - 1`, slots mapped to experts by `by_expert`, slots to ranks by
    `slot_rank`). Returns the busiest rank's (token assignments, distinct expert slots hit)."""
    replica = first[chosen] + (rng.random(chosen.shape) * reps[chosen]).astype(int)
    counts = np.bincount(by_expert[replica].ravel(), minlength=len(by_expert))
    return (float(np.bincount(slot_rank, weights=counts, minlength=ep).max()),
            float(np.bincount(slot_rank, weights=counts > 0, minlength=ep).max()))
