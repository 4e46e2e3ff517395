"""Capacity-constrained coRMAB: workers with capacities serve arms with costs (REFERENCE.md 1.2 item 1).

Rows over [a ; x] with x_ij = worker i serves arm j:
    worker_capacity[i]:      sum_j c_j x_ij <= C_i
    pull_needs_worker[j]:    a_j - sum_i x_ij <= 0
    assign_only_pulled[i,j]: x_ij - a_j <= 0
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.cormab import CoRMABInstance, generate_arms


class CapacityInstance(CoRMABInstance):
    """Arms, per-arm costs and per-worker capacities."""

    costs: list[int] = Field(description="cost of serving each arm (one entry per arm), >= 1")
    capacities: list[int] = Field(description="capacity of each worker, >= 0")

    @model_validator(mode="after")
    def _check(self) -> CapacityInstance:
        if len(self.costs) != self.n_arms:
            raise ValueError(f"costs: expected {self.n_arms} entries (one per arm), got {len(self.costs)}")
        if any(c < 1 for c in self.costs):
            raise ValueError("costs: every cost must be at least 1")
        if not self.capacities:
            raise ValueError("capacities: at least one worker is required")
        if any(c < 0 for c in self.capacities):
            raise ValueError("capacities: capacities must be non-negative")
        return self

    @classmethod
    def generate(cls, n_arms: int = 20, budget: int = 5, seed: int = 0, horizon: int = 20) -> CapacityInstance:
        """Reference distributions: W = budget workers, costs U{2..6}, capacities U{2..7}."""
        if budget < 1:
            raise ValueError("budget: must be at least 1 (the number of workers)")
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        rng = np.random.default_rng([seed, 1])
        return cls(
            arms=generate_arms(n_arms, budget, seed, horizon),
            costs=rng.integers(2, 7, n_arms).tolist(),
            capacities=rng.integers(2, 8, budget).tolist(),
        )

    def action_costs(self) -> np.ndarray:
        return np.asarray(self.costs, dtype=float)

    def interchangeable_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Arms of equal cost are interchangeable in the feasible set (class = distinct cost), and a feasible
        action pulls at most sum_i floor(C_i / c) arms of cost c (the dominance reduction of
        :mod:`engine.planners.reduction`)."""
        values, cls = np.unique(np.asarray(self.costs, dtype=np.int64), return_inverse=True)
        caps = np.asarray(self.capacities, dtype=np.int64)
        return cls.astype(np.int64), np.array([int((caps // c).sum()) for c in values.tolist()], dtype=np.int64)

    def action_model(self) -> ActionModel:
        J, W = self.n_arms, len(self.capacities)
        cost = np.asarray(self.costs, dtype=float)
        n = J + W * J
        x = lambda i, j: J + i * J + j  # noqa: E731
        rows, cols, vals, lo, hi, names = [], [], [], [], [], []
        r = 0
        for i in range(W):
            rows += [r] * J
            cols += [x(i, j) for j in range(J)]
            vals += cost.tolist()
            lo.append(-np.inf), hi.append(float(self.capacities[i])), names.append(f"worker_capacity[{i}]")
            r += 1
        for j in range(J):
            rows += [r] * (W + 1)
            cols += [j] + [x(i, j) for i in range(W)]
            vals += [1.0] + [-1.0] * W
            lo.append(-np.inf), hi.append(0.0), names.append(f"pull_needs_worker[{j}]")
            r += 1
        for i in range(W):
            for j in range(J):
                rows += [r, r]
                cols += [x(i, j), j]
                vals += [1.0, -1.0]
                lo.append(-np.inf), hi.append(0.0), names.append(f"assign_only_pulled[{i},{j}]")
                r += 1
        A = sp.csr_matrix((vals, (rows, cols)), shape=(r, n))
        return ActionModel(
            name="capacity", n_actions=J, A=A, row_lower=np.array(lo), row_upper=np.array(hi), row_names=names,
            aux_lower=np.zeros(W * J), aux_upper=np.ones(W * J), aux_integer=np.ones(W * J, bool),
            aux_names=[f"x[{i},{j}]" for i in range(W) for j in range(J)], downward_closed=True,
            oracle=BinPackingOracle(self.costs, self.capacities),
        )


class BinPackingOracle:
    """Exact feasibility of the capacity domain: can the pulled arms' costs be packed into the workers?"""

    def __init__(self, costs: list[int], capacities: list[int]) -> None:
        self.costs = np.asarray(costs, dtype=np.int64)
        self.capacities = np.asarray(capacities, dtype=np.int64)

    def _pack(self, a: np.ndarray) -> np.ndarray | None:
        """Worker index per pulled arm (backtracking, largest cost first), or None when impossible."""
        items = np.flatnonzero(np.asarray(a) > 0)
        costs = self.costs[items]
        if costs.sum() > self.capacities.sum() or (costs.size and costs.max() > self.capacities.max()):
            return None
        order = np.argsort(-costs, kind="stable")
        c = costs[order].tolist()
        suffix = [*np.cumsum(c[::-1])[::-1].tolist(), 0]  # suffix[k] = total cost of items k..end
        remaining = self.capacities.tolist()
        where = [-1] * len(c)
        failed: set[tuple[int, tuple[int, ...]]] = set()  # (item, multiset of rooms) proven unpackable

        def place(k: int) -> bool:
            if k == len(c):
                return True
            # rooms smaller than the smallest remaining item are wasted: the rest must hold all that is left
            if sum(r for r in remaining if r >= c[-1]) < suffix[k]:
                return False
            key = (k, tuple(sorted(remaining)))
            if key in failed:
                return False
            tried: set[int] = set()
            for i, room in enumerate(remaining):
                if room >= c[k] and room not in tried:  # equal rooms are symmetric
                    tried.add(room)
                    remaining[i] -= c[k]
                    where[k] = i
                    if place(k + 1):
                        return True
                    remaining[i] += c[k]
            failed.add(key)
            return False

        if not place(0):
            return None
        out = np.empty(len(c), dtype=np.int64)
        out[order] = where
        return out

    def is_feasible(self, a: np.ndarray) -> bool:
        return self._pack(a) is not None

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        workers = self._pack(a)
        if workers is None:
            return None
        W, J = self.capacities.size, self.costs.size
        x = np.zeros((W, J))
        x[workers, np.flatnonzero(np.asarray(a) > 0)] = 1.0
        return x.ravel()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Random first-fit: arms in random order, each to a random worker with room (a maximal packing)."""
        remaining = self.capacities.copy()
        a = np.zeros(self.costs.size, dtype=np.int64)
        for j in rng.permutation(self.costs.size):
            fits = np.flatnonzero(remaining >= self.costs[j])
            if fits.size:
                i = rng.choice(fits)
                remaining[i] -= self.costs[j]
                a[j] = 1
        return a
