"""Sampling selector: the best of K random feasible actions by Q."""

from __future__ import annotations

import hashlib
import time

import numpy as np

from engine.decision import Decision
from engine.sequoia.state_q import StateQ
from solvers.solution import HEURISTIC


class SamplingSelector:
    name = "sampling"

    def __init__(self, n_samples: int = 100, seed: int = 0) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.n_samples, self.seed = n_samples, seed

    def rng(self, q: StateQ) -> np.random.Generator:
        """A generator seeded by ``seed`` and the state's features: a state gets the same samples (and so the same
        decision) whatever was decided before it, as replays and idempotent requests expect."""
        digest = hashlib.blake2b(np.ascontiguousarray(q.features, dtype=np.float64).tobytes(), digest_size=8)
        return np.random.default_rng([int(self.seed), int.from_bytes(digest.digest(), "little")])

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        rng = self.rng(q)
        candidates = np.stack([q.model.sample(rng) for _ in range(self.n_samples)])
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
