"""Greedy selector: add the action entry with the best Q gain while the action stays feasible."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engine.decision import Decision
from engine.sequoia.state_q import StateQ
from scenarios.action_model import ActionModel
from solvers.solution import HEURISTIC


def greedy_ascent(
    model: ActionModel, score: Callable[[np.ndarray], np.ndarray], costs: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Start empty; repeatedly add the entry with the best gain (per unit of ``costs`` when given).

    One batched ``score`` call per round. Stops when the action is feasible and no addition improves it.
    For feasible sets that are not downward closed (e.g. exactly B interventions) additions continue
    until the action is feasible.
    """
    n = model.n_actions
    a = np.zeros(n, dtype=np.int64)
    value = float(score(a[None])[0])
    eye = np.eye(n, dtype=np.int64)
    while True:
        free = np.flatnonzero(a == 0)
        candidates = a[None, :] + eye[free]
        keep = np.fromiter((model.quickly_extendable(c) for c in candidates), dtype=bool, count=len(candidates))
        if not keep.any():
            break
        candidates = candidates[keep]
        values = score(candidates)
        gains = values - value
        best = int(np.argmax(gains if costs is None else gains / costs[free[keep]]))
        if values[best] <= value + 1e-12 and model.is_feasible(a):
            break
        a, value = candidates[best], float(values[best])
    if not model.is_feasible(a):
        raise RuntimeError(f"greedy construction ended on an infeasible action in {model.name!r}")
    return a, value


class GreedySelector:
    name = "greedy"

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        a, value = greedy_ascent(q.model, q.score)
        return Decision(a, value, float("inf"), float("inf"), HEURISTIC, time.perf_counter() - start, self.name)
