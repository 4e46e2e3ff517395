"""Oracle interface: the best feasible subset of base arms for given per-arm weights (maximise the sum)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bandits.validation import as_float_array


@dataclass
class OracleResult:
    """``action``: 0/1 vector over base arms; ``exact``: whether optimality is proven for this call."""

    action: np.ndarray
    value: float
    exact: bool


class Oracle:
    """Subclasses set ``kind`` and ``n_arms`` and implement ``_solve`` (and ``solve_batch`` when it can be
    vectorised) plus ``get_state`` / ``from_state``."""

    kind: ClassVar[str] = "oracle"
    always_exact: ClassVar[bool] = True
    n_arms: int

    def weights(self, w: object) -> np.ndarray:
        return as_float_array(w, "weights", (self.n_arms,))

    def solve(self, weights: object) -> OracleResult:
        w = self.weights(weights)
        action, exact = self._solve(w)
        return OracleResult(action, float(w @ action), exact)

    def _solve(self, w: np.ndarray) -> tuple[np.ndarray, bool]:
        raise NotImplementedError

    def solve_batch(self, weights: np.ndarray) -> np.ndarray:
        """Actions (n, arms) for weight rows (n, arms)."""
        w = as_float_array(weights, "weights", (None, self.n_arms))
        return np.stack([self._solve(row)[0] for row in w]) if len(w) else np.zeros((0, self.n_arms), np.int64)

    def is_feasible(self, action: np.ndarray) -> bool:
        raise NotImplementedError

    def exploration_law(self, action: np.ndarray) -> tuple[float, np.ndarray] | None:
        """Exact (probability of ``action``, arm marginals) under uniform random weights, when known."""
        return None

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Oracle:
        raise NotImplementedError
