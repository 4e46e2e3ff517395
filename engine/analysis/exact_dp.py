"""Exact finite-horizon dynamic programming for tiny coRMAB instances (any domain).

The joint state is s in {0..3}^J (4^J states, index = base-4 number with arm 0 most significant). With h
steps to go,

    V_h(s) = max_{a feasible} [ E(s, a) + sum_{s'} P(s' | s, a) V_{h-1}(s') ],   V_0 = 0,

where E(s, a) is the expected next-step reward (its sum over the horizon equals the expected realised
return). The joint transition is a product over arms, so E[V(s') | s, a] is computed arm by arm: each arm's
axis of the value tensor is replaced by p * V[up] + (1 - p) * V[down], for all actions at once.
The value reported is sum_s rho(s) V_H(s) with rho the evaluation initial distribution (each arm in state 1
with probability ``arms.init_prob``, else 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scenarios.cormab.instance import N_STATES, CoRMABInstance

_UP = np.minimum(np.arange(N_STATES) + 1, N_STATES - 1)
_DOWN = np.maximum(np.arange(N_STATES) - 1, 0)
MAX_STATES = 4**8
_CHUNK = 4_000_000  # floats per temporary block

Policy = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class ExactResult:
    """Optimal value from the initial distribution, value tables and the optimal Markov policy."""

    value: float
    values: np.ndarray  # (H + 1, 4^J): values[h] = optimal value with h steps to go
    choice: np.ndarray  # (H + 1, 4^J): index into ``actions`` of an optimal action (row 0 unused)
    actions: np.ndarray  # (K, n_actions) every feasible action
    n_arms: int
    seconds: float

    def policy(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        """Optimal action(s) for arm states (J,) or a batch (k, J) with ``time_to_go`` steps left."""
        h = int(time_to_go)
        if not 1 <= h < self.choice.shape[0]:
            raise ValueError(f"time_to_go: must lie in [1, {self.choice.shape[0] - 1}], got {h}")
        return self.actions[self.choice[h, state_index(states)]]


def joint_states(n_arms: int) -> np.ndarray:
    """(4^J, J) every joint state in index order."""
    return np.indices((N_STATES,) * n_arms).reshape(n_arms, -1).T


def state_index(states: np.ndarray) -> np.ndarray:
    """Base-4 index of arm states (J,) or (k, J)."""
    states = np.asarray(states, dtype=np.int64)
    return states @ (N_STATES ** np.arange(states.shape[-1] - 1, -1, -1))


def initial_distribution(instance: CoRMABInstance, training: bool = False) -> np.ndarray:
    """(4^J,) probability of each joint initial state: arms independently 1 w.p. init_prob, else 0."""
    p = instance.arms.train_init_prob if training else instance.arms.init_prob
    per_state = np.array([1.0 - p, p, 0.0, 0.0])
    return np.prod(per_state[joint_states(instance.n_arms)], axis=1)


def _check_size(instance: CoRMABInstance, n_actions: int) -> None:
    S = N_STATES**instance.n_arms
    if S > MAX_STATES:
        raise ValueError(f"instance: {instance.n_arms} arms give {S} joint states; exact DP allows {MAX_STATES}")
    if S * n_actions > 50_000_000:
        raise ValueError(f"instance: {S} states x {n_actions} actions is too large for exact DP")


def _reward_table(instance: CoRMABInstance, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(K, S) expected next-step reward of every action in every joint state."""
    S, J = states.shape
    step = max(1, _CHUNK // max(1, S * J))
    parts = [
        instance.expected_reward(states[:, None, :], actions[k : k + step]).T for k in range(0, len(actions), step)
    ]
    return np.concatenate(parts, axis=0)


def _expected_next(values: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(K, S) E[values(s') | s, a_k] for per-arm up-probabilities ``probs`` (K, J)."""
    K, J = probs.shape
    S = values.shape[0]
    out = np.empty((K, S))
    step = max(1, _CHUNK // S)
    for k0 in range(0, K, step):
        p = probs[k0 : k0 + step]
        X = np.broadcast_to(values, (len(p), S)).reshape(len(p), N_STATES, S // N_STATES)
        for j in range(J):  # contract arm j's axis (leading), then rotate it to the back
            pj = p[:, j, None, None]
            Y = pj * X[:, _UP, :] + (1.0 - pj) * X[:, _DOWN, :]
            X = Y.transpose(0, 2, 1).reshape(len(p), N_STATES, S // N_STATES)
        out[k0 : k0 + step] = X.reshape(len(p), S)
    return out


def exact_optimum(instance: CoRMABInstance, actions: np.ndarray | None = None) -> ExactResult:
    """Optimal expected total reward over the horizon by DP over all 4^J joint states and feasible actions."""
    start = time.perf_counter()
    if actions is None:
        actions = instance.action_model().enumerate()
    actions = np.asarray(actions, dtype=np.int64)
    _check_size(instance, len(actions))
    states = joint_states(instance.n_arms)
    H, S = instance.horizon, len(states)
    reward = _reward_table(instance, states, actions)
    probs = np.asarray(instance.up_probability(actions), dtype=float).reshape(len(actions), instance.n_arms)
    values = np.zeros((H + 1, S))
    choice = np.zeros((H + 1, S), dtype=np.int64)
    for h in range(1, H + 1):
        q = reward + _expected_next(values[h - 1], probs)
        choice[h] = np.argmax(q, axis=0)
        values[h] = q[choice[h], np.arange(S)]
    value = float(initial_distribution(instance) @ values[H])
    return ExactResult(value, values, choice, actions, instance.n_arms, time.perf_counter() - start)


def policy_value(instance: CoRMABInstance, policy: Policy, actions: np.ndarray | None = None) -> float:
    """Exact expected total reward of a deterministic Markov ``policy(states (S, J), time_to_go) -> (S, N)``
    from the evaluation initial distribution. Actions must be feasible (rows of ``actions``)."""
    if actions is None:
        actions = instance.action_model().enumerate()
    actions = np.asarray(actions, dtype=np.int64)
    _check_size(instance, len(actions))
    states = joint_states(instance.n_arms)
    S = len(states)
    lookup = {a.tobytes(): k for k, a in enumerate(actions)}
    reward = _reward_table(instance, states, actions)
    probs = np.asarray(instance.up_probability(actions), dtype=float).reshape(len(actions), instance.n_arms)
    value = np.zeros(S)
    for h in range(1, instance.horizon + 1):
        chosen = np.asarray(policy(states, h), dtype=np.int64).reshape(S, -1)
        try:
            k = np.array([lookup[a.tobytes()] for a in chosen])
        except KeyError as exc:
            raise ValueError(f"policy: returned an infeasible action at time_to_go {h}") from exc
        q = reward + _expected_next(value, probs)
        value = q[k, np.arange(S)]
    return float(initial_distribution(instance) @ value)
