"""Whittle planning with unknown transitions, learnt from (state, action, next state) counts.

``method="thompson"``: posterior sampling; each replanning draws P ~ Dirichlet(prior + counts) per
(arm, action, state) and computes Whittle indices of the sample. ``method="ucb"``: indices of the posterior
mean plus an optimism bonus ``bonus * span * sqrt(log(1 + t) / (1 + n_active(arm, state)))`` that shrinks
with the number of times the arm was acted on in that state (a heuristic form of optimism).
Rewards are known: r(s, a) as (arms, states, actions), or r(s') of the state reached as (arms, states)
(coRMAB style; then r(s, a) = P(s, a) . r is recomputed from the planning model).

``posterior``: start from a :class:`scenarios.estimation.DynamicsPosterior` (e.g. estimated from a log, with
pooling across similar arms) instead of the symmetric ``prior``; each update adds the new transitions to its
counts and re-estimates the pooled prior, exactly as ``posterior.update`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.persistence import make_rng, rng_from_state, rng_state
from bandits.restless.allocation import allocate
from bandits.restless.policy import RestlessPolicy, check_budget, check_states
from bandits.restless.whittle import whittle_indices
from bandits.validation import as_float_array, as_index_array, check_discount, check_positive
from scenarios.errors import InvalidInputError
from scenarios.estimation import DynamicsPosterior, Pooling, estimate_dynamics

METHODS = ("thompson", "ucb")


class LearningWhittlePolicy(RestlessPolicy):
    kind = "learning_whittle"

    def __init__(
        self,
        rewards: np.ndarray,
        budget: float,
        n_actions: int = 2,
        costs: np.ndarray | None = None,
        discount: float = 0.95,
        horizon: int | None = None,
        method: str = "thompson",
        prior: float = 1.0,
        replan_every: int = 1,
        bonus: float = 1.0,
        fill_budget: bool = False,
        seed: int = 0,
        posterior: DynamicsPosterior | None = None,
    ) -> None:
        r = as_float_array(rewards, "rewards")
        if r.ndim not in (2, 3):
            raise InvalidInputError("rewards", f"expected (arms, states) or (arms, states, actions), got {r.shape}")
        self.rewards = r
        N, S = r.shape[:2]
        A = r.shape[2] if r.ndim == 3 else int(n_actions)
        if A < 2:
            raise InvalidInputError("n_actions", "at least two actions are required")
        c = np.arange(A, dtype=float) if costs is None else as_float_array(costs, "costs")
        if c.shape[-1:] != (A,):
            raise InvalidInputError("costs", f"expected shape ({A},) or ({N}, {A}), got {c.shape}")
        self.costs = np.broadcast_to(c, (N, A)).copy() if c.ndim == 1 else c
        if self.costs.shape != (N, A) or np.any(np.diff(self.costs, axis=1) <= 0):
            raise InvalidInputError("costs", f"expected shape ({A},) or ({N}, {A}), strictly increasing")
        if method not in METHODS:
            raise InvalidInputError("method", f"expected one of {METHODS}, got {method!r}")
        self.budget = check_budget(budget)
        self.discount, self.horizon = check_discount(discount, horizon)
        self.method = method
        self.prior = check_positive(prior, "prior")
        if int(replan_every) != replan_every or replan_every < 1:
            raise InvalidInputError("replan_every", "expected a positive integer")
        self.replan_every = int(replan_every)
        self.bonus = check_positive(bonus, "bonus", allow_zero=True)
        self.fill_budget = bool(fill_budget)
        self.seed = seed
        self.rng = make_rng(seed)
        self.counts = np.zeros((N, A, S, S))
        self.posterior = posterior
        if posterior is not None:
            if posterior.shape != (N, A, S):
                shape = posterior.shape
                raise InvalidInputError("posterior", f"expected (arms, actions, states) {(N, A, S)}, got {shape}")
            self.counts = posterior.counts.copy()
        self.steps = 0
        self.since_plan = 0
        self.plan: np.ndarray | None = None

    @property
    def n_arms(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_states(self) -> int:
        return self.rewards.shape[1]

    def planning_model(self, sample: bool) -> tuple[np.ndarray, np.ndarray]:
        """(transitions, rewards) of a posterior sample (``sample``) or of the posterior mean."""
        alpha = self.counts + self.prior if self.posterior is None else self.posterior.alpha
        if sample:
            g = self.rng.gamma(alpha)
            P = g / g.sum(-1, keepdims=True)
        else:
            P = alpha / alpha.sum(-1, keepdims=True)
        R = self.rewards if self.rewards.ndim == 3 else np.einsum("nasj,nj->nsa", P, self.rewards)
        return P, R

    def _replan(self) -> np.ndarray:
        P, R = self.planning_model(sample=self.method == "thompson")
        idx = whittle_indices((P, R, self.costs), self.discount, self.horizon, check=False)
        self.plan = plan = np.nan_to_num(idx.raw)
        self.since_plan = 0
        return plan

    def scores(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        s = check_states(states, self.n_arms, self.n_states)
        plan = self.plan
        if plan is None or self.since_plan >= self.replan_every:
            plan = self._replan()
        arm = np.arange(self.n_arms)
        if self.horizon is None:
            w = plan[arm, s]
        else:
            h = self.horizon if time_to_go is None else time_to_go
            if isinstance(h, bool) or not isinstance(h, int | np.integer) or not 1 <= h <= self.horizon:
                raise InvalidInputError("time_to_go", f"expected an integer in [1, {self.horizon}], got {time_to_go!r}")
            w = plan[arm, h - 1, s]
        if self.method == "ucb":
            span = np.ptp(self.rewards.reshape(self.n_arms, -1), axis=1) + 1e-12
            n_act = self.counts[:, 1:].sum(axis=(1, 3))  # (arms, states): times acted on
            extra = self.bonus * span[:, None] * np.sqrt(np.log1p(self.steps) / (1.0 + n_act))
            w = w + extra[arm, s][..., None]
        return w

    def select(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        w = self.scores(states, time_to_go)
        self.since_plan += 1
        return allocate(w, self.costs, self.budget, fill=self.fill_budget)

    def update(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, rewards: np.ndarray | None = None
    ) -> None:
        s = check_states(states, self.n_arms, self.n_states).reshape(-1, self.n_arms)
        a = as_index_array(actions, "actions", self.costs.shape[1]).reshape(s.shape)
        s2 = as_index_array(next_states, "next_states", self.n_states).reshape(s.shape)
        arm = np.broadcast_to(np.arange(self.n_arms), s.shape)
        np.add.at(self.counts, (arm, a, s, s2), 1.0)
        self.steps += s.shape[0]
        if self.posterior is not None:  # the same as posterior.update(new counts): pooling re-estimated on all
            self.posterior = estimate_dynamics(self.counts, self.posterior.prior_strength, self.posterior.pooling)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "budget": self.budget,
            "discount": self.discount,
            "horizon": self.horizon,
            "method": self.method,
            "prior": self.prior,
            "replan_every": self.replan_every,
            "bonus": self.bonus,
            "fill_budget": self.fill_budget,
            "seed": self.seed,
            "steps": self.steps,
            "since_plan": self.since_plan,
            "rng": rng_state(self.rng),
            "has_plan": self.plan is not None,
        }
        if self.posterior is not None:
            pooling = self.posterior.pooling
            meta["posterior"] = {
                "prior_strength": self.posterior.prior_strength,
                "pooling": None if pooling is None else pooling.to_dict(),
            }
        arrays = {"rewards": self.rewards, "costs": self.costs, "counts": self.counts}
        if self.plan is not None:
            arrays["plan"] = self.plan
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LearningWhittlePolicy:
        pol = cls(
            arrays["rewards"],
            meta["budget"],
            arrays["costs"].shape[1],
            arrays["costs"],
            meta["discount"],
            meta["horizon"],
            meta["method"],
            meta["prior"],
            meta["replan_every"],
            meta["bonus"],
            meta["fill_budget"],
            meta["seed"],
        )
        pol.counts = arrays["counts"].astype(float)
        if meta.get("posterior") is not None:
            pooling = meta["posterior"]["pooling"]
            pol.posterior = estimate_dynamics(
                pol.counts, meta["posterior"]["prior_strength"], None if pooling is None else Pooling.from_dict(pooling)
            )
        pol.steps, pol.since_plan = int(meta["steps"]), int(meta["since_plan"])
        pol.rng = rng_from_state(meta["rng"])
        pol.plan = arrays["plan"] if meta["has_plan"] else None
        return pol
