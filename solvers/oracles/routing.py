"""Routing oracle: ``max w @ a`` over node sets a closed walk of T moves from the source can visit (at most B
pulls), exactly, by depth-first branch and bound (an orienteering problem on hop distances).

Only reachable nodes with a positive weight can help (the set is downward closed). Candidates are taken in
decreasing weight; a branch adds the next candidate when the model's exact feasibility test (the domain's
walk oracle: tour bounds, insertion + 2-opt, Held-Karp; its answers are cached on the model across decisions)
admits it, then skips it. A branch is cut when its value plus the largest weights that still fit in the
budget cannot beat the incumbent, so the search proves optimality when it finishes. At the time limit the
incumbent comes back with status ``time_limit`` and the root bound (the B largest positive weights).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from solvers.oracles.base import check_weights, solution_for
from solvers.solution import Solution

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel


class RoutingOracle:
    """Structure ``routing``: params ``budget`` (B), ``source`` and ``walk_length`` (T)."""

    def __init__(self, model: ActionModel) -> None:
        assert model.structure is not None
        self.model = model
        self.budget = int(model.structure.params["budget"])
        self.nodes_searched = 0

    @classmethod
    def applies(cls, model: ActionModel) -> bool:
        """Always (no size limit)."""
        return True

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution:
        start = time.perf_counter()
        n = self.model.n_actions
        w = check_weights(weights, n)
        cand = [
            j for j in np.argsort(-w, kind="stable").tolist() if w[j] > 0.0 and self.model.is_feasible(_one_hot(n, j))
        ]
        cw = w[cand]
        root_bound = float(cw[: self.budget].sum())  # the B largest positive weights
        best_value, best_set = 0.0, []
        deadline = None if time_limit is None else start + time_limit
        a = np.zeros(n, dtype=np.int64)
        chosen: list[int] = []
        self.nodes_searched = 0
        stack: list[tuple[int, float, bool]] = [(0, 0.0, True)]  # (next candidate, value, entering)
        # iterative DFS: an entry (i, value, True) branches on candidate i; (i, _, False) undoes its inclusion
        while stack:
            i, value, entering = stack.pop()
            if not entering:
                a[cand[i]] = 0
                chosen.pop()
                continue
            self.nodes_searched += 1
            if value > best_value:
                best_value, best_set = value, list(chosen)
            if deadline is not None and time.perf_counter() > deadline:
                x = np.zeros(n, dtype=np.int64)
                x[best_set] = 1
                return solution_for(self.model, x, w, offset, start, bound=root_bound + offset)
            room = self.budget - len(chosen)
            if i >= len(cand) or room <= 0:
                continue
            if value + float(cw[i : i + room].sum()) <= best_value:
                continue
            stack.append((i + 1, value, True))  # skip candidate i (explored after the inclusion branch)
            a[cand[i]] = 1
            if self.model.is_feasible(a):
                chosen.append(cand[i])
                stack.append((i, 0.0, False))
                stack.append((i + 1, value + float(cw[i]), True))
            else:
                a[cand[i]] = 0
        x = np.zeros(n, dtype=np.int64)
        x[best_set] = 1
        return solution_for(self.model, x, w, offset, start)


def _one_hot(n: int, j: int) -> np.ndarray:
    """The action pulling arm ``j`` alone (no dense n x n identity)."""
    a = np.zeros(n, dtype=np.int64)
    a[j] = 1
    return a
