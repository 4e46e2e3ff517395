"""How a coRMAB observation becomes network input.

* state features: one-hot arm states (padded to the largest arm's state count S) and the fraction of time
  to go (S J + 1 numbers);
* action context: for each action entry i, the one-hot state of the arms it reaches (averaged over
  ``links[i]``) and the fraction of time to go. The network reads ``a_i * context_i``: linear in the action
  once the state is fixed, so the MILP keeps its size while each arm's pull gain can depend on its state.
* arm-wise rows (:mod:`engine.sequoia.armwise_network`): the action context, the static descriptors of the
  arms each action reaches (``action_features``) and the prior's gain for the action at this state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class StateEncoder:
    n_arms: int
    n_states: int
    horizon: int
    links: np.ndarray | None = field(default=None, compare=False)  # (n_actions, n_arms); None = identity
    action_features: np.ndarray | None = field(default=None, compare=False)  # (n_actions, f) static descriptors
    gain_scale: float = 1.0  # the prior's gains are divided by this (a typical Q magnitude of the instance)

    @property
    def dim(self) -> int:
        return self.n_arms * self.n_states + 1

    @property
    def context_dim(self) -> int:
        return self.n_states + 1

    @property
    def armwise_dim(self) -> int:
        """Width of an arm-wise input row: context, static descriptors, prior gain."""
        f = 0 if self.action_features is None else self.action_features.shape[1]
        return self.context_dim + f + 1

    def _onehot(self, states: np.ndarray) -> np.ndarray:
        return np.eye(self.n_states, dtype=np.float32)[np.asarray(states, dtype=np.int64)]

    def _ttg(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        lead = np.asarray(states).shape[:-1]
        return np.broadcast_to(np.asarray(time_to_go, dtype=np.float32) / self.horizon, lead)

    def encode(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        """State features; one state (J,) or a batch (k, J) with time_to_go scalar or (k,)."""
        onehot = self._onehot(states)
        flat = onehot.reshape(*onehot.shape[:-2], self.n_arms * self.n_states)
        return np.concatenate([flat, self._ttg(states, time_to_go)[..., None]], axis=-1)

    def context(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        """Action context, shape (..., n_actions, n_states + 1)."""
        onehot = self._onehot(states)
        if self.links is not None:
            weights = self.links / np.maximum(self.links.sum(axis=1, keepdims=True), 1e-12)
            onehot = np.einsum("ij,...jk->...ik", weights.astype(np.float32), onehot)
        ttg = self._ttg(states, time_to_go)[..., None, None]
        ttg = np.broadcast_to(ttg, (*onehot.shape[:-1], 1))
        return np.concatenate([onehot, ttg], axis=-1)

    def armwise_rows(
        self, states: np.ndarray, time_to_go: np.ndarray | int, gains: np.ndarray | None = None
    ) -> np.ndarray:
        """Arm-wise input rows (..., n_actions, armwise_dim); ``gains`` (..., n_actions) are the prior's (None: 0)."""
        context = self.context(states, time_to_go)
        lead = context.shape[:-1]
        parts = [context]
        if self.action_features is not None:
            parts.append(
                np.broadcast_to(self.action_features.astype(np.float32), (*lead, self.action_features.shape[1]))
            )
        g = np.zeros(lead, np.float32) if gains is None else np.asarray(gains, np.float32) / self.gain_scale
        parts.append(np.broadcast_to(g, lead)[..., None])
        return np.concatenate(parts, axis=-1)
