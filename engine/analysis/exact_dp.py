"""Exact finite-horizon dynamic programming for tiny coRMAB instances (any domain, any arms).

The joint state is s in prod_j {0..S_j - 1} (index = mixed-radix number with arm 0 most significant). With
h steps to go,

    V_h(s) = max_{a feasible} [ E(s, a) + sum_{s'} P(s' | s, a) V_{h-1}(s') ],   V_0 = 0,

where E(s, a) is the expected step reward (its sum over the horizon equals the expected realised return).
This module maps an instance onto the shared array-level DP (:mod:`bandits.restless.joint_dp`): each feasible
action becomes one control value per arm (through the control structure), E comes from the instance's
``expected_reward`` over joint states (not necessarily additive over arms). The value reported is
sum_s rho(s) V_H(s) with rho the evaluation initial distribution (independent arms).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bandits.restless import joint_dp
from engine.analysis.occupancy_lp import control_structure
from scenarios.cormab.instance import N_STATES, CoRMABInstance

MAX_STATES = 4**8
_CHUNK = 4_000_000  # floats per temporary block (reward table)

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
    return joint_dp.joint_states(_counts(arms))


def state_index(states: np.ndarray, counts: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Mixed-radix index of arm states (J,) or (k, J) (``counts`` states per arm, default 4 each)."""
    states = np.asarray(states, dtype=np.int64)
    return joint_dp.state_index(states, _counts(states.shape[-1]) if counts is None else counts)


def initial_distribution(instance: CoRMABInstance, training: bool = False) -> np.ndarray:
    """(S,) probability of each joint initial state: arms independent, each from its initial distribution."""
    return joint_dp.product_distribution(instance.arms.initial_distribution(training), instance.arms.state_counts)


def fits(instance: CoRMABInstance) -> bool:
    """Whether the instance's joint state space is small enough for the exact DP (actions are checked on use)."""
    return float(np.prod(instance.arms.state_counts.astype(float))) <= MAX_STATES


def _check_size(instance: CoRMABInstance, n_actions: int) -> None:
    S = int(np.prod(instance.arms.state_counts.astype(float)))
    if S > MAX_STATES:
        raise ValueError(f"instance: {instance.n_arms} arms give {S} joint states; exact DP allows {MAX_STATES}")
    if S * n_actions > 50_000_000:
        raise ValueError(f"instance: {S} states x {n_actions} actions is too large for exact DP")


def reward_table(instance: CoRMABInstance, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(K, S) expected next-step reward of every action in every joint state."""
    S, J = states.shape
    step = max(1, _CHUNK // max(1, S * J))
    parts = [
        instance.expected_reward(states[:, None, :], actions[k : k + step]).T for k in range(0, len(actions), step)
    ]
    return np.concatenate(parts, axis=0)


def closed_actions(instance: CoRMABInstance, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(K, S) True where an action takes an entry unavailable in the joint state (``arms.available``)."""
    if not instance.state_dependent:
        return np.zeros((len(actions), len(states)), dtype=bool)
    closed = instance.unavailable_entries(states).astype(np.int64)  # (S, N)
    return (np.asarray(actions, dtype=np.int64) @ closed.T) > 0


def arm_matrices(instance: CoRMABInstance, actions: np.ndarray) -> np.ndarray:
    """(K, J, S, S): each arm's transition matrix under every action (through the control structure)."""
    W, values, trans, _ = control_structure(instance)
    x = np.asarray(actions, dtype=float) @ np.asarray(W, dtype=float).T  # (K, J)
    controls = np.empty(x.shape, dtype=np.int64)
    for j in range(W.shape[0]):
        hit = np.abs(x[:, j, None] - values[j][None, :]) < 1e-9
        if not np.all(hit.any(1)):
            raise ValueError(f"actions: give arm {j} a control value outside its table")
        controls[:, j] = hit.argmax(1)
    return joint_dp.control_matrices(trans, controls)


def step_tables(instance: CoRMABInstance, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reward (K, S): expected step reward of every action in every joint state, -inf where the action takes an
    entry unavailable there; arm matrices (K, J, S_max, S_max)): what one DP step needs, independent of h."""
    states = joint_states(tuple(instance.arms.state_counts.tolist()))
    reward = reward_table(instance, states, actions)
    reward[closed_actions(instance, states, actions)] = -np.inf  # state-dependent hard limits
    return reward, arm_matrices(instance, actions)


def exact_optimum(instance: CoRMABInstance, actions: np.ndarray | None = None) -> ExactResult:
    """Optimal expected total reward over the horizon by DP over all joint states and feasible actions."""
    start = time.perf_counter()
    if actions is None:
        actions = instance.action_model().enumerate()
    actions = np.asarray(actions, dtype=np.int64)
    _check_size(instance, len(actions))
    counts = tuple(instance.arms.state_counts.tolist())
    reward, mats = step_tables(instance, actions)
    values, choice = joint_dp.backward_induction(reward, mats, counts, instance.horizon)
    value = float(initial_distribution(instance) @ values[instance.horizon])
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
    lookup = {a.tobytes(): k for k, a in enumerate(actions)}
    reward = reward_table(instance, states, actions)
    closed = closed_actions(instance, states, actions)
    mats = arm_matrices(instance, actions)

    def step(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chosen = np.asarray(policy(states, h), dtype=np.int64).reshape(len(states), -1)
        try:
            k = np.array([lookup[a.tobytes()] for a in chosen])
        except KeyError as exc:
            raise ValueError(f"policy: returned an infeasible action at time_to_go {h}") from exc
        if closed[k, np.arange(len(states))].any():
            raise ValueError(f"policy: returned an action unavailable in its state at time_to_go {h}")
        used, pick = np.unique(k, return_inverse=True)
        return reward[used], mats[used], pick

    return float(initial_distribution(instance) @ joint_dp.policy_values(counts, instance.horizon, step))
