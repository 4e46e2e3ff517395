"""Occupancy-measure LP relaxation of a budgeted restless bandit: an upper bound on any policy's return.

Finite horizon H (per-period budget in expectation): variables mu[i, t, s, a] >= 0 with
    sum_a mu[i, 0, s, a] = init[i, s]
    sum_a mu[i, t, s', a] = sum_{s, a} P[i, a, s, s'] mu[i, t-1, s, a]          (t >= 1)
    sum_{i, s, a} cost[i, a] mu[i, t, s, a] <= budget                           (every t)
maximise sum_t discount^t sum r[i, s, a] mu[i, t, s, a].
Infinite horizon (``horizon=None``, discount < 1): one discounted occupancy per arm,
    sum_a mu[i, s', a] = init[i, s'] + discount sum_{s, a} P[i, a, s, s'] mu[i, s, a],
and the budget holds on the discounted sum: sum cost mu <= budget / (1 - discount) (a weaker relaxation,
still an upper bound). ``multipliers`` are the budget rows' duals (>= 0). The LP is the shared per-arm
occupancy LP of :mod:`bandits.restless.occupancy_model` (a control value is an action) plus the budget rows,
solved by HiGHS.
"""

from __future__ import annotations

import time

import numpy as np

from bandits.restless.arms import RestlessArms
from bandits.restless.occupancy_model import occupancy_rows, solve_lp
from bandits.restless.policy import check_budget
from bandits.validation import check_discount


class LPBound:
    """``LPBound(arms, budget, horizon, discount).fit()``; then ``value``, ``multipliers``, ``occupancy``."""

    def __init__(self, arms: RestlessArms, budget: float, horizon: int | None = 20, discount: float = 1.0) -> None:
        self.arms = RestlessArms.parse(arms)
        self.budget = check_budget(budget)
        self.discount, self.horizon = check_discount(discount, horizon)
        self.value: float = float("nan")
        self.multipliers: np.ndarray | None = None
        self.occupancy: np.ndarray | None = None
        self.seconds = 0.0

    def fit(self) -> LPBound:
        start = time.perf_counter()
        P, R, C, init = self.arms.arrays()
        T = 1 if self.horizon is None else self.horizon
        lp = occupancy_rows(P, R, init, self.horizon, self.discount, mu_upper=np.inf)
        cap = self.budget if self.horizon is not None else self.budget / (1.0 - self.discount)
        budget_rows = lp.add(*lp.usage(C, per_arm=False), T, -np.inf, cap)  # one budget row per period
        solution = solve_lp(lp)
        self.value = solution.value
        self.multipliers = np.maximum(solution.row_dual[budget_rows], 0.0)
        self.occupancy = solution.x[lp.mu]
        self.seconds = time.perf_counter() - start
        return self

    def charges(self) -> np.ndarray:
        """Charge per unit cost seen by each arm's own DP, indexed by time-to-go h-1 (finite horizon):
        the period-t dual divided by discount^t; a single charge for the infinite horizon."""
        if self.multipliers is None:
            self.fit()
        lam = np.asarray(self.multipliers)
        if self.horizon is None:
            return lam
        t = np.arange(self.horizon)
        per_t = lam / self.discount**t
        return per_t[::-1]  # time-to-go h = H - t
