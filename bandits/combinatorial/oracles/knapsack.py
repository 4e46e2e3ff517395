"""Knapsack oracle: maximise the total weight of chosen arms subject to sum(size) <= capacity.

Integer sizes use an exact dynamic programme over capacities (vectorised over capacities and over batches
of weight vectors; sequential over arms, as a DP must be). Fractional sizes, or tables larger than
``max_table`` cells, use the MILP through a back-end, HiGHS by default (exact when it reports optimality).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bandits.action_models import budget_action_model
from bandits.combinatorial.oracles.base import Oracle
from bandits.validation import as_float_array, check_positive
from scenarios.errors import InvalidInputError
from solvers.backends.registry import Backend, resolve_backend

if TYPE_CHECKING:
    from engine.protocols import MilpBackend


class KnapsackOracle(Oracle):
    kind = "knapsack"

    def __init__(
        self,
        sizes: object,
        capacity: float,
        max_table: int = 20_000_000,
        time_limit: float = 60.0,
        backend: Backend = "highs",
    ) -> None:
        """``time_limit``: seconds per MILP solve (the answer is then flagged not exact when it stops early);
        ``backend``: the MILP back-end, a registered name (saved with the oracle) or a solver object."""
        self.sizes = as_float_array(sizes, "sizes", (None,))
        if self.sizes.size == 0 or np.any(self.sizes < 0):
            raise InvalidInputError("sizes", "expected at least one non-negative size")
        self.capacity = check_positive(capacity, "capacity", allow_zero=True)
        self.n_arms = int(self.sizes.size)
        integral = np.all(self.sizes == np.round(self.sizes)) and self.capacity == np.floor(self.capacity)
        self.use_dp = bool(integral and self.n_arms * (self.capacity + 1) <= max_table)
        self.max_table = int(max_table)
        self.time_limit = float(time_limit)
        self.backend = backend
        self._solver: MilpBackend | None = None

    @property
    def method(self) -> str:
        return "dp" if self.use_dp else "milp"

    def _solve(self, w: np.ndarray) -> tuple[np.ndarray, bool]:
        if self.use_dp:
            return self._dp(w[None])[0], True
        model = budget_action_model(self.n_arms, self.capacity, self.sizes)
        if self._solver is None:
            self._solver = resolve_backend(self.backend, mip_rel_gap=1e-9)
        sol = self._solver.solve(model.milp(np.maximum(w, 0.0)), time_limit=self.time_limit, mip_rel_gap=1e-9)
        if sol.x is None:
            return np.zeros(self.n_arms, dtype=np.int64), False
        return np.round(sol.x[: self.n_arms]).astype(np.int64) & (w > 0), sol.status == "optimal"

    def solve_batch(self, weights: np.ndarray) -> np.ndarray:
        w = as_float_array(weights, "weights", (None, self.n_arms))
        return self._dp(w) if self.use_dp else super().solve_batch(w)

    def _dp(self, w: np.ndarray) -> np.ndarray:
        """0/1 knapsack for each row of ``w`` (n, arms); only positive weights are worth taking."""
        n, cap = w.shape[0], int(self.capacity)
        size = self.sizes.astype(np.int64)
        best = np.zeros((n, cap + 1))
        keep = np.zeros((self.n_arms, n, cap + 1), dtype=bool)
        for j in range(self.n_arms):  # sequential over arms, vectorised over rows and capacities
            v = np.maximum(w[:, j], 0.0)[:, None]
            s = size[j]
            if s > cap:
                continue
            cand = best[:, : cap + 1 - s] + v
            better = cand > best[:, s:] + 1e-12
            keep[j, :, s:] = better
            best[:, s:] = np.where(better, cand, best[:, s:])
        out = np.zeros((n, self.n_arms), dtype=np.int64)
        c = np.full(n, cap)
        rows = np.arange(n)
        for j in range(self.n_arms - 1, -1, -1):
            take = keep[j, rows, c]
            out[take, j] = 1
            c = c - np.where(take, size[j], 0)
        return out

    def is_feasible(self, action: np.ndarray) -> bool:
        return float(self.sizes @ np.asarray(action)) <= self.capacity + 1e-9

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        backend = self.backend if isinstance(self.backend, str) else "highs"  # a solver object is not saved
        meta = {"kind": self.kind, "capacity": self.capacity, "max_table": self.max_table, "backend": backend}
        return meta, {"sizes": self.sizes}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> KnapsackOracle:
        return cls(arrays["sizes"], meta["capacity"], meta["max_table"], backend=str(meta.get("backend", "highs")))
