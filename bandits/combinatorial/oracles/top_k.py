"""Top-k oracle: the k arms with the largest weights (exact)."""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np

from bandits.combinatorial.oracles.base import Oracle
from bandits.validation import as_float_array
from scenarios.errors import InvalidInputError


class TopKOracle(Oracle):
    """Exactly ``k`` arms (ties broken by lower arm index); ``allow_fewer`` drops non-positive weights."""

    kind = "top_k"

    def __init__(self, n_arms: int, k: int, allow_fewer: bool = False) -> None:
        if int(n_arms) != n_arms or n_arms < 1:
            raise InvalidInputError("n_arms", f"expected a positive integer, got {n_arms!r}")
        if int(k) != k or not 1 <= k <= n_arms:
            raise InvalidInputError("k", f"expected an integer in [1, {n_arms}], got {k!r}")
        self.n_arms, self.k, self.allow_fewer = int(n_arms), int(k), bool(allow_fewer)

    def _solve(self, w: np.ndarray) -> tuple[np.ndarray, bool]:
        return self._batch(w[None])[0], True

    def _batch(self, w: np.ndarray) -> np.ndarray:
        top = np.argsort(-w, axis=1, kind="stable")[:, : self.k]
        out = np.zeros(w.shape, dtype=np.int64)
        np.put_along_axis(out, top, 1, 1)
        if self.allow_fewer:
            out &= (w > 0).astype(np.int64)
        return out

    def solve_batch(self, weights: np.ndarray) -> np.ndarray:
        return self._batch(as_float_array(weights, "weights", (None, self.n_arms)))

    def is_feasible(self, action: np.ndarray) -> bool:
        n = int(np.sum(action))
        return n <= self.k if self.allow_fewer else n == self.k

    def exploration_law(self, action: np.ndarray) -> tuple[float, np.ndarray] | None:
        if self.allow_fewer:
            return None
        # 1 / C(n, k) as a float: 0.0 once C(n, k) passes the float range (e.g. k = 5,000 of 10,000 arms)
        prob = 1.0 / float(comb(self.n_arms, self.k)) if comb(self.n_arms, self.k) < 2**1023 else 0.0
        prob = prob if self.is_feasible(action) else 0.0
        return prob, np.full(self.n_arms, self.k / self.n_arms)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"kind": self.kind, "n_arms": self.n_arms, "k": self.k, "allow_fewer": self.allow_fewer}, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TopKOracle:
        return cls(meta["n_arms"], meta["k"], meta["allow_fewer"])
