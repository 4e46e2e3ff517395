"""Budget oracle: ``max w @ a`` with at most (or exactly) B ones: the B largest weights (positive ones only
when at most B)."""

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
        k = min(self.budget, n)
        order = np.argsort(-w, kind="stable")[:k]
        if not self.exact:
            order = order[w[order] > 0.0]
        a = np.zeros(n, dtype=np.int64)
        a[order] = 1
        return solution_for(self.model, a, w, offset, start, aux=np.zeros(self.model.n_aux))
