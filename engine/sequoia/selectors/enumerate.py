"""Enumeration selector: exact argmax by scoring every feasible action in one batch (small sets only)."""

from __future__ import annotations

import time

import numpy as np

from engine.decision import Decision
from engine.sequoia.state_q import StateQ
from scenarios.errors import InvalidInputError
from solvers.search.enumeration import EnumerationSolver


class EnumerateSelector:
    name = "enumerate"

    def __init__(self, max_actions: int = 200_000, max_seconds: float | None = 1.0) -> None:
        """``max_seconds``: when more than ``max_actions`` feasible actions are possible (by the model's cheap
        count bound), counting them may take this long before enumeration is refused (see
        :meth:`~scenarios.action_model.ActionModel.enumerate`)."""
        self.max_actions, self.max_seconds = max_actions, max_seconds
        self._candidates: dict[int, np.ndarray] = {}
        self._solver = EnumerationSolver()

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        key = q.model.uid
        if key not in self._candidates:
            try:
                self._candidates = {key: q.model.enumerate(self.max_actions, self.max_seconds)}
            except InvalidInputError:
                raise
            except ValueError as exc:  # too many feasible actions: the request (selector) is the problem
                raise InvalidInputError("selector", f"{exc}; use selector 'mip' or 'auto'") from exc
        sol = self._solver.solve(self._candidates[key], q.score)
        if sol.x is None:
            raise RuntimeError(f"no feasible action of {q.model.name!r} has a finite Q value")
        return Decision(
            sol.x.astype(int), sol.objective, sol.bound, 0.0, sol.status, time.perf_counter() - start, self.name
        )
