"""Sampling selector: the best of K random feasible actions by Q."""

from __future__ import annotations

import time

import numpy as np

from engine.decision import Decision
from engine.sequoia.state_q import StateQ
from solvers.solution import HEURISTIC


class SamplingSelector:
    name = "sampling"

    def __init__(self, n_samples: int = 100, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.rng = np.random.default_rng(seed)

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        candidates = np.stack([q.model.sample(self.rng) for _ in range(self.n_samples)])
        if q.closed is not None:  # entries unavailable at this state dropped (feasible on a downward-closed set)
            candidates[:, q.closed] = 0
            if not q.model.downward_closed:  # elsewhere only the samples still feasible are candidates
                candidates = candidates[[q.model.is_feasible(c) for c in candidates]]
                if not len(candidates):
                    from engine.sequoia.selectors.greedy import greedy_ascent

                    candidates = greedy_ascent(q.model, q.score, closed=q.closed)[0][None]
        values = q.score(candidates)
        best = int(np.argmax(values))
        return Decision(
            candidates[best],
            float(values[best]),
            float("inf"),
            float("inf"),
            HEURISTIC,
            time.perf_counter() - start,
            self.name,
        )
