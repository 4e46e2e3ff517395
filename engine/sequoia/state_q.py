"""Q(s, .) for one fixed state: what every selector maximises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.q_network import QNetwork
from scenarios.action_model import ActionModel
from solvers.formulations.relu_network import ReluNetwork


@dataclass
class StateQ:
    """The action-value function of one state over one feasible set; ``version`` changes with the weights.

    Q(a) = network(a) + linear . a + offset: ``linear``/``offset`` are a fixed per-state linear part (a
    planner's objective or the exact one-step reward: the prior); None means the network alone. An arm-wise
    network's own gains are linear too: they are in ``linear`` (what selectors maximise, with the value head as
    the ReLU part) and in ``network_linear``, the share of ``linear`` that the network's ``score`` already holds."""

    model: ActionModel
    network: QNetwork | ArmwiseQNetwork
    features: np.ndarray
    context: np.ndarray | None = None
    version: int = 0
    linear: np.ndarray | None = None
    offset: float = 0.0
    network_linear: np.ndarray | None = None

    def score(self, actions: np.ndarray) -> np.ndarray:
        actions = np.atleast_2d(actions)
        values = self.network.score(actions, self.features, self.context)
        if self.linear is not None:
            extra = self.linear if self.network_linear is None else self.linear - self.network_linear
            values = values + actions @ extra + self.offset
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
