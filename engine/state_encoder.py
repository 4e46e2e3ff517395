"""How a coRMAB observation becomes network input: one-hot arm states and the fraction of time to go."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StateEncoder:
    """Features ``[onehot(s_1) .. onehot(s_J), time_to_go / horizon]`` (4J + 1 numbers)."""

    n_arms: int
    n_states: int
    horizon: int

    @property
    def dim(self) -> int:
        return self.n_arms * self.n_states + 1

    def encode(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        """Works on one state (J,) or a batch (k, J) with time_to_go scalar or (k,)."""
        states = np.asarray(states, dtype=np.int64)
        onehot = np.eye(self.n_states, dtype=np.float32)[states]
        flat = onehot.reshape(*states.shape[:-1], self.n_arms * self.n_states)
        ttg = np.broadcast_to(np.asarray(time_to_go, dtype=np.float32) / self.horizon, states.shape[:-1])
        return np.concatenate([flat, ttg[..., None]], axis=-1)
