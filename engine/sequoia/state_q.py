"""Q(s, .) for one fixed state: what every selector maximises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.sequoia.q_network import QNetwork
from scenarios.action_model import ActionModel
from solvers.formulations.relu_network import ReluNetwork


@dataclass
class StateQ:
    """The action-value function of one state over one feasible set; ``version`` changes with the weights.

    Q(a) = network(a) + linear . a + offset: ``linear``/``offset`` are a fixed per-state linear part (the
    exact one-step reward, :mod:`engine.sequoia.reward_prior`); None means the network alone."""

    model: ActionModel
    network: QNetwork
    features: np.ndarray
    context: np.ndarray | None = None
    version: int = 0
    linear: np.ndarray | None = None
    offset: float = 0.0

    def score(self, actions: np.ndarray) -> np.ndarray:
        actions = np.atleast_2d(actions)
        values = self.network.score(actions, self.features, self.context)
        if self.linear is not None:
            values = values + actions @ self.linear + self.offset
        return values

    @cached_property
    def _first_layer(self) -> tuple[np.ndarray, np.ndarray]:
        return self.network.first_layer(self.features, self.context)

    @property
    def first_weights(self) -> np.ndarray:
        return self._first_layer[0]

    @property
    def first_bias(self) -> np.ndarray:
        return self._first_layer[1]

    def relu_network(self) -> ReluNetwork:
        return self.network.relu_network()
