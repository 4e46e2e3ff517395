"""The base of integer-box environments: the hints the box learners read, with their defaults."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from pydantic import BaseModel


class IntegerBoxEnv(gym.Env):
    """A gymnasium environment whose action is an integer vector in a box (``MultiDiscrete`` or
    ``MultiBinary``). Subclasses set ``instance`` and override the hints where they know better."""

    instance: BaseModel | None = None

    def observation_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """(center, scale) mapping typical observations to about [-1, 1]; default: the observation space's
        finite bounds (centre 0, scale 1 where a bound is infinite)."""
        space = self.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"{type(self).__name__}: the default observation_scale needs a Box observation space")
        low, high = np.asarray(space.low, dtype=np.float64).ravel(), np.asarray(space.high, dtype=np.float64).ravel()
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        return np.where(finite, (low + high) / 2, 0.0), np.where(finite, (high - low) / 2, 1.0)

    def reward_scale_hint(self) -> float:
        """About 1 / |typical step reward|; default 1 (no scaling)."""
        return 1.0

    def potential_weights(self) -> np.ndarray | None:
        """Linear shaping potential ``phi(s) = w . s``; default None (no shaping)."""
        return None
