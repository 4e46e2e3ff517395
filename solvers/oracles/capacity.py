"""Capacity oracle: ``max w @ a`` where the pulled arms' costs must be packed into the workers' capacities
(a multiple knapsack), exactly, by dynamic programming over the workers' used capacities.

Only arms with a positive weight can help (the set is downward closed). Table entry ``V[u]`` is the best
weight of the arms considered so far packed with exactly ``u_i`` capacity used on worker i; each arm either
stays out or goes to a worker with room (one shifted maximum per worker, vectorised over the table). The
argmax is read back through one stored choice table per arm. The table has ``prod_i (C_i + 1)`` entries
(capacities capped at the total cost of the arms); beyond :data:`MAX_TABLE` entries, or :data:`MAX_CHOICES`
stored choices, the oracle does not apply.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from solvers.oracles.base import check_weights, solution_for
from solvers.solution import Solution

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel

#: Largest DP table (entries) the oracle accepts (the generated instances' capacities give at most 8^5); the
#: read-back keeps one int16 choice table per positive arm
MAX_TABLE = 1_000_000
MAX_CHOICES = 50_000_000


def table_size(capacities: np.ndarray, total_cost: int) -> int:
    return int(np.prod(np.minimum(capacities, total_cost) + 1, dtype=float))


class CapacityOracle:
    """Structure ``capacity``: params ``costs`` (per arm) and ``capacities`` (per worker)."""

    def __init__(self, model: ActionModel) -> None:
        assert model.structure is not None
        self.model = model
        self.costs = np.asarray(model.structure.params["costs"], dtype=np.int64)
        self.capacities = np.asarray(model.structure.params["capacities"], dtype=np.int64)

    @classmethod
    def applies(cls, model: ActionModel) -> bool:
        """Whether the DP table stays within :data:`MAX_TABLE` for every objective."""
        assert model.structure is not None
        costs = np.asarray(model.structure.params["costs"], dtype=np.int64)
        caps = np.asarray(model.structure.params["capacities"], dtype=np.int64)
        size = table_size(caps, int(costs.sum()))
        return size <= MAX_TABLE and size * costs.size <= MAX_CHOICES

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution:
        start = time.perf_counter()
        n = self.model.n_actions
        w = check_weights(weights, n)
        items = np.flatnonzero((w > 0.0) & (self.costs <= self.capacities.max(initial=0)))
        caps = np.minimum(self.capacities, int(self.costs[items].sum()))
        W = caps.size
        V = np.full(tuple((caps + 1).tolist()), -np.inf)
        V[(0,) * W] = 0.0
        choices = []  # per arm: 1 + the worker that takes it at each table entry, 0 when it stays out
        for j in items.tolist():
            c, gain = int(self.costs[j]), float(w[j])
            new, choice = V.copy(), np.zeros(V.shape, dtype=np.int16)
            for i in np.flatnonzero(caps >= c).tolist():
                dst, src = [slice(None)] * W, [slice(None)] * W
                dst[i], src[i] = slice(c, None), slice(0, int(caps[i]) + 1 - c)
                candidate = V[tuple(src)] + gain
                better = candidate > new[tuple(dst)]
                new[tuple(dst)][better] = candidate[better]
                choice[tuple(dst)][better] = i + 1
            V = new
            choices.append(choice)
        u = np.array(np.unravel_index(int(np.argmax(V)), V.shape), dtype=np.int64)
        a = np.zeros(n, dtype=np.int64)
        x = np.zeros((self.capacities.size, n))
        for k in range(items.size - 1, -1, -1):  # read the argmax back: which arm went to which worker
            worker = int(choices[k][tuple(u)]) - 1
            if worker >= 0:
                j = int(items[k])
                a[j], x[worker, j] = 1, 1.0
                u[worker] -= int(self.costs[j])
        return solution_for(self.model, a, w, offset, start, aux=x.ravel())
