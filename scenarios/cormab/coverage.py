"""Coverage: arms grouped into districts whose step reward saturates, so rewards do not add up (issue 16, item 3).

Arms are the coRMAB base arms (pull = move up with p_active, else p_passive; per-arm reward table
r_j(s)), pulled under a budget sum_j a_j <= B. They are partitioned into districts D_1..D_K; the step reward
is

    R(s') = sum_d min(cap_d, sum_{j in D_d} r_j(s'_j)),

concave (a capped sum) in each district's arm rewards, so the total is not a sum over arms: a second good
arm at its top state in a district whose cap one arm already nearly fills adds (almost) nothing. A per-arm
index policy values arms on their own rewards and keeps pulling two good arms of the same district; the
optimal policy spreads its pulls across districts.

Exactness and bounds:

* ``expected_reward(states, action)`` is the exact E[R(s') | s, a]: each district's joint next-state law
  (2^|D_d| up/down patterns, districts are small) is enumerated. ``realised_reward`` is R(s').
* The exact DP (:mod:`engine.analysis.exact_dp`) builds its reward table from ``expected_reward`` over joint states
  and actions, and the transition is still a product over arms, so the DP optimum is exact for R.
* The occupancy LP bound (:mod:`engine.analysis.occupancy_bound`) and the planners use the additive per-arm table
  ``arms.rewards``: since rewards are non-negative, min(cap, sum r) <= sum r, so the additive LP is a
  relaxation of the true problem and its certified value remains a valid upper bound (a loose one: it
  ignores the caps). The planners (Whittle, Lagrangian) optimise the additive surrogate.
* ``myopic_milp`` models the capped reward exactly: one binary per (district, pull pattern of its arms).
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.constraints.attach import with_user_rows
from scenarios.constraints.budget import BudgetBlock
from scenarios.cormab.instance import N_STATES, CoRMABInstance, generate_arms
from solvers.milp import MatrixMILP

MAX_DISTRICT = 8  # 2^8 next-state patterns per district


class CoverageInstance(CoRMABInstance):
    """Arms in districts with a capped (saturating) district reward, pulled under a budget."""

    districts: list[list[int]] = Field(description="the arms of each district: a partition of 0..J-1")
    caps: list[float] = Field(description="cap of each district's step reward (one entry per district), >= 0")
    budget: int = Field(description="at most this many arms pulled per step", ge=0)

    @model_validator(mode="after")
    def _check(self) -> CoverageInstance:
        J = self.n_arms
        if not self.districts:
            raise ValueError("districts: at least one district is required")
        members = [j for d in self.districts for j in d]
        if sorted(members) != list(range(J)):
            raise ValueError(f"districts: must partition the arms 0..{J - 1} (each arm in exactly one district)")
        if any(len(d) > MAX_DISTRICT for d in self.districts):
            raise ValueError(f"districts: at most {MAX_DISTRICT} arms per district")
        if len(self.caps) != len(self.districts):
            raise ValueError(f"caps: expected {len(self.districts)} entries (one per district), got {len(self.caps)}")
        caps = np.asarray(self.caps, dtype=float)
        if not np.all(np.isfinite(caps)) or np.any(caps < 0):
            raise ValueError("caps: must be finite and non-negative")
        if np.any(self.arms.birth_death("coverage")[2] < 0):
            raise ValueError("arms: rewards must be non-negative (the additive bound needs min(cap, sum r) <= sum r)")
        if self.budget > J:
            raise ValueError(f"budget: at most the number of arms ({J}), got {self.budget}")
        return self

    @classmethod
    def generate(
        cls,
        n_arms: int = 6,
        budget: int = 2,
        seed: int = 0,
        horizon: int = 20,
        district_size: int = 3,
        n_good: int | None = None,
        cap_low: float = 1.0,
        cap_high: float = 1.25,
    ) -> CoverageInstance:
        """Random districts and caps.

        Parameters:
            n_arms: J, the number of arms (J <= 6 for the exact DP).
            budget: B, at most B arms pulled per step.
            seed: the instance's random seed (arms, districts, caps).
            horizon: steps per episode.
            district_size: arms per district; the arms of a random permutation are cut into consecutive
                districts of this size (the last one may be smaller).
            n_good: how many arms are good (top-state reward 4..6, the others 1..3, as in the reference
                distributions); default ``min(J, 2 B)``, so that good arms share districts.
            cap_low, cap_high: cap_d = U[cap_low, cap_high] x the largest top-state reward in district d, so
                one arm at its top state nearly fills its district and a second adds at most the margin.
        """
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        if not 0 <= budget <= n_arms:
            raise ValueError(f"budget: must lie in [0, {n_arms}] (the number of arms)")
        if not 1 <= district_size <= MAX_DISTRICT:
            raise ValueError(f"district_size: must lie in [1, {MAX_DISTRICT}]")
        good = min(n_arms, 2 * budget) if n_good is None else n_good
        if not 0 <= good <= n_arms:
            raise ValueError(f"n_good: must lie in [0, {n_arms}]")
        if not 0 <= cap_low <= cap_high:
            raise ValueError("cap_low: must satisfy 0 <= cap_low <= cap_high")
        arms = generate_arms(n_arms, good, seed, horizon)
        rng = np.random.default_rng([seed, 16, 3, 2])
        perm = rng.permutation(n_arms)
        districts = [sorted(perm[k : k + district_size].tolist()) for k in range(0, n_arms, district_size)]
        top = np.asarray(arms.arrival_rewards)[:, N_STATES - 1]
        caps = [float(rng.uniform(cap_low, cap_high) * top[d].max()) for d in districts]
        return cls(arms=arms, districts=districts, caps=caps, budget=budget)

    # ------------------------------------------------------------------------------- structure
    def action_model(self) -> ActionModel:
        """One budget block (plus the user's constraints)."""
        return self.compose_model("coverage", [BudgetBlock(limit=self.budget)])

    def _district_expected(self, states: np.ndarray, p: np.ndarray, d: int) -> np.ndarray:
        """E[min(cap_d, sum_{j in D_d} r_j(s'_j))] given arm states and up-probabilities (..., J)."""
        _, _, table = self.arms.birth_death("coverage")
        members = np.asarray(self.districts[d])
        s = states[..., members]
        r_up = table[members, np.minimum(s + 1, N_STATES - 1)]
        r_dn = table[members, np.maximum(s - 1, 0)]
        q = p[..., members]
        total = np.zeros(np.broadcast_shapes(s.shape, q.shape)[:-1])
        for pattern in itertools.product((False, True), repeat=len(members)):
            up = np.asarray(pattern)
            prob = np.prod(np.where(up, q, 1.0 - q), axis=-1)
            reward = np.sum(np.where(up, r_up, r_dn), axis=-1)
            total = total + prob * np.minimum(self.caps[d], reward)
        return total

    def expected_reward(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Exact E[sum_d min(cap_d, sum_{j in D_d} r_j(s'_j))]; broadcasts over leading batch dimensions."""
        states = np.asarray(states, dtype=np.int64)
        p = np.asarray(self.up_probability(action), dtype=float)
        states, p = np.broadcast_arrays(states, p)
        total = np.zeros(states.shape[:-1])
        for d in range(len(self.districts)):
            total = total + self._district_expected(states, p, d)
        return total

    def realised_reward(self, next_states: np.ndarray, states: object = None, action: object = None) -> float:
        _, _, table = self.arms.birth_death("coverage")
        r = table[np.arange(self.n_arms), np.asarray(next_states)]
        return float(sum(min(cap, r[members].sum()) for members, cap in zip(self.districts, self.caps, strict=True)))

    def myopic_milp(self, states: np.ndarray) -> MatrixMILP:
        """Maximise the exact expected capped reward: per district one binary per pull pattern of its arms
        (sum = 1, pattern entries = the pulls), weighted by that pattern's expected district reward."""
        states = np.asarray(states, dtype=np.int64)
        J = self.n_arms
        p0, p1, _ = self.arms.birth_death("coverage")
        cols_c, rows, cols, vals, lo, hi, names, col_names = [], [], [], [], [], [], [], []
        n_cols = J
        rows += [0] * J
        cols += list(range(J))
        vals += [1.0] * J
        lo.append(-np.inf)
        hi.append(float(self.budget))
        names.append("budget")
        r = 1
        for d, members in enumerate(self.districts):
            patterns = list(itertools.product((0, 1), repeat=len(members)))
            start = n_cols
            for pattern in patterns:
                pulls = np.zeros(J, dtype=np.int64)
                pulls[members] = pattern
                p = np.where(pulls > 0, p1, p0)
                cols_c.append(float(self._district_expected(states, p, d)))
                col_names.append(f"z[{d},{''.join(map(str, pattern))}]")
            z = start + np.arange(len(patterns))
            n_cols += len(patterns)
            rows += [r] * len(patterns)  # one pattern per district
            cols += z.tolist()
            vals += [1.0] * len(patterns)
            lo.append(1.0)
            hi.append(1.0)
            names.append(f"one_pattern[{d}]")
            r += 1
            for k, j in enumerate(members):  # the pattern's entry for arm j equals a_j
                on = [int(z[m]) for m, pattern in enumerate(patterns) if pattern[k]]
                rows += [r] * (len(on) + 1)
                cols += [*on, j]
                vals += [1.0] * len(on) + [-1.0]
                lo.append(0.0)
                hi.append(0.0)
                names.append(f"pattern_is_pull[{j}]")
                r += 1
        A = sp.csr_matrix((vals, (rows, cols)), shape=(r, n_cols))
        milp = MatrixMILP(
            c=np.concatenate([np.zeros(J), cols_c]),
            A=A,
            row_lower=np.array(lo),
            row_upper=np.array(hi),
            col_lower=np.zeros(n_cols),
            col_upper=np.ones(n_cols),
            integer=np.ones(n_cols, dtype=bool),
            sense="max",
            offset=0.0,
            row_names=names,
            col_names=[f"a[{j}]" for j in range(J)] + col_names,
        )
        return with_user_rows(milp, self.n_actions, self.constraints)
