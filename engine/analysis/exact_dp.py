"""Exact finite-horizon dynamic programming for tiny coRMAB instances (any domain, any arms).

The joint state is s in prod_j {0..S_j - 1} (index = mixed-radix number with arm 0 most significant). With
h steps to go,

    V_h(s) = max_{a feasible} [ E(s, a) + sum_{s'} P(s' | s, a) V_{h-1}(s') ],   V_0 = 0,

where E(s, a) is the expected step reward (its sum over the horizon equals the expected realised return).
The joint transition is a product over arms, so E[V(s') | s, a] is computed arm by arm: each arm's axis of
the value tensor is replaced by its transition matrix applied to it, for all actions at once. The value
reported is sum_s rho(s) V_H(s) with rho the evaluation initial distribution (independent arms).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.analysis.occupancy_lp import control_structure
from scenarios.cormab.instance import N_STATES, CoRMABInstance

MAX_STATES = 4**8
_CHUNK = 4_000_000  # floats per temporary block

Policy = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class ExactResult:
    """Optimal value from the initial distribution, value tables and the optimal Markov policy."""

    value: float
    values: np.ndarray  # (H + 1, S): values[h] = optimal value with h steps to go
    choice: np.ndarray  # (H + 1, S): index into ``actions`` of an optimal action (row 0 unused)
    actions: np.ndarray  # (K, n_actions) every feasible action
    n_arms: int
    seconds: float
    counts: tuple[int, ...] = ()  # states per arm (default: 4 each)

    def policy(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        """Optimal action(s) for arm states (J,) or a batch (k, J) with ``time_to_go`` steps left."""
        h = int(time_to_go)
        if not 1 <= h < self.choice.shape[0]:
            raise ValueError(f"time_to_go: must lie in [1, {self.choice.shape[0] - 1}], got {h}")
        return self.actions[self.choice[h, state_index(states, self.counts or None)]]


def _counts(arms: int | Sequence[int] | np.ndarray) -> tuple[int, ...]:
    if isinstance(arms, int | np.integer):
        return (N_STATES,) * int(arms)
    return tuple(int(c) for c in np.asarray(arms).ravel())


def joint_states(arms: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """(S, J) every joint state in index order, for ``arms`` = J birth-death arms or the states per arm."""
    counts = _counts(arms)
    return np.indices(counts).reshape(len(counts), -1).T


def state_index(states: np.ndarray, counts: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Mixed-radix index of arm states (J,) or (k, J) (``counts`` states per arm, default 4 each)."""
    states = np.asarray(states, dtype=np.int64)
    c = np.asarray(_counts(states.shape[-1]) if counts is None else counts, dtype=np.int64)
    place = np.concatenate([np.cumprod(c[::-1])[::-1][1:], [1]])
    return states @ place


def initial_distribution(instance: CoRMABInstance, training: bool = False) -> np.ndarray:
    """(S,) probability of each joint initial state: arms independent, each from its initial distribution."""
    rho = instance.arms.initial_distribution(training)
    states = joint_states(instance.arms.state_counts)
    return np.prod(rho[np.arange(instance.n_arms), states], axis=1)


def _check_size(instance: CoRMABInstance, n_actions: int) -> None:
    S = int(np.prod(instance.arms.state_counts.astype(float)))
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


def _arm_matrices(instance: CoRMABInstance, actions: np.ndarray) -> np.ndarray:
    """(K, J, S, S): each arm's transition matrix under every action (through the control structure)."""
    W, values, trans, _ = control_structure(instance)
    x = np.asarray(actions, dtype=float) @ np.asarray(W, dtype=float).T  # (K, J)
    out = np.empty((len(actions), W.shape[0], *trans[0].shape[1:]))
    for j in range(W.shape[0]):
        hit = np.abs(x[:, j, None] - values[j][None, :]) < 1e-9
        if not np.all(hit.any(1)):
            raise ValueError(f"actions: give arm {j} a control value outside its table")
        out[:, j] = trans[j][hit.argmax(1)]
    return out


def _expected_next(values: np.ndarray, mats: np.ndarray, counts: tuple[int, ...]) -> np.ndarray:
    """(K, S) E[values(s') | s, a_k] for per-arm transition matrices ``mats`` (K, J, S_max, S_max)."""
    K, J = mats.shape[:2]
    S = values.shape[0]
    out = np.empty((K, S))
    step = max(1, _CHUNK // S)
    for k0 in range(0, K, step):
        m = mats[k0 : k0 + step]
        X = np.broadcast_to(values, (len(m), S)).reshape(len(m), counts[0], S // counts[0])
        for j in range(J):  # contract arm j's axis (leading), then rotate it to the back
            n = counts[j]
            Y = np.zeros_like(X)
            for t in range(n):  # products then sums (no fused multiply-add): p V(up) + (1 - p) V(down) exactly
                w = m[:, j, :n, t]
                if np.any(w):
                    Y = Y + w[:, :, None] * X[:, t, None, :]
            nxt = counts[(j + 1) % J]
            X = Y.transpose(0, 2, 1).reshape(len(m), nxt, S // nxt)
        out[k0 : k0 + step] = X.reshape(len(m), S)
    return out


def exact_optimum(instance: CoRMABInstance, actions: np.ndarray | None = None) -> ExactResult:
    """Optimal expected total reward over the horizon by DP over all joint states and feasible actions."""
    start = time.perf_counter()
    if actions is None:
        actions = instance.action_model().enumerate()
    actions = np.asarray(actions, dtype=np.int64)
    _check_size(instance, len(actions))
    counts = tuple(instance.arms.state_counts.tolist())
    states = joint_states(counts)
    H, S = instance.horizon, len(states)
    reward = _reward_table(instance, states, actions)
    mats = _arm_matrices(instance, actions)
    values = np.zeros((H + 1, S))
    choice = np.zeros((H + 1, S), dtype=np.int64)
    for h in range(1, H + 1):
        q = reward + _expected_next(values[h - 1], mats, counts)
        choice[h] = np.argmax(q, axis=0)
        values[h] = q[choice[h], np.arange(S)]
    value = float(initial_distribution(instance) @ values[H])
    return ExactResult(value, values, choice, actions, instance.n_arms, time.perf_counter() - start, counts)


def policy_value(instance: CoRMABInstance, policy: Policy, actions: np.ndarray | None = None) -> float:
    """Exact expected total reward of a deterministic Markov ``policy(states (S, J), time_to_go) -> (S, N)``
    from the evaluation initial distribution. Actions must be feasible (rows of ``actions``)."""
    if actions is None:
        actions = instance.action_model().enumerate()
    actions = np.asarray(actions, dtype=np.int64)
    _check_size(instance, len(actions))
    counts = tuple(instance.arms.state_counts.tolist())
    states = joint_states(counts)
    S = len(states)
    lookup = {a.tobytes(): k for k, a in enumerate(actions)}
    reward = _reward_table(instance, states, actions)
    mats = _arm_matrices(instance, actions)
    value = np.zeros(S)
    for h in range(1, instance.horizon + 1):
        chosen = np.asarray(policy(states, h), dtype=np.int64).reshape(S, -1)
        try:
            k = np.array([lookup[a.tobytes()] for a in chosen])
        except KeyError as exc:
            raise ValueError(f"policy: returned an infeasible action at time_to_go {h}") from exc
        q = reward + _expected_next(value, mats, counts)
        value = q[k, np.arange(S)]
    return float(initial_distribution(instance) @ value)
