"""Occupancy-measure LP relaxation of a budgeted restless bandit: an upper bound on any policy's return.

Finite horizon H (per-period budget in expectation): variables mu[i, t, s, a] >= 0 with
    sum_a mu[i, 0, s, a] = init[i, s]
    sum_a mu[i, t, s', a] = sum_{s, a} P[i, a, s, s'] mu[i, t-1, s, a]          (t >= 1)
    sum_{i, s, a} cost[i, a] mu[i, t, s, a] <= budget                           (every t)
maximise sum_t discount^t sum r[i, s, a] mu[i, t, s, a].
Infinite horizon (``horizon=None``, discount < 1): one discounted occupancy per arm,
    sum_a mu[i, s', a] = init[i, s'] + discount sum_{s, a} P[i, a, s, s'] mu[i, s, a],
and the budget holds on the discounted sum: sum cost mu <= budget / (1 - discount) (a weaker relaxation,
still an upper bound). Solved by scipy's HiGHS; ``multipliers`` are the budget rows' duals (>= 0).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from bandits.restless.arms import RestlessArms
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
        N, A, S, _ = P.shape
        T = 1 if self.horizon is None else self.horizon
        n_var = N * T * S * A
        var = np.arange(n_var).reshape(N, T, S, A)
        row = np.arange(N * T * S).reshape(N, T, S)
        # inflow of every (i, t, s'): + sum_a mu[i, t, s', a]
        r_in = np.repeat(row.ravel(), A)
        c_in = var.ravel()
        v_in = np.ones(n_var)
        # outflow: - g P[i, a, s, s'] mu[i, t-1, s, a]   (finite: t >= 1, g = 1; discounted: same t, g = gamma)
        g = 1.0 if self.horizon is not None else self.discount
        i, t, s, a, s2 = np.indices((N, T, S, A, S)).reshape(5, -1)
        prob = P[i, a, s, s2]
        keep = prob > 0
        if self.horizon is not None:
            keep &= t >= 1
            src_t = t - 1
        else:
            src_t = t
        r_out, c_out, v_out = row[i, t, s2][keep], var[i, src_t, s, a][keep], -g * prob[keep]
        A_eq = sp.csr_matrix(
            (np.concatenate([v_in, v_out]), (np.concatenate([r_in, r_out]), np.concatenate([c_in, c_out]))),
            shape=(N * T * S, n_var),
        )
        b_eq = np.zeros((N, T, S))
        b_eq[:, 0, :] = init
        # budget rows, one per period
        bi, bt, _, ba = np.indices((N, T, S, A)).reshape(4, -1)
        A_ub = sp.csr_matrix((C[bi, ba], (bt, var.ravel())), shape=(T, n_var))
        cap = self.budget if self.horizon is not None else self.budget / (1.0 - self.discount)
        weight = self.discount ** np.arange(T) if self.horizon is not None else np.ones(T)
        c = -(R[:, None, :, :] * weight[None, :, None, None]).ravel()
        res = linprog(
            c, A_ub=A_ub, b_ub=np.full(T, cap), A_eq=A_eq, b_eq=b_eq.ravel(), bounds=(0, None), method="highs"
        )
        if res.status != 0:
            raise RuntimeError(f"LP bound failed: {res.message}")
        self.value = float(-res.fun)
        self.multipliers = np.maximum(-np.asarray(res.ineqlin.marginals), 0.0)
        self.occupancy = np.asarray(res.x).reshape(N, T, S, A)
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
