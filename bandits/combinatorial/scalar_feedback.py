"""Full-bandit (scalar) feedback for semi-bandit policies: split one reward of a whole super arm into
per-arm pseudo-rewards under a linear (additive) reward model.

Model: the reward of super arm S is ``r = sum_{i in S} theta_i + noise``. The splitter keeps an estimate
``theta`` and, for an observed ``r``, returns the pseudo-rewards ``theta_i + (r - sum_{i in S} theta_i) / |S|``
for the chosen arms (each arm's current estimate plus an equal share of the residual, so they sum to ``r``
exactly), clipped to ``reward_range`` when one is given (Bernoulli Thompson sampling needs [0, 1]). It then
moves the estimate by a normalised least-mean-squares step, ``theta_i += learning_rate * residual / |S|`` on
the chosen arms. The pseudo-rewards feed the policy's ordinary semi-bandit ``update``. This is a heuristic
reduction (no regret guarantee of its own); its state is ``theta`` and a counter, deterministic given the
ordered feedback, so it can be rebuilt by replaying the feedback log.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.validation import as_float_array, check_positive
from scenarios.errors import InvalidInputError


class ScalarFeedback:
    """Turns ``(action, scalar reward)`` into per-arm rewards for :meth:`SemiBanditPolicy.update`."""

    def __init__(
        self,
        n_arms: int,
        learning_rate: float = 0.5,
        reward_range: tuple[float, float] | None = None,
        initial: float = 0.0,
    ) -> None:
        if int(n_arms) != n_arms or n_arms < 1:
            raise InvalidInputError("n_arms", f"expected a positive integer, got {n_arms!r}")
        self.learning_rate = check_positive(learning_rate, "learning_rate")
        if self.learning_rate > 1:
            raise InvalidInputError("learning_rate", "must lie in (0, 1]")
        if reward_range is not None and not float(reward_range[1]) > float(reward_range[0]):
            raise InvalidInputError("reward_range", "expected (low, high) with high > low")
        self.reward_range = None if reward_range is None else (float(reward_range[0]), float(reward_range[1]))
        self.theta = np.full(int(n_arms), float(initial))
        self.updates = 0

    def split(self, action: object, reward: float) -> np.ndarray:
        """Per-arm pseudo-rewards (NaN for arms not chosen) for one round; updates the estimate."""
        a = as_float_array(action, "action", (self.theta.size,))
        if np.any((a != 0) & (a != 1)):
            raise InvalidInputError("action", "expected a 0/1 vector")
        r = float(reward)
        if not np.isfinite(r):
            raise InvalidInputError("reward", "must be finite")
        chosen = a > 0
        out = np.full(self.theta.size, np.nan)
        k = int(chosen.sum())
        if k == 0:
            return out
        residual = r - float(self.theta[chosen].sum())
        pseudo = self.theta[chosen] + residual / k
        if self.reward_range is not None:
            pseudo = np.clip(pseudo, *self.reward_range)
        out[chosen] = pseudo
        self.theta[chosen] += self.learning_rate * residual / k
        self.updates += 1
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"learning_rate": self.learning_rate, "reward_range": self.reward_range, "updates": self.updates}
        return meta, {"theta": self.theta.copy()}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ScalarFeedback:
        theta = np.asarray(arrays["theta"], dtype=float)
        obj = cls(theta.size, meta["learning_rate"], meta["reward_range"])
        obj.theta, obj.updates = theta.copy(), int(meta["updates"])
        return obj
