"""Budget: ``sum_j c_j a_j <= B`` (unit costs by default), or ``== B`` with ``exact``."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel, Structure
from scenarios.constraints.base import BlockBase, rows_model


class BudgetBlock(BlockBase):
    """At most ``limit`` pulls (or cost units when ``costs`` are given), exactly ``limit`` with ``exact``."""

    kind: Literal["budget"] = "budget"
    limit: float = Field(description="B: the most pulls (or cost) per step")
    costs: list[float] | None = Field(None, description="cost of each action entry (default 1 each)")
    exact: bool = Field(False, description="require sum = B instead of sum <= B")

    @model_validator(mode="after")
    def _values(self) -> BudgetBlock:
        if not np.isfinite(self.limit) or self.limit < 0:
            raise ValueError("limit: must be a finite number >= 0")
        for j, c in enumerate(self.costs or []):
            if not np.isfinite(c) or c < 0:
                raise ValueError(f"costs[{j}]: must be a finite number >= 0")
        return self

    def check(self, n_actions: int) -> None:
        if self.costs is not None and len(self.costs) != n_actions:
            raise ValueError(f"costs: expected {n_actions} entries (one per action entry), got {len(self.costs)}")
        if self.exact and self.costs is None and (self.limit != int(self.limit) or self.limit > n_actions):
            raise ValueError(
                f"limit: exactly {self.limit:g} unit-cost pulls of {n_actions} action entries can never be made "
                "(an integer at most the number of entries)"
            )

    def cost_vector(self, n_actions: int) -> np.ndarray:
        return np.ones(n_actions) if self.costs is None else np.asarray(self.costs, dtype=float)

    def compile(self, n_actions: int) -> ActionModel:
        self.check(n_actions)
        costs = self.cost_vector(n_actions)
        lower = float(self.limit) if self.exact else -np.inf
        model = rows_model(
            "budget", n_actions, costs[None, :], [lower], [float(self.limit)], ["budget"], not self.exact
        )
        if self.costs is None:
            model.oracle = CountOracle(n_actions, int(np.floor(self.limit + 1e-9)), self.exact)
            if float(self.limit).is_integer():
                model = dataclasses.replace(
                    model, structure=Structure("budget", {"budget": int(self.limit), "exact": self.exact})
                )
        return model

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        used = float(self.cost_vector(len(a)) @ np.asarray(a, dtype=float))
        return {"budget": {"used": used, "limit": float(self.limit)}}


class CountOracle:
    """``sum a <= B`` (or ``== B``); samples are uniform B-subsets."""

    def __init__(self, n: int, budget: int, exact: bool) -> None:
        self.n, self.budget, self.exact = n, budget, exact

    def is_feasible(self, a: np.ndarray) -> bool:
        total = int(np.sum(a))
        return total == self.budget if self.exact else total <= self.budget

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        return np.zeros(0) if self.is_feasible(a) else None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.exact and self.budget > self.n:
            raise RuntimeError(f"feasible set is empty: {self.budget} of {self.n} entries required")
        a = np.zeros(self.n, dtype=np.int64)
        a[rng.choice(self.n, min(self.budget, self.n), replace=False)] = 1
        return a


__all__ = ["BudgetBlock", "CountOracle"]
