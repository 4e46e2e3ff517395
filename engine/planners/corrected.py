"""A planner whose per-arm action values carry a trained arm-wise network's corrections.

With an arm-wise Q-network (:mod:`engine.sequoia.armwise_network`) on the planner prior of an arm-pull domain,

    Q(s, a) = sum_j table_j(s_j, a_j) + sum_j a_j g_j(s) + V(s),

and V(s) does not depend on the action, so the greedy action of Q is the planner's decision on the table with
g_j added to each arm's pull value. Deciding through :class:`~engine.planners.policy.PlannerPolicy` keeps every
path the planner has at scale (the exact oracle, the dominance reduction with its certified bound, batches)
for the learned policy. The network is read at decision time, so a trainer that updates it in place is seen
at once. Decision values are the corrected planner objective (Q without the state value V(s)).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.planners.base import Planner
from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.state_encoder import StateEncoder
from scenarios.errors import InvalidInputError


class CorrectedPlanner(Planner):
    """``CorrectedPlanner(planner, network, encoder)``: ``planner``'s table plus the network's pull gains."""

    name: ClassVar[str] = "corrected"
    can_be_prior: ClassVar[bool] = False

    def __init__(self, planner: Planner, network: ArmwiseQNetwork, encoder: StateEncoder) -> None:
        if not planner.structure.is_pull:
            raise InvalidInputError("network", "arm-wise corrections of a planner need an arm-pull domain")
        # shares the planner's instance, structure and model (not a second ActionModel)
        self.instance, self.options = planner.instance, {}
        self.structure, self.model, self._fitted = planner.structure, planner.model, False
        self.base, self.network, self.encoder = planner, network, encoder

    def _fit(self) -> None:
        self.base.fit()

    def tables(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        base = self.base.fit().tables(states, time_to_go)  # (B, J, 2)
        states = np.atleast_2d(np.asarray(states, dtype=np.int64))
        gains = base[..., 1] - base[..., 0]
        blocked = ~np.isfinite(gains)  # pulls unavailable in the state: the network sees gain 0 (as in training)
        rows = self.encoder.armwise_rows(states, time_to_go, np.where(blocked, 0.0, gains))
        out = base.copy()
        out[..., 1] = np.where(blocked, -np.inf, out[..., 1] + self.network.action_gains(rows))
        return out

    def table(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        return self.tables(np.asarray(states)[None, :], time_to_go)[0]

    def config(self) -> dict[str, Any]:
        return {"name": self.base.name, **self.base.options}
