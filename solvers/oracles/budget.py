"""Budget oracle: ``max w @ a`` with at most (or exactly) B ones: the B largest weights (positive ones only
when at most B), selected by partition in O(n)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from solvers.oracles.base import check_weights, solution_for
from solvers.solution import Solution

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel


class BudgetOracle:
    """Structure ``budget``: params ``budget`` (B) and ``exact`` (sum a == B rather than <= B)."""

    def __init__(self, model: ActionModel) -> None:
        assert model.structure is not None
        self.model = model
        self.budget = int(model.structure.params["budget"])
        self.exact = bool(model.structure.params["exact"])

    @classmethod
    def applies(cls, model: ActionModel) -> bool:
        """Always (no size limit)."""
        return True

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution:
        start = time.perf_counter()
        n = self.model.n_actions
        w = check_weights(weights, n)
        order = top_k(w, min(self.budget, n))
        if not self.exact:
            order = order[w[order] > 0.0]
        a = np.zeros(n, dtype=np.int64)
        a[order] = 1
        return solution_for(self.model, a, w, offset, start, aux=np.zeros(self.model.n_aux))

    def argmax_batch(self, weights: np.ndarray) -> np.ndarray:
        """The optimal action of every row of ``weights`` (B, n) at once: (B, n) 0/1, the same sets as
        :meth:`maximise` (the first B of a stable sort by decreasing weight, positive ones only when at most B)."""
        w = np.asarray(weights, dtype=float)
        n = self.model.n_actions
        k = min(self.budget, n)
        order = np.argsort(-w, axis=1, kind="stable")[:, :k]
        rows = np.arange(len(w))[:, None]
        a = np.zeros(w.shape, dtype=np.int64)
        a[rows, order] = 1 if self.exact else (w[rows, order] > 0.0)
        return a


def top_k(w: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of ``w``, ties to the lower index (the first ``k`` of a stable sort by
    decreasing weight, as a set), in O(n) by partition."""
    n = w.size
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n:
        return np.arange(n)
    kth = np.partition(w, n - k)[n - k]  # the k-th largest value
    above = np.flatnonzero(w > kth)
    return np.concatenate([above, np.flatnonzero(w == kth)[: k - above.size]])
