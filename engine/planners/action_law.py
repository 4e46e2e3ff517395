"""Action-law planner: the Lagrangian index policy with its prices read from the action-law LP.

The Lagrangian planner (:mod:`engine.planners.lagrangian`) prices each arm through the occupancy LP's link row
sum_i w_ji q_ti = E[x_jt]: one price per unit of control, so an arm's future value is linear in how many
interventions reach it. Where the response is a sigmoid (one intervention does little, two or three much more)
that price cannot tell them apart. The action-law LP (:mod:`engine.analysis.action_law_bound`) ties each arm's
value marginal P(x_jt = v) to the law of the joint action, and its duals give one price per (step, arm, value).
With those prices the LP separates into one DP per arm as before; the decision maximises

    table[j, v] = e_j(s_j, v) + E[ V_j(t + 1, s'_j) | x_j = v ]

jointly over the feasible set, exactly like the Lagrangian planner. Applies when the feasible set lists within
``max_actions`` (the LP prices every listed action at every round of its column generation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analysis.action_law_bound import action_law_upper_bound
from engine.planners.arm_values import backward_values
from engine.planners.lagrangian import LagrangianPlanner
from scenarios.errors import InvalidInputError

#: the default largest feasible set the planner lists
MAX_ACTIONS = 20_000


def applies(instance, max_actions: int = MAX_ACTIONS) -> bool:
    """Whether the instance's feasible set provably has at most ``max_actions`` members (its cheap count bound)."""
    return instance.action_model().count_upper_bound() <= max_actions


class ActionLawPlanner(LagrangianPlanner):
    name = "action_law"
    option_names = ("max_actions",)

    def __init__(self, instance, max_actions: int = MAX_ACTIONS, **options: Any) -> None:
        if isinstance(max_actions, bool) or not isinstance(max_actions, int) or max_actions < 1:
            raise InvalidInputError("max_actions", f"expected a positive integer, got {max_actions!r}")
        super().__init__(instance, max_actions=max_actions, **options)
        self.max_actions = max_actions
        #: the action-law LP's certified bound and whether its column generation converged (set by fit)
        self.bound: float | None = None
        self.converged: bool | None = None

    def _fit(self) -> None:
        try:
            law = action_law_upper_bound(self.instance, max_actions=self.max_actions)
        except ValueError as err:
            raise InvalidInputError(
                "planner", f"action_law: {err}; the 'lagrangian' planner has no such limit"
            ) from err
        if not np.isfinite(law.lp_value):
            raise RuntimeError("action-law LP: no solution")
        self.bound, self.converged = law.bound, law.converged
        st = self.structure
        adjusted = st.reward[:, None, :, :] - law.mu_price
        self._values = backward_values(np.where(st.valid[:, None, None, :], adjusted, -np.inf), st)
