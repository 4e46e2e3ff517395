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
    ``closed`` marks the action entries unavailable at this state (state-dependent limits): every selector
    keeps them at 0.

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
    closed: np.ndarray | None = None  # (n,) entries unavailable at this state (arms.available): fixed at 0

    def score(self, actions: np.ndarray) -> np.ndarray:
        """Q of each action row; -inf for an action that takes an entry unavailable at this state."""
        actions = np.atleast_2d(actions)
        values = self.network.score(actions, self.features, self.context)
        if self.linear is not None:
            extra = self.linear if self.network_linear is None else self.linear - self.network_linear
            values = values + actions @ extra + self.offset
        if self.closed is not None:
            values = np.where(np.any(actions[:, self.closed] > 0, axis=1), -np.inf, values)
        return values

    @property
    def action_upper(self) -> np.ndarray | None:
        """Upper bounds of the action entries at this state (0 where unavailable), or None: all 1."""
        return None if self.closed is None else np.where(self.closed, 0.0, 1.0)

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
