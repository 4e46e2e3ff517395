"""General arms pulled under a budget: the simplest allocation family on any arm model (issue 17).

Arms are any :class:`scenarios.arms.Arms` (K >= 1 intervention levels). The action has one binary entry per
(arm, level >= 1); rows over [a] (the user's blocks follow):
    budget:        sum_{j,k} (cost_j(k) - cost_j(0)) a_jk <= B
    group_cap[j]:  sum_k a_jk <= 1          (K >= 2: at most one level per arm)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from scenarios.action_model import ActionModel
from scenarios.arms import random_arms
from scenarios.constraints.budget import BudgetBlock
from scenarios.cormab.instance import CoRMABInstance


class BudgetedInstance(CoRMABInstance):
    """Any arms, action costs from the arms (default: level k costs k), a budget per step."""

    budget: float = Field(ge=0.0, allow_inf_nan=False, description="B: the most action cost spent per step")

    @classmethod
    def generate(
        cls, n_arms: int = 20, budget: float = 5, seed: int = 0, horizon: int = 20, n_states: int = 3, n_levels: int = 1
    ) -> BudgetedInstance:
        """Random arms (:func:`scenarios.arms.random_arms`) with ``n_states`` states and ``n_levels`` levels."""
        if budget < 0:
            raise ValueError("budget: must be >= 0")
        return cls(arms=random_arms(n_arms, n_states, n_levels, seed, horizon), budget=budget)

    def action_costs(self) -> np.ndarray:
        return self.level_costs()

    def action_model(self) -> ActionModel:
        costs = self.level_costs()
        # unit costs are the block's default: it then declares its budget structure (the exact top-B oracle)
        block = BudgetBlock(limit=self.budget, costs=None if np.all(costs == 1.0) else costs.tolist())
        return self.compose_model("budgeted", [block, *self.level_blocks()])
