"""Scheduling oracle: ``max w @ a`` over at most B arms that each get K distinct (worker, slot) nodes they
share, every node serving one arm, exactly, through the arms' slot-set classes.

Arms with the same slot set are interchangeable (each can use exactly the same nodes), so an action is
feasible iff its pull counts per class ``n_p`` are, and the best action with given counts takes the ``n_p``
largest weights of each class. Counts are feasible iff they satisfy the budget and Hall's condition of the
transportation problem "class p needs K n_p nodes": for every set U of slots, K times the pulls of the
classes whose slots lie inside U is at most the number of nodes in U (every other set of classes is dominated
by the one that fills the union of its slots). The feasible count vectors do not depend on the objective:
they are listed once per model (pruned by the budget and Hall's condition class by class), and a decision is
one gather and one argmax over them. With more than :data:`MAX_VECTORS` count vectors, or more than
:data:`MAX_SUBSETS` slot sets and class sets to check, the oracle does not apply.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from solvers.oracles.base import check_weights, solution_for
from solvers.solution import Solution

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel

MAX_VECTORS = 2_000_000
MAX_SUBSETS = 1 << 14


class _Classes:
    """Slot-set classes of the arms, their caps and the Hall rows ``K * members @ n <= capacity``."""

    def __init__(self, params: dict) -> None:
        S, self.budget, self.need = int(params["n_slots"]), int(params["budget"]), int(params["need"])
        worker = np.zeros((len(params["worker_slots"]), S), dtype=bool)
        for i, slots in enumerate(params["worker_slots"]):
            worker[i, list(slots)] = True
        arm = np.zeros((len(params["arm_slots"]), S), dtype=bool)
        for j, slots in enumerate(params["arm_slots"]):
            arm[j, list(slots)] = True
        per_slot = worker.sum(axis=0).astype(np.int64)
        self.patterns, cls = np.unique(arm, axis=0, return_inverse=True)
        self.cls = cls.reshape(-1).astype(np.int64)
        P = self.patterns.shape[0]
        sizes = np.bincount(self.cls, minlength=P)
        self.caps = np.minimum(np.minimum(sizes, self.budget), (self.patterns @ per_slot) // self.need)
        used = np.flatnonzero(self.patterns.any(axis=0))  # slots some arm can use
        if used.size <= P:  # Hall over sets of slots: the classes inside each set
            self.n_subsets = 1 << used.size
            if self.n_subsets <= MAX_SUBSETS:
                inside = ((np.arange(self.n_subsets)[:, None] >> np.arange(used.size)) & 1).astype(bool)
                self.members = ~np.any(self.patterns[:, used][None, :, :] & ~inside[:, None, :], axis=2)
                self.capacity = inside.astype(np.int64) @ per_slot[used]
        else:  # Hall over sets of classes: the nodes of the union of their slots
            self.n_subsets = 1 << P
            if self.n_subsets <= MAX_SUBSETS:
                self.members = ((np.arange(self.n_subsets)[:, None] >> np.arange(P)) & 1).astype(bool)
                self.capacity = (self.members.astype(np.int64) @ self.patterns.astype(np.int64) > 0) @ per_slot

    def n_vectors_bound(self) -> int:
        """The number of count vectors within the caps and the budget (before Hall's condition)."""
        ways = np.zeros(self.budget + 1, dtype=float)
        ways[0] = 1.0
        for m in self.caps.tolist():
            ways = np.array([ways[max(0, s - m) : s + 1].sum() for s in range(self.budget + 1)])
        return int(min(ways.sum(), 1e18))

    def vectors(self) -> np.ndarray:
        """Every feasible count vector (rows), class by class, pruned by the budget and Hall's condition."""
        out = np.zeros((1, 0), dtype=np.int64)
        load = np.zeros((1, self.members.shape[0]), dtype=np.int64)  # K * pulls inside each Hall set
        for p, m in enumerate(self.caps.tolist()):
            k = np.arange(m + 1)
            out = np.concatenate([np.repeat(out, m + 1, axis=0), np.tile(k, out.shape[0])[:, None]], axis=1)
            load = np.repeat(load, m + 1, axis=0) + self.need * np.outer(np.tile(k, load.shape[0]), self.members[:, p])
            keep = (out.sum(axis=1) <= self.budget) & np.all(load <= self.capacity, axis=1)
            out, load = out[keep], load[keep]
        return out


class SchedulingOracle:
    """Structure ``scheduling``: params ``budget``, ``need`` (K), ``n_slots``, ``arm_slots``, ``worker_slots``."""

    def __init__(self, model: ActionModel) -> None:
        assert model.structure is not None
        self.model = model
        self._classes: _Classes | None = None
        self._vectors: np.ndarray | None = None

    @classmethod
    def applies(cls, model: ActionModel) -> bool:
        assert model.structure is not None
        classes = _Classes(dict(model.structure.params))
        return classes.n_subsets <= MAX_SUBSETS and classes.n_vectors_bound() <= MAX_VECTORS

    def _tables(self) -> tuple[_Classes, np.ndarray]:
        if self._classes is None or self._vectors is None:
            assert self.model.structure is not None
            self._classes = _Classes(dict(self.model.structure.params))
            self._vectors = self._classes.vectors()
        return self._classes, self._vectors

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution:
        start = time.perf_counter()
        n = self.model.n_actions
        w = check_weights(weights, n)
        classes, vectors = self._tables()
        order = np.lexsort((-w, classes.cls))  # by class, largest weight first
        first = np.searchsorted(classes.cls[order], np.arange(classes.caps.size))
        top = int(classes.caps.max(initial=0))
        rank = np.arange(n) - first[classes.cls[order]]  # position of each arm within its class
        gains = np.zeros((classes.caps.size, top + 1))  # gains[p, k] = sum of the k largest weights of class p
        keep = rank < top
        gains[classes.cls[order][keep], rank[keep] + 1] = w[order][keep]
        gains = np.cumsum(gains, axis=1)
        values = gains[np.arange(classes.caps.size)[None, :], vectors].sum(axis=1)
        best = vectors[int(np.argmax(values))]
        a = np.zeros(n, dtype=np.int64)
        a[order[rank < best[classes.cls[order]]]] = 1
        return solution_for(self.model, a, w, offset, start)
