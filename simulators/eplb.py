"""Where experts and their redundant replicas sit on EP ranks: contiguous, or DeepSeek's EPLB
(deepseek-ai/EPLB, shared/reference/deepseek-v4.md §2.4).

  replicate  each redundant slot goes to the expert with the largest load per replica;
  pack       items heaviest first, each onto the least-loaded pack that still has room, every pack
             getting the same number of items (EPLB's `balanced_packing`);
  global     (decode, large EP) replicate over all experts, then pack the replicas onto the ranks;
  hierarchical (prefill, smaller EP; group-limited routing, when the nodes divide the expert groups
             and the ranks): pack whole expert groups onto nodes, replicate inside each node, then
             pack each node's replicas onto its ranks. A token's experts then sit on at most
             topk_group nodes, which is what node-limited routing needs.
Loads are per-expert (any scale: counts, shares or per-token inclusion). numpy only.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


def eplb_replicas(load: np.ndarray, redundant: int) -> np.ndarray:
    """Replicas per expert: each redundant slot to the expert with the largest load per replica."""
    r = np.ones(len(load), dtype=np.int64)
    for _ in range(redundant):
        r[np.argmax(load / r)] += 1
    return r


def balanced_pack(weights: np.ndarray, n_packs: int) -> np.ndarray:
    """Pack index per item: heaviest first onto the least-loaded pack with a free place (equal counts,
    ceil(items / packs) places each)."""
    cap = -(-len(weights) // n_packs)
    pack_load = np.zeros(n_packs)
    fill = np.zeros(n_packs, dtype=np.int64)
    out = np.empty(len(weights), dtype=np.int64)
    for s in np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable"):
        free = np.flatnonzero(fill < cap)
        g = free[np.argmin(pack_load[free])]
        out[s] = g
        pack_load[g] += weights[s]
        fill[g] += 1
    return out


def _replicate_and_pack(load: np.ndarray, experts: np.ndarray, redundant: int, n_ranks: int):
    reps = eplb_replicas(load[experts], redundant)
    slot_expert = np.repeat(experts, reps)
    slot_load = np.repeat(load[experts] / reps, reps)
    return slot_expert, balanced_pack(slot_load, n_ranks)


def hierarchical_nodes(ep: int, domain_devices: int, n_group: int, redundant: int) -> int:
    """Nodes for EPLB's hierarchical policy over `ep` ranks in scale-up domains of `domain_devices`,
    or 1 (global policy). deepseek-ai/EPLB `rebalance_experts`: "if num_groups % num_nodes == 0: use
    hierarchical load-balance policy", else global; `rebalance_experts_hierarchical` asserts the
    nodes divide the GPUs, and the replicas split evenly over the nodes (here: the nodes also divide
    the redundant experts). The EPLB README keeps the hierarchical policy for the prefilling stage
    (smaller expert-parallel size) and the global one for decoding: the caller picks the phase."""
    if domain_devices < 1 or ep <= domain_devices or ep % domain_devices:
        return 1
    nodes = ep // domain_devices
    return nodes if n_group % nodes == 0 and redundant % nodes == 0 else 1


def placement(load: np.ndarray, ep: int, redundant: int, n_group: int = 1,
              n_nodes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(expert id per slot, rank per slot). n_nodes > 1: EPLB's hierarchical policy over n_group
    contiguous expert groups; else R = 0: contiguous (expert i on rank i // (E / ep)), R > 0: global."""
    load = np.asarray(load, dtype=np.float64)
    E = len(load)
    if n_nodes > 1:
        if n_group % n_nodes or ep % n_nodes or redundant % n_nodes or E % n_group:
            raise ConfigError(f"EPLB hierarchical placement: {n_nodes} nodes must divide the {n_group} expert "
                              f"groups, the {ep} ranks and the {redundant} redundant experts")
        per_group = E // n_group
        node_of_group = balanced_pack(load.reshape(n_group, per_group).sum(axis=1), n_nodes)
        ranks_per_node = ep // n_nodes
        experts_out, ranks_out = [], []
        for node in range(n_nodes):
            experts = np.flatnonzero(np.repeat(node_of_group, per_group) == node)
            se, sr = _replicate_and_pack(load, experts, redundant // n_nodes, ranks_per_node)
            experts_out.append(se)
            ranks_out.append(sr + node * ranks_per_node)
        return np.concatenate(experts_out), np.concatenate(ranks_out)
    if redundant == 0:
        per = -(-E // ep)
        return np.arange(E), np.arange(E) // per
    return _replicate_and_pack(load, np.arange(E), redundant, ep)
