"""Exact feasibility of worker-slot scheduling by augmenting paths (a bipartite b-matching)."""

from __future__ import annotations

import numpy as np


class MatchingOracle:
    """Exact feasibility of the scheduling domain by augmenting paths (Kuhn's algorithm with arm copies).

    Each pulled arm is K copies; each copy must be matched to a distinct (worker, slot) node the arm shares.
    """

    def __init__(self, triples: np.ndarray, n_arms: int, n_workers: int, n_slots: int, budget: int, need: int) -> None:
        self.n_arms, self.n_slots, self.budget, self.need = n_arms, n_slots, budget, need
        self.n_nodes = n_workers * n_slots
        self.n_x = len(triples)
        node = triples[:, 0] * n_slots + triples[:, 2]
        self.adj: list[list[int]] = [node[triples[:, 1] == j].tolist() for j in range(n_arms)]
        self.col = {(int(j), int(v)): k for k, (j, v) in enumerate(zip(triples[:, 1], node, strict=True))}

    def _augment(self, arm: int, match: list[int], seen: set[int]) -> bool:
        """Find an augmenting path from a new copy of ``arm``; ``match[node]`` is the arm holding it."""
        for v in self.adj[arm]:
            if v in seen or match[v] == arm:
                continue
            seen.add(v)
            if match[v] < 0 or self._augment(match[v], match, seen):
                match[v] = arm
                return True
        return False

    def _add(self, arm: int, match: list[int]) -> bool:
        """Give ``arm`` its K nodes; on failure ``match`` is restored and False returned."""
        if len(self.adj[arm]) < self.need:
            return False
        before = match.copy()
        for _ in range(self.need):
            if not self._augment(arm, match, set()):
                match[:] = before
                return False
        return True

    def _match(self, a: np.ndarray) -> list[int] | None:
        pulled = np.flatnonzero(np.asarray(a) > 0)
        if pulled.size > self.budget or pulled.size * self.need > self.n_nodes:
            return None
        match = [-1] * self.n_nodes
        for j in pulled.tolist():
            if not self._add(j, match):
                return None
        return match

    def _matched(self, a: np.ndarray) -> list[int] | None:
        """:meth:`_match`, remembered for the last action (is_feasible then certificate: one matching)."""
        key = np.asarray(a, dtype=np.int8).tobytes()
        last = getattr(self, "_last", None)
        if last is None or last[0] != key:
            self._last = (key, self._match(a))
        return self._last[1]

    def is_feasible(self, a: np.ndarray) -> bool:
        return self._matched(a) is not None

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        match = self._matched(a)
        if match is None:
            return None
        x = np.zeros(self.n_x)
        for v, j in enumerate(match):
            if j >= 0:
                x[self.col[(j, v)]] = 1.0
        return x

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Arms in random order, each kept when it can still be matched: a maximal feasible action."""
        match = [-1] * self.n_nodes
        a = np.zeros(self.n_arms, dtype=np.int64)
        for j in rng.permutation(self.n_arms).tolist():
            if a.sum() >= self.budget:
                break
            if self._add(j, match):
                a[j] = 1
        return a
