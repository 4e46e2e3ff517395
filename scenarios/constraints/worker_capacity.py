"""Worker capacity: each pulled entry is served by one worker whose remaining capacity covers its cost.

Rows over [a ; x] with x_ij = worker i serves entry j:
    worker_capacity[i]:      sum_j c_j x_ij <= C_i
    pull_needs_worker[j]:    a_j - sum_i x_ij <= 0
    assign_only_pulled[i,j]: x_ij - a_j <= 0
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel, Structure
from scenarios.constraints.base import BlockBase
from scenarios.constraints.bin_packing import BinPackingOracle


class WorkerCapacityBlock(BlockBase):
    """A knapsack per worker: the pulled entries' costs packed into the workers' capacities."""

    kind: Literal["worker_capacity"] = "worker_capacity"
    costs: list[int] = Field(description="cost of serving each action entry, >= 1")
    capacities: list[int] = Field(description="capacity of each worker, >= 0")

    @model_validator(mode="after")
    def _values(self) -> WorkerCapacityBlock:
        for j, c in enumerate(self.costs):
            if c < 1:
                raise ValueError(f"costs[{j}]: must be >= 1")
        if not self.capacities:
            raise ValueError("capacities: at least one worker is required")
        for i, c in enumerate(self.capacities):
            if c < 0:
                raise ValueError(f"capacities[{i}]: must be >= 0")
        return self

    def check(self, n_actions: int) -> None:
        if len(self.costs) != n_actions:
            raise ValueError(f"costs: expected {n_actions} entries (one per action entry), got {len(self.costs)}")

    def compile(self, n_actions: int) -> ActionModel:
        self.check(n_actions)
        J, W = n_actions, len(self.capacities)
        cost = np.asarray(self.costs, dtype=float)
        x = J + np.arange(W * J).reshape(W, J)  # column of x_ij
        ij = np.arange(W * J)
        worker = sp.csr_matrix((np.tile(cost, W), (np.repeat(np.arange(W), J), x.ravel())), shape=(W, J + W * J))
        need = sp.csr_matrix(
            (
                np.r_[np.ones(J), -np.ones(W * J)],
                (np.r_[np.arange(J), np.tile(np.arange(J), W)], np.r_[np.arange(J), x.ravel()]),
            ),
            shape=(J, J + W * J),
        )
        only = sp.csr_matrix(
            (np.r_[np.ones(W * J), -np.ones(W * J)], (np.r_[ij, ij], np.r_[x.ravel(), np.tile(np.arange(J), W)])),
            shape=(W * J, J + W * J),
        )
        return ActionModel(
            name="worker_capacity",
            n_actions=J,
            A=sp.vstack([worker, need, only], format="csr"),
            row_lower=np.full(W + J + W * J, -np.inf),
            row_upper=np.r_[np.asarray(self.capacities, dtype=float), np.zeros(J + W * J)],
            row_names=[f"worker_capacity[{i}]" for i in range(W)]
            + [f"pull_needs_worker[{j}]" for j in range(J)]
            + [f"assign_only_pulled[{i},{j}]" for i in range(W) for j in range(J)],
            aux_lower=np.zeros(W * J),
            aux_upper=np.ones(W * J),
            aux_integer=np.ones(W * J, bool),
            aux_names=[f"x[{i},{j}]" for i in range(W) for j in range(J)],
            downward_closed=True,
            oracle=BinPackingOracle(self.costs, self.capacities),
            structure=Structure("capacity", {"costs": list(self.costs), "capacities": list(self.capacities)}),
        )

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"workers": {"i": [entries served by worker i]}}`` for the workers that serve something."""
        x = np.round(np.asarray(aux, dtype=float)).reshape(len(self.capacities), -1) > 0
        return {"workers": {str(i): np.flatnonzero(row).tolist() for i, row in enumerate(x) if row.any()}}
