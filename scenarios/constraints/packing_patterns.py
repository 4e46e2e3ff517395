"""Exact bin packing when item sizes take few values: cutting patterns.

Items of a few distinct costs go into workers (bins) of a few distinct capacities. A packing exists iff
some choice of one *maximal packing* (pattern: item counts per cost that fit and leave no room for another
item) per worker covers the items of every cost:

    sum_p z_tp <= workers of capacity type t,     sum_{t,p} p_c z_tp >= items of cost c,    z integer >= 0.

That integer program has a handful of columns whatever the number of items (J = 1,000 arms, 100 workers:
tens of patterns), where a search over item placements can take minutes on a tight packing.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp


def maximal_packings(costs: np.ndarray, capacity: int, limit: int) -> list[list[int]]:
    """Item counts per cost (ascending ``costs``) that fit in ``capacity`` and leave no room for another item;
    stops after ``limit + 1`` packings (the caller then falls back)."""
    out: list[list[int]] = []
    counts = [0] * costs.size
    smallest = int(costs[0])

    def rec(k: int, room: int) -> None:
        if len(out) > limit:
            return
        if k == costs.size:
            if room < smallest and any(counts):
                out.append(counts.copy())
            return
        for m in range(room // int(costs[k]), -1, -1):
            counts[k] = m
            rec(k + 1, room - m * int(costs[k]))
        counts[k] = 0

    rec(0, int(capacity))
    return out


def pattern_packing(item_costs: np.ndarray, capacities: np.ndarray, max_patterns: int = 2000) -> np.ndarray | None:
    """A worker index per item, or None when no packing exists. Raises ``OverflowError`` when the capacities
    admit more than ``max_patterns`` patterns (the caller then searches item by item)."""
    item_costs = np.asarray(item_costs, dtype=np.int64)
    capacities = np.asarray(capacities, dtype=np.int64)
    if item_costs.size == 0:
        return np.zeros(0, dtype=np.int64)
    values, wanted = np.unique(item_costs, return_counts=True)
    types, available = np.unique(capacities, return_counts=True)
    pats: list[tuple[int, list[int]]] = []
    for t, cap in enumerate(types.tolist()):
        found = maximal_packings(values, cap, max_patterns)
        if len(pats) + len(found) > max_patterns:
            raise OverflowError(f"more than {max_patterns} packing patterns")
        pats += [(t, p) for p in found]
    if not pats:
        return None
    P = np.array([p for _, p in pats], dtype=float)  # (n_patterns, n_values)
    t_of = np.array([t for t, _ in pats], dtype=np.int64)
    per_type = (t_of[None, :] == np.arange(types.size)[:, None]).astype(float)
    rows = [
        LinearConstraint(per_type, -np.inf, available.astype(float)),
        LinearConstraint(P.T, wanted.astype(float), np.inf),
    ]
    res = milp(np.zeros(len(pats)), constraints=rows, integrality=np.ones(len(pats)), bounds=Bounds(0, np.inf))
    if res.status == 2:  # infeasible
        return None
    if res.x is None:
        raise RuntimeError(f"pattern packing: the solver stopped without an answer ({res.message})")
    z = np.round(res.x).astype(np.int64)
    workers = {t: list(np.flatnonzero(capacities == cap)) for t, cap in enumerate(types.tolist())}
    queues = {int(v): list(np.flatnonzero(item_costs == v)) for v in values.tolist()}
    out = np.full(item_costs.size, -1, dtype=np.int64)
    for k in np.flatnonzero(z):
        for _ in range(int(z[k])):
            w = workers[int(t_of[k])].pop()
            for c, v in enumerate(values.tolist()):
                for _ in range(int(P[k, c])):
                    if queues[int(v)]:
                        out[queues[int(v)].pop()] = w
    if np.any(out < 0):
        raise RuntimeError("pattern packing: the patterns do not cover the items")
    return out
