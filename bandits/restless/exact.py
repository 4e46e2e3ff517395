"""Exact dynamic programming over the joint state of a few arms (tests and small benchmarks only).

The joint state space is the product of the arms' states; joint actions are all per-arm actions whose total
cost fits the budget. Values are expected (discounted) returns over ``horizon`` steps from the product initial
law. Both functions map restless arms onto the shared array-level DP of :mod:`bandits.restless.joint_dp` (a
per-arm action is the arm's control value; rewards r(s, a) add over arms).
"""

from __future__ import annotations

import itertools

import numpy as np

from bandits.restless import joint_dp
from bandits.restless.arms import RestlessArms
from bandits.restless.policy import RestlessPolicy
from scenarios.errors import InvalidInputError

MAX_JOINT_STATES = 4096


def _arrays(arms: RestlessArms) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], np.ndarray]:
    """(P, R, C, states per arm, initial law of the joint state)."""
    P, R, C, init = arms.arrays()
    counts = tuple(int(c) for c in arms.state_counts)
    if int(np.prod(counts)) > MAX_JOINT_STATES:
        raise InvalidInputError("arms", f"{int(np.prod(counts))} joint states is too many for exact DP")
    return P, R, C, counts, joint_dp.product_distribution(init, counts)


def joint_optimal_value(arms: RestlessArms, budget: float, horizon: int, discount: float = 1.0) -> float:
    """Value of the optimal budget-feasible policy (backward induction over the joint state)."""
    P, R, C, counts, start = _arrays(arms)
    N, A = P.shape[:2]
    acts = np.array(list(itertools.product(range(A), repeat=N)), dtype=np.int64)
    acts = acts[C[np.arange(N), acts].sum(1) <= budget + 1e-9]
    reward = joint_dp.additive_rewards(list(R), acts, counts)
    values, _ = joint_dp.backward_induction(reward, joint_dp.control_matrices(list(P), acts), counts, horizon, discount)
    return float(start @ values[horizon])


def joint_policy_value(arms: RestlessArms, policy: RestlessPolicy, horizon: int, discount: float = 1.0) -> float:
    """Exact expected return of a (deterministic, Markov) policy; its ``select`` gets all joint states."""
    P, R, _, counts, start = _arrays(arms)
    states = joint_dp.joint_states(counts)

    def step(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        acts, pick = joint_dp.distinct_rows(np.asarray(policy.select(states, time_to_go=h)).reshape(states.shape))
        return joint_dp.additive_rewards(list(R), acts, counts), joint_dp.control_matrices(list(P), acts), pick

    return float(start @ joint_dp.policy_values(counts, horizon, step, discount))
