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
#: batch rows are scored in chunks of about this many (row, count vector, class) entries
CHUNK_ENTRIES = 1 << 22


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

    def scoring_entries(self) -> int:
        """(count vectors) x (classes): what scoring one row of a batch costs, in gathered entries."""
        return int(self._tables()[1].size)

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution:
        start = time.perf_counter()
        w = check_weights(weights, self.model.n_actions)
        return solution_for(self.model, self.argmax_batch(w[None, :])[0], w, offset, start)

    def argmax_batch(self, weights: np.ndarray) -> np.ndarray:
        """The optimal action of every row of ``weights`` (B, n) at once, (B, n) 0/1: per row, the arms sorted by
        class then by decreasing weight (ties: lower index), every feasible count vector scored by the per-class
        prefix sums, the first best vector's top arms of each class taken."""
        return self._batch(weights, margins=False)[0]

    def argmax_margin_batch(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`argmax_batch` and, per row, its margin: the best value minus the best value, with weights clipped
        at 0, of any count vector that pulls a different number of positive-weight arms in some class (inf when
        there is none). An optimiser within ``tol < margin`` of the optimum that pulls only positive-weight arms,
        the best of each class, returns this same action."""
        actions, margins = self._batch(weights, margins=True)
        assert margins is not None
        return actions, margins

    def _batch(self, weights: np.ndarray, margins: bool) -> tuple[np.ndarray, np.ndarray | None]:
        w = np.asarray(weights, dtype=float)
        if w.ndim != 2 or w.shape[1] != self.model.n_actions:
            raise ValueError(f"weights must be (B, {self.model.n_actions}), got {w.shape}")
        classes, vectors = self._tables()
        sorted_cls = np.sort(classes.cls, kind="stable")  # class of each position once a row is sorted by class
        P = classes.caps.size
        rank = np.arange(sorted_cls.size) - np.searchsorted(sorted_cls, np.arange(P))[sorted_cls]
        step = max(1, CHUNK_ENTRIES // max(1, vectors.size))
        out = np.zeros(w.shape, dtype=np.int64)
        margin = np.full(len(w), np.inf) if margins else None
        for lo in range(0, len(w), step):
            chunk = w[lo : lo + step]
            order = np.lexsort((-chunk, np.broadcast_to(classes.cls, chunk.shape)), axis=1)
            ws = np.take_along_axis(chunk, order, axis=1)
            scores = self._scores(ws, sorted_cls, rank, vectors)
            index = np.argmax(scores, axis=1)  # the first best count vector
            best = vectors[index]  # (b, P)
            np.put_along_axis(out[lo : lo + step], order, (rank[None, :] < best[:, sorted_cls]).astype(np.int64), 1)
            if margin is not None:
                margin[lo : lo + step] = _margins(scores, index, ws > 0.0, sorted_cls, vectors)
        return out, margin

    def _scores(self, ws: np.ndarray, sorted_cls: np.ndarray, rank: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """(b, V) value of every count vector: the sum over classes of the class's largest weights (rows of ``ws``
        sorted by class, then by decreasing weight)."""
        classes, b = self._tables()[0], ws.shape[0]
        P, top = classes.caps.size, int(classes.caps.max(initial=0))
        gains = np.zeros((b, P, top + 1))  # gains[r, p, k] = sum of the k largest weights of class p in row r
        keep = np.flatnonzero(rank < top)
        gains[:, sorted_cls[keep], rank[keep] + 1] = ws[:, keep]
        gains = np.cumsum(gains, axis=2).reshape(b, P * (top + 1))
        flat = np.arange(P)[:, None] * (top + 1) + vectors.T  # (P, V): where class p's count v_p sits in a row
        scores = np.take(gains, flat[0], axis=1)
        for p in range(1, P):  # class by class: (b, V) gathers, no (b, V, P) temporary
            scores += np.take(gains, flat[p], axis=1)
        return scores


def _margins(
    scores: np.ndarray, index: np.ndarray, positive: np.ndarray, sorted_cls: np.ndarray, vectors: np.ndarray
) -> np.ndarray:
    """Per row: the score of its best count vector ``index`` minus the best score of another count vector that
    pulls positive-weight arms only (at most the class's positive weights: ``positive`` flags them, sorted like
    the scores' rows). The best vector pulls positive-weight arms only (dropping one of weight <= 0 from it gives
    an earlier vector scoring no less), and every action's clipped value is the score of such a vector, its
    positive part, so this is :meth:`SchedulingOracle.argmax_margin_batch`'s margin."""
    rows = np.arange(scores.shape[0])
    one_hot = (sorted_cls[:, None] == np.arange(vectors.shape[1])[None, :]).astype(np.int64)
    counts = positive.astype(np.int64) @ one_hot  # (b, P) positive weights per class
    others = np.ones(scores.shape, dtype=bool)
    for p in range(vectors.shape[1]):
        others &= vectors[None, :, p] <= counts[:, p, None]
    others[rows, index] = False
    runner_up = np.max(np.where(others, scores, -np.inf), axis=1, initial=-np.inf)
    return scores[rows, index] - runner_up
