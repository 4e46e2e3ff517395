"""Interventions: the action entries are interventions that reach arms; exactly (or at most) ``count`` are used,
and optionally at most ``arm_limits[j]`` of the chosen interventions reach arm j.

Rows over [a] (no auxiliary variables):
    budget:          sum_i a_i = B            (<= B without ``exact``)
    arm_limit[j]:    sum_{i reaches j} a_i <= L_j
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel, Structure
from scenarios.constraints.base import BlockBase, keeps_downward_closure, rows_model
from scenarios.constraints.budget import CountOracle


class InterventionsBlock(BlockBase):
    """``weights[j][i]`` > 0 when intervention i reaches arm j; a count of interventions and per-arm limits."""

    kind: Literal["interventions"] = "interventions"
    weights: list[list[float]] = Field(description="w[j][i]: intensity intervention i gives arm j (arms x entries)")
    count: int = Field(ge=0, description="B: interventions used per step")
    exact: bool = Field(True, description="exactly B interventions (else at most B)")
    arm_limits: list[int] | None = Field(None, description="at most this many chosen interventions reach arm j")

    @model_validator(mode="after")
    def _values(self) -> InterventionsBlock:
        if not self.weights:
            raise ValueError("weights: at least one arm is required")
        n = len(self.weights[0])
        for j, row in enumerate(self.weights):
            if len(row) != n:
                raise ValueError(f"weights[{j}]: expected {n} entries like weights[0], got {len(row)}")
            if any(not np.isfinite(w) or w < 0 for w in row):
                raise ValueError(f"weights[{j}]: intensities must be finite and >= 0")
        if self.arm_limits is not None:
            if len(self.arm_limits) != len(self.weights):
                raise ValueError(f"arm_limits: expected {len(self.weights)} entries (one per arm)")
            for j, cap in enumerate(self.arm_limits):
                if cap < 0:
                    raise ValueError(f"arm_limits[{j}]: must be >= 0")
        return self

    def check(self, n_actions: int) -> None:
        if len(self.weights[0]) != n_actions:
            raise ValueError(
                f"weights[0]: expected {n_actions} entries (one per intervention), got {len(self.weights[0])}"
            )
        if self.exact and self.count > n_actions:
            raise ValueError(f"count: at most the number of interventions ({n_actions}), got {self.count}")

    def reach(self) -> np.ndarray:
        """(arms, interventions) 0/1 matrix."""
        return (np.asarray(self.weights, dtype=float) > 0).astype(float)

    def compile(self, n_actions: int) -> ActionModel:
        self.check(n_actions)
        coefs, lower, upper, names = (
            [np.ones(n_actions)],
            [float(self.count) if self.exact else -np.inf],
            [float(self.count)],
            ["budget"],
        )
        if self.arm_limits is not None:
            coefs += list(self.reach())
            lower += [-np.inf] * len(self.arm_limits)
            upper += [float(c) for c in self.arm_limits]
            names += [f"arm_limit[{j}]" for j in range(len(self.arm_limits))]
        A = np.vstack(coefs)
        closed = not self.exact and keeps_downward_closure(A, np.asarray(lower), np.asarray(upper))
        model = rows_model("interventions", n_actions, A, lower, upper, names, closed)
        if self.arm_limits is None:
            model.oracle = CountOracle(n_actions, self.count, self.exact)
            model = dataclasses.replace(
                model, structure=Structure("budget", {"budget": self.count, "exact": self.exact})
            )
        return model

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"interventions": {"i": [arms reached]}}`` for the chosen interventions."""
        reach = self.reach()
        chosen = np.flatnonzero(np.asarray(a) > 0).tolist()
        return {"interventions": {str(i): np.flatnonzero(reach[:, i]).tolist() for i in chosen}}
