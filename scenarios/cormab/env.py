"""A gymnasium environment for any coRMAB domain, finite horizon, time-to-go in the observation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scenarios.cormab.instance import CoRMABInstance
from scenarios.errors import InvalidInputError
from scenarios.validation import as_int_vector


class CoRMABEnv(gym.Env):
    """Observation ``[s_1..s_J, time_to_go]``; action a binary vector checked by the ActionModel.

    ``step`` returns the realised reward (sum_j r_j(s'_j), or sum_j r_j(s_j, a_j)) and, in ``info``, the
    expected next-step reward.
    Exactly one uniform per arm is drawn every step whatever the action, so equal seeds give common random
    numbers across policies.
    """

    def __init__(self, instance: CoRMABInstance, training: bool = False) -> None:
        self.instance = instance
        self.training = training
        self._model = instance.action_model()
        J, H = instance.n_arms, instance.horizon
        self.observation_space = gym.spaces.MultiDiscrete([*instance.arms.state_counts.tolist(), H + 1])
        self.action_space = gym.spaces.MultiBinary(instance.n_actions)
        self._states = np.zeros(J, dtype=np.int64)
        self._time_to_go = 0

    @property
    def scenario(self) -> str:
        return self._model.name

    def action_model(self):
        return self._model

    def observation(self) -> np.ndarray:
        return np.concatenate([self._states, [self._time_to_go]]).astype(np.int64)

    def split_observation(self, obs: object, field: str = "state") -> tuple[np.ndarray, int]:
        """Validate ``[s_1..s_J, time_to_go]`` (or the arm states alone: time-to-go = horizon)."""
        J, H = self.instance.n_arms, self.instance.horizon
        arr: Any = np.asarray(obs, dtype=object) if isinstance(obs, str) else obs  # input of any shape
        if np.ndim(arr) == 1 and len(arr) == J:
            return self._arm_states(arr, field), H
        if np.ndim(arr) == 1 and len(arr) != J + 1:
            raise InvalidInputError(
                field,
                f"expected {J} entries (the arm states) or {J + 1} (the arm states then "
                f"the time-to-go), got {len(arr)} (shape ({len(arr)},))",
            )
        full = as_int_vector(arr, field, J + 1, -(2**62), 2**62)
        ttg = int(full[J])
        if not 1 <= ttg <= H:  # often J + 1 arm states sent for J arms: say so, not only that the last is large
            raise InvalidInputError(
                field,
                f"got {J + 1} entries: {J} arm states then the time-to-go, which must lie "
                f"in [1, {H}] but is {ttg}; this instance has {J} arms (send {J} arm states "
                f"alone, or {J} then the time-to-go)",
            )
        return self._arm_states(full[:J], field), ttg

    def _arm_states(self, value: object, field: str) -> np.ndarray:
        """Arm states, each within its own arm's states."""
        counts = self.instance.arms.state_counts
        states = as_int_vector(value, field, len(counts), 0, int(counts.max()) - 1)
        bad = np.flatnonzero(states >= counts)
        if bad.size:
            j = int(bad[0])
            raise InvalidInputError(
                field, f"entry {j} = {int(states[j])} is outside [0, {int(counts[j]) - 1}] (arm {j})"
            )
        return states

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        training = options.get("training", self.training)
        initial = self.instance.initial_states(self.np_random, training=training)
        if options.get("states") is not None:
            initial = self._arm_states(options["states"], "states")
        self._states = initial
        ttg = options.get("time_to_go", self.instance.horizon)
        horizon = self.instance.horizon
        if isinstance(ttg, bool) or not isinstance(ttg, int | np.integer) or not 1 <= ttg <= horizon:
            raise InvalidInputError("time_to_go", f"expected an integer in [1, {horizon}], got {ttg!r}")
        self._time_to_go = int(ttg)
        return self.observation(), {"time_to_go": self._time_to_go}

    def step(self, action):
        if self._time_to_go <= 0:
            raise RuntimeError("episode is over: call reset() first")
        a = self._model.check(action)
        self.instance.check_available(self._states, a)
        uniforms = self.np_random.uniform(size=self.instance.n_arms)
        expected = float(self.instance.expected_reward(self._states, a))
        before, self._states = self._states, self.instance.transition(self._states, a, uniforms)
        reward = self.instance.realised_reward(self._states, before, a)
        self._time_to_go -= 1
        terminated = self._time_to_go == 0
        info = {"expected_reward": expected, "time_to_go": self._time_to_go}
        return self.observation(), reward, terminated, False, info
