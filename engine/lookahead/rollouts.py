"""Monte-Carlo returns-to-go of a base policy, from states spread beyond the base policy's own path.

Each episode draws a branch step tau: before it, the episode takes random feasible actions (so the recorded
states include ones the base policy would not visit but a one-step lookahead may lead to); from tau on it
follows the base policy, and every state from tau on is recorded with its time to go and the sum of the expected
step rewards still to come. A fraction ``1 - explore`` of the episodes branch at step 0 (pure base policy). All
episodes advance in lock step: one batch decision of the base policy per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

#: base policy: (arm states (E, J), time to go) -> actions (E, N)
BatchActions = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class Returns:
    """Recorded states (n, J), their times to go (n,), the base policy's actions there (n, N) and the
    returns-to-go (n,) that followed."""

    states: np.ndarray
    time_to_go: np.ndarray
    actions: np.ndarray
    returns: np.ndarray

    def __len__(self) -> int:
        return len(self.returns)


def base_policy_returns(
    instance,
    base: BatchActions,
    episodes: int,
    seed: int,
    explore: float = 0.5,
    progress: bool = False,
) -> Returns:
    """Roll ``base`` out on ``episodes`` training episodes of ``instance`` (its training initial distribution)."""
    if episodes < 1:
        raise ValueError("episodes: must be at least 1")
    if not 0.0 <= explore <= 1.0:
        raise ValueError("explore: must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    H, J = int(instance.horizon), int(instance.n_arms)
    model = instance.action_model()
    states = np.stack([instance.initial_states(rng, training=True) for _ in range(episodes)])
    branch = np.where(rng.uniform(size=episodes) < explore, rng.integers(1, max(2, H), size=episodes), 0)
    seen_states = np.empty((H, episodes, J), dtype=np.int64)
    taken = np.empty((H, episodes, model.n_actions), dtype=np.int64)
    rewards = np.empty((H, episodes))
    for t in tqdm(range(H), desc="base-policy rollouts", unit="step", disable=not progress):
        h = H - t
        actions = instance.drop_unavailable(states, np.stack([model.sample(rng) for _ in range(episodes)]))
        on = branch <= t
        if on.any():
            actions[on] = base(states[on], h)
        seen_states[t], taken[t] = states, actions
        rewards[t] = instance.expected_reward(states, actions)
        states = instance.transition(states, actions, rng.uniform(size=(episodes, J)))
    to_go = np.cumsum(rewards[::-1], axis=0)[::-1]  # (H, E): reward from step t to the end
    keep = np.arange(H)[:, None] >= branch[None, :]
    times = np.broadcast_to((H - np.arange(H))[:, None], (H, episodes))
    return Returns(seen_states[keep], times[keep].copy(), taken[keep], to_go[keep].copy())
