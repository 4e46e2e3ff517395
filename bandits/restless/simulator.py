"""Simulate restless arms under a policy, vectorised over arms and parallel episodes.

Every step draws one uniform per (episode, arm) whatever the actions, so two policies run with the same
seed see common random numbers. The step reward is sum_i r_i(s_i, a_i) (for coRMAB arms this is the
expected next-step reward, the reference's evaluation metric).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.persistence import make_rng
from bandits.restless.arms import RestlessArms
from bandits.restless.policy import RestlessPolicy, check_budget
from bandits.validation import as_index_array
from scenarios.errors import InvalidInputError


class RestlessSimulator:
    """``reset(n_episodes) -> states``; ``step(actions) -> (next_states, rewards per episode)``."""

    def __init__(self, arms: RestlessArms, budget: float | None = None, seed: int = 0) -> None:
        self.arms = RestlessArms.parse(arms)
        self.budget = None if budget is None else check_budget(budget)
        self.rng = make_rng(seed)
        self.states = np.zeros((1, self.arms.n_arms), dtype=np.int64)

    def reset(self, n_episodes: int = 1) -> np.ndarray:
        _, _, _, init = self.arms.arrays()
        u = self.rng.uniform(size=(n_episodes, self.arms.n_arms))
        self.states = np.minimum((u[..., None] > np.cumsum(init, -1)).sum(-1), self.arms.n_states - 1)
        return self.states.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P, R, C, _ = self.arms.arrays()
        N = self.arms.n_arms
        a = as_index_array(actions, "actions", self.arms.n_actions).reshape(self.states.shape)
        arm = np.arange(N)
        if self.budget is not None:
            spent = C[arm, a].sum(-1)
            if np.any(spent > self.budget + 1e-9):
                raise InvalidInputError("actions", f"cost {float(spent.max())} exceeds the budget {self.budget}")
        rewards = R[arm, self.states, a].sum(-1)
        u = self.rng.uniform(size=self.states.shape)
        cum = np.cumsum(P[arm, a, self.states], -1)
        self.states = np.minimum((u[..., None] > cum).sum(-1), self.arms.n_states - 1)
        return self.states.copy(), rewards


def simulate(
    arms: RestlessArms,
    policy: RestlessPolicy,
    budget: float,
    horizon: int,
    n_episodes: int = 100,
    seed: int = 0,
    discount: float = 1.0,
    parallel: bool = True,
) -> dict[str, Any]:
    """Mean (discounted) return over ``n_episodes`` of ``horizon`` steps, with its standard error.

    ``parallel`` runs all episodes as one batch (planning policies); otherwise episodes run one after the
    other, so a learning policy carries what it learnt from one episode to the next.
    """
    sim = RestlessSimulator(arms, budget, seed)
    batches = [n_episodes] if parallel else [1] * n_episodes
    returns = []
    for size in batches:
        states = sim.reset(size)
        total = np.zeros(size)
        for t in range(horizon):
            acts = policy.select(states if size > 1 else states[0], time_to_go=horizon - t)
            nxt, rew = sim.step(acts)
            policy.update(states, np.asarray(acts).reshape(states.shape), nxt, rew)
            total += discount**t * rew
            states = nxt
        returns.append(total)
    r = np.concatenate(returns)
    stderr = float(r.std(ddof=1) / np.sqrt(r.size)) if r.size > 1 else float("nan")
    return {"mean": float(r.mean()), "stderr": stderr, "returns": r}
