"""Q(s, .) for one fixed state: what every selector maximises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.q_network import QNetwork
from scenarios.action_model import ActionModel
from solvers.relu_network import ReluNetwork


@dataclass
class StateQ:
    """The action-value function of one state over one feasible set; ``version`` changes with the weights."""

    model: ActionModel
    network: QNetwork
    features: np.ndarray
    context: np.ndarray | None = None
    version: int = 0

    def score(self, actions: np.ndarray) -> np.ndarray:
        return self.network.score(np.atleast_2d(actions), self.features, self.context)

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
