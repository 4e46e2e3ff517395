"""The Lagrangian policy of the LP bound: each arm plans alone against the LP's budget prices.

With the per-period budget duals as a charge per unit cost, every arm's decoupled Q-values are exact
(backward induction, or policy iteration for the infinite horizon). An arm wants an upgrade when its net
advantage Q(s, k) - Q(s, k-1) is non-negative; the budget is then enforced per period by taking upgrades
in decreasing order of net advantage per unit marginal cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.restless.allocation import allocate
from bandits.restless.arms import RestlessArms
from bandits.restless.lp_bound import LPBound
from bandits.restless.planning import finite_values, solve_discounted
from bandits.restless.policy import RestlessPolicy, arms_arrays, arms_from_arrays, check_budget, check_states
from scenarios.errors import InvalidInputError


class LagrangianPolicy(RestlessPolicy):
    kind = "lagrangian"

    def __init__(
        self,
        arms: RestlessArms,
        budget: float,
        horizon: int | None = 20,
        discount: float = 1.0,
        bound: LPBound | None = None,
        fill_budget: bool = False,
        charges: np.ndarray | None = None,
    ) -> None:
        self.arms = RestlessArms.parse(arms)
        self.budget = check_budget(budget)
        self.fill_budget = bool(fill_budget)
        if charges is None:
            bound = bound if bound is not None else LPBound(self.arms, budget, horizon, discount).fit()
            charges, horizon, discount = bound.charges(), bound.horizon, bound.discount
        self.horizon, self.discount = horizon, float(discount)
        self.charges = np.asarray(charges, dtype=float)
        P, R, C, _ = self.arms.arrays()
        N = P.shape[0]
        if self.horizon is None:
            lam = np.full(N, float(self.charges.ravel()[0]))
            _, Qa, Qb = solve_discounted(P, R, C, lam, self.discount)
            Q = Qa - lam[:, None, None] * Qb  # (N, S, A)
        else:
            Q = finite_values(P, R, C, np.broadcast_to(self.charges, (N, self.horizon)), self.horizon, self.discount)
        self._net = np.diff(Q, axis=-1) / np.diff(C, axis=1).reshape(N, *([1] * (Q.ndim - 2)), -1)
        self._tol = 1e-9 * (1.0 + np.abs(Q).max())

    def scores(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        """Net advantage per unit marginal cost of each upgrade, shape states.shape + (levels,)."""
        s = check_states(states, self.arms.n_arms, self.arms.n_states)
        arm = np.arange(self.arms.n_arms)
        if self.horizon is None:
            return self._net[arm, s]
        if time_to_go is None or not 1 <= int(time_to_go) <= self.horizon:
            raise InvalidInputError("time_to_go", f"expected an integer in [1, {self.horizon}], got {time_to_go!r}")
        return self._net[arm, int(time_to_go) - 1, s]

    def select(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        _, _, C, _ = self.arms.arrays()
        return allocate(self.scores(states, time_to_go), C, self.budget, threshold=-self._tol, fill=self.fill_budget)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "budget": self.budget,
            "horizon": self.horizon,
            "discount": self.discount,
            "fill_budget": self.fill_budget,
        }
        return meta, arms_arrays(self.arms) | {"charges": self.charges}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LagrangianPolicy:
        return cls(
            arms_from_arrays(arrays),
            meta["budget"],
            meta["horizon"],
            meta["discount"],
            fill_budget=meta["fill_budget"],
            charges=arrays["charges"],
        )
