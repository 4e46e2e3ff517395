"""Exact dynamic programming over the joint state of a few arms (tests and small benchmarks only).

The joint state space has S**N states; joint actions are all per-arm actions whose total cost fits the
budget. Values are expected (discounted) returns over ``horizon`` steps from the product initial law.
"""

from __future__ import annotations

import itertools

import numpy as np

from bandits.restless.arms import RestlessArms
from bandits.restless.policy import RestlessPolicy
from scenarios.errors import InvalidInputError


def _joint(arms: RestlessArms):
    P, R, C, init = arms.arrays()
    N, _, S, _ = P.shape
    if S**N > 4096:
        raise InvalidInputError("arms", f"{S}**{N} joint states is too many for exact DP")
    states = np.array(list(itertools.product(range(S), repeat=N)), dtype=np.int64)  # arm 0 most significant
    start = np.ones(1)
    for i in range(N):
        start = np.kron(start, init[i])
    return P, R, C, states, start


def _transition(P: np.ndarray, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Joint transition matrix (J, J) when joint state j takes joint action actions[j]."""
    out = np.ones((states.shape[0], 1))
    for i in range(P.shape[0]):
        row = P[i, actions[:, i], states[:, i]]  # (J, S)
        out = (out[:, :, None] * row[:, None, :]).reshape(states.shape[0], -1)
    return out


def joint_optimal_value(arms: RestlessArms, budget: float, horizon: int, discount: float = 1.0) -> float:
    """Value of the optimal budget-feasible policy (backward induction over the joint state)."""
    P, R, C, states, start = _joint(arms)
    N, A = P.shape[:2]
    acts = np.array(list(itertools.product(range(A), repeat=N)), dtype=np.int64)
    acts = acts[C[np.arange(N), acts].sum(1) <= budget + 1e-9]
    J = states.shape[0]
    trans = [_transition(P, states, np.broadcast_to(a, (J, N))) for a in acts]
    rew = [R[np.arange(N), states, a].sum(1) for a in acts]
    V = np.zeros(J)
    for _ in range(horizon):
        V = np.max([r + discount * T @ V for r, T in zip(rew, trans, strict=True)], axis=0)
    return float(start @ V)


def joint_policy_value(arms: RestlessArms, policy: RestlessPolicy, horizon: int, discount: float = 1.0) -> float:
    """Exact expected return of a (deterministic, Markov) policy; its ``select`` gets all joint states."""
    P, R, _, states, start = _joint(arms)
    N = P.shape[0]
    V = np.zeros(states.shape[0])
    for h in range(1, horizon + 1):
        acts = np.asarray(policy.select(states, time_to_go=h)).reshape(states.shape)
        V = R[np.arange(N), states, acts].sum(1) + discount * _transition(P, states, acts) @ V
    return float(start @ V)
