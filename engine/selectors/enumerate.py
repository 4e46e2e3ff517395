"""Enumeration selector: exact argmax by scoring every feasible action in one batch (small sets only)."""

from __future__ import annotations

import time

from engine.decision import Decision
from engine.state_q import StateQ
from solvers.enumeration import EnumerationSolver


class EnumerateSelector:
    name = "enumerate"

    def __init__(self, max_actions: int = 200_000) -> None:
        self.max_actions = max_actions
        self._candidates: dict[int, object] = {}
        self._solver = EnumerationSolver()

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        key = id(q.model)
        if key not in self._candidates:
            self._candidates = {key: q.model.enumerate(self.max_actions)}
        sol = self._solver.solve(self._candidates[key], q.score)
        return Decision(
            sol.x.astype(int), sol.objective, sol.bound, 0.0, sol.status, time.perf_counter() - start, self.name
        )
