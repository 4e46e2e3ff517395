"""How a coRMAB observation becomes network input.

* state features: one-hot arm states (padded to the largest arm's state count S) and the fraction of time
  to go (S J + 1 numbers);
* action context: for each action entry i, the one-hot state of the arms it reaches (averaged over
  ``links[i]``) and the fraction of time to go. The network reads ``a_i * context_i``: linear in the action
  once the state is fixed, so the MILP keeps its size while each arm's pull gain can depend on its state.
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

    @property
    def dim(self) -> int:
        return self.n_arms * self.n_states + 1

    @property
    def context_dim(self) -> int:
        return self.n_states + 1

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
