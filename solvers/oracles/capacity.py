"""Capacity oracle: ``max w @ a`` where the pulled arms' costs must be packed into the workers' capacities
(a multiple knapsack), exactly, through the arms' cost classes.

Arms of equal cost are interchangeable in the rows, so an action is feasible iff its pull counts per cost
class are, and the best action with given counts takes the largest positive weights of each class. The
feasible count vectors do not depend on the objective: once per model, a boolean table over the count box
(class c holds at most ``min(arms of cost c, sum_i floor(C_i / c))``) is filled worker by worker, each worker
adding one of its maximal packings (a count vector that fits its capacity; sums saturate at the box, which
keeps exactly the feasible counts within it), then closed downwards; its maximal entries are kept. A decision
scores those few vectors with the per-class prefix sums of the sorted positive weights and takes the argmax.
Beyond :data:`MAX_TABLE` entries in the count box the oracle does not apply.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from solvers.oracles.base import check_weights, solution_for
from solvers.solution import Solution

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel

#: Largest count box (entries) the oracle accepts; J = 20 instances need a few thousand, J = 100 about 10^6
MAX_TABLE = 5_000_000


def _classes(costs: np.ndarray, capacities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct costs, the class of each arm, and the most pulls of each class a feasible action can have."""
    values, cls = np.unique(costs, return_inverse=True)
    size = np.bincount(cls.reshape(-1), minlength=values.size)
    most = np.minimum(size, (capacities[:, None] // values[None, :]).sum(axis=0))
    return values, cls.reshape(-1), most


def _maximal_packings(values: np.ndarray, most: np.ndarray, capacity: int) -> list[tuple[int, ...]]:
    """Count vectors ``p <= most`` with ``p @ values <= capacity`` to which no further arm can be added."""
    out: list[tuple[int, ...]] = []
    counts = [0] * values.size

    def rec(c: int, room: int) -> None:
        if c == values.size:
            if all(counts[k] == most[k] or values[k] > room for k in range(values.size)):
                out.append(tuple(counts))
            return
        for m in range(min(int(most[c]), room // int(values[c])), -1, -1):
            counts[c] = m
            rec(c + 1, room - m * int(values[c]))
        counts[c] = 0

    rec(0, int(capacity))
    return out


def _saturating_shift(table: np.ndarray, p: tuple[int, ...]) -> np.ndarray:
    """``out[min(n + p, top)] |= table[n]`` for every entry ``n`` (``top`` = the box's last index)."""
    for axis, k in enumerate(p):
        if k == 0:
            continue
        b = np.moveaxis(table, axis, 0)
        n = b.shape[0]
        out = np.zeros_like(b)
        if k < n:
            out[k:] = b[: n - k]
            out[n - 1] |= b[n - k :].any(axis=0)
        else:
            out[n - 1] = b.any(axis=0)
        table = np.moveaxis(out, 0, axis)
    return table


class CapacityOracle:
    """Structure ``capacity``: params ``costs`` (per arm) and ``capacities`` (per worker)."""

    def __init__(self, model: ActionModel) -> None:
        assert model.structure is not None
        self.model = model
        self.costs = np.asarray(model.structure.params["costs"], dtype=np.int64)
        self.capacities = np.asarray(model.structure.params["capacities"], dtype=np.int64)
        self._frontier: np.ndarray | None = None

    @classmethod
    def applies(cls, model: ActionModel) -> bool:
        """Whether the count box stays within :data:`MAX_TABLE` entries."""
        assert model.structure is not None
        costs = np.asarray(model.structure.params["costs"], dtype=np.int64)
        caps = np.asarray(model.structure.params["capacities"], dtype=np.int64)
        _, _, most = _classes(costs, caps)
        return float(np.prod(most + 1, dtype=float)) <= MAX_TABLE

    def frontier(self) -> np.ndarray:
        """The maximal feasible count vectors (rows, one column per cost class), once per model."""
        if self._frontier is None:
            values, _, most = _classes(self.costs, self.capacities)
            table = np.zeros(tuple((most + 1).tolist()), dtype=bool)
            table[(0,) * values.size] = True
            for cap in self.capacities.tolist():
                grown = table.copy()
                for p in _maximal_packings(values, most, cap):
                    grown |= _saturating_shift(table, p)
                table = grown
            for axis in range(values.size):  # downward closure: n is feasible if some m >= n is
                table = np.flip(np.logical_or.accumulate(np.flip(table, axis), axis=axis), axis)
            maximal = table.copy()
            for axis in range(values.size):
                up = np.zeros_like(table)
                src = [slice(None)] * values.size
                dst = [slice(None)] * values.size
                src[axis], dst[axis] = slice(1, None), slice(None, -1)
                up[tuple(dst)] = table[tuple(src)]
                maximal &= ~up
            self._frontier = np.argwhere(maximal)
        return self._frontier

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution:
        start = time.perf_counter()
        w = check_weights(weights, self.model.n_actions)
        return solution_for(self.model, self.argmax_batch(w[None, :])[0], w, offset, start)

    def argmax_batch(self, weights: np.ndarray) -> np.ndarray:
        """The optimal action of every row of ``weights`` (B, n) at once: per row, arms sorted by class then by
        decreasing weight, the per-class prefix sums of the positive weights scored on every maximal feasible
        count vector, and the best vector's top arms of each class taken."""
        w = np.asarray(weights, dtype=float)
        B, n = w.shape
        values, cls, most = _classes(self.costs, self.capacities)
        frontier = self.frontier()
        order = np.lexsort((-w, np.broadcast_to(cls, w.shape)), axis=1)  # per row: by class, largest weight first
        sorted_cls = np.sort(cls, kind="stable")
        rank = np.arange(n) - np.searchsorted(sorted_cls, np.arange(values.size))[sorted_cls]
        ws = np.take_along_axis(w, order, axis=1)
        top = int(most.max(initial=0))
        keep = (rank < top)[None, :] & (ws > 0.0)
        gains = np.zeros((B, values.size, top + 1))
        b, j = np.nonzero(keep)
        gains[b, sorted_cls[j], rank[j] + 1] = ws[b, j]
        gains = np.cumsum(gains, axis=2)
        scores = gains[:, np.arange(values.size)[None, :], frontier].sum(axis=2)  # (B, maximal count vectors)
        best = frontier[np.argmax(scores, axis=1)]  # (B, classes)
        chosen = (rank[None, :] < best[:, sorted_cls]) & (ws > 0.0)
        a = np.zeros((B, n), dtype=np.int64)
        np.put_along_axis(a, order, chosen.astype(np.int64), axis=1)
        return a
