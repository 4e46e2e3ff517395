"""The exact expected one-step reward as a fixed linear part of Q: Q(s, a) = base(s) + gains(s) . a + net(s, a).

For arm-pull domains (capacity, scheduling, routing) the expected next-step reward is separable and linear in
the pulls, so ``base(s) + gains(s) . a`` IS r(s, a) and the network learns only the continuation. An untrained
network (output ~0) then acts myopically, and training can only add lookahead; errors in fitting the one-step
reward no longer mislead the argmax. For multiple interventions (a sigmoid of summed intensities) the line
through r(s, 0) and r(s, e_i) is a first-order model and the network also carries the remainder.

The linear part is a constant per state, so the MILP embedding gains only objective coefficients on the
action columns (``StateQ.linear`` / ``StateQ.offset``) and stays the same size.
"""

from __future__ import annotations

import numpy as np
import torch

from scenarios.cormab.instance import CoRMABInstance


class RewardPrior:
    """``coefficients(states)`` -> (gains (..., n), base (...)) with r(s, a) ~ base + gains . a."""

    name = "reward"

    def __init__(self, instance: CoRMABInstance) -> None:
        self.instance = instance
        self._eye = np.eye(instance.n_actions, dtype=np.int64)
        self._zero = np.zeros(instance.n_actions, dtype=np.int64)

    def coefficients(
        self, states: np.ndarray, time_to_go: np.ndarray | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gains and base of one state (J,) or a batch (b, J) (the one-step reward ignores the time to go)."""
        states = np.asarray(states, dtype=np.int64)
        base = np.asarray(self.instance.expected_reward(states, self._zero), dtype=float)
        single = self.instance.expected_reward(states[..., None, :], self._eye)
        return np.asarray(single, dtype=float) - base[..., None], base

    def values(self, states: np.ndarray, time_to_go: np.ndarray | None, actions: np.ndarray) -> torch.Tensor:
        """base + gains . a for a batch of states (b, J) and one action each (b, n) or k each (b, k, n)."""
        from engine.planners.prior import linear_values

        return linear_values(*self.coefficients(states), actions)
