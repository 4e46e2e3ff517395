"""Bipartite matching oracle: base arms are edges (left, right); choose a maximum-weight matching (exact).

Non-edges and non-positive edges get weight 0 in a dense assignment problem solved by
``scipy.optimize.linear_sum_assignment``; pairs of weight 0 are then left unmatched. Parallel edges keep
the heaviest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from bandits.combinatorial.oracles.base import Oracle
from bandits.validation import as_index_array
from scenarios.errors import InvalidInputError


class MatchingOracle(Oracle):
    kind = "matching"

    def __init__(self, n_left: int, n_right: int, edges: object) -> None:
        if int(n_left) != n_left or int(n_right) != n_right or n_left < 1 or n_right < 1:
            raise InvalidInputError("n_left", "n_left and n_right must be positive integers")
        self.n_left, self.n_right = int(n_left), int(n_right)
        e = as_index_array(edges, "edges", max(self.n_left, self.n_right), (None, 2))
        if e.shape[0] == 0:
            raise InvalidInputError("edges", "at least one edge is required")
        if np.any(e[:, 0] >= self.n_left) or np.any(e[:, 1] >= self.n_right):
            raise InvalidInputError("edges", "an endpoint is outside the graph")
        self.edges = e
        self.n_arms = int(e.shape[0])

    def _solve(self, w: np.ndarray) -> tuple[np.ndarray, bool]:
        cell = self.edges[:, 0] * self.n_right + self.edges[:, 1]
        order = np.lexsort((-w, cell))  # by cell, heaviest first
        first = np.ones(order.size, dtype=bool)
        first[1:] = cell[order][1:] != cell[order][:-1]
        best = order[first]  # heaviest edge of each cell
        W = np.zeros(self.n_left * self.n_right)
        E = np.full(self.n_left * self.n_right, -1)
        W[cell[best]] = np.maximum(w[best], 0.0)
        E[cell[best]] = best
        W2, E2 = W.reshape(self.n_left, self.n_right), E.reshape(self.n_left, self.n_right)
        rows, cols = linear_sum_assignment(W2, maximize=True)
        chosen = E2[rows, cols][(W2[rows, cols] > 0) & (E2[rows, cols] >= 0)]
        out = np.zeros(self.n_arms, dtype=np.int64)
        out[chosen] = 1
        return out, True

    def is_feasible(self, action: np.ndarray) -> bool:
        used = self.edges[np.asarray(action) > 0]
        return len(np.unique(used[:, 0])) == len(used) and len(np.unique(used[:, 1])) == len(used)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"kind": self.kind, "n_left": self.n_left, "n_right": self.n_right}, {"edges": self.edges}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MatchingOracle:
        return cls(meta["n_left"], meta["n_right"], arrays["edges"])
