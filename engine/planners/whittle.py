"""Whittle index planner: finite-horizon indices per arm (time to go included), joint action = the MILP argmax
of the chosen arms' indices over the domain's feasible set (greedy repair as the fallback).

The indices are computed once (:func:`bandits.restless.whittle.whittle_indices`, vectorised over arms, states
and times to go) on the instance's arms; pulling arm j is worth its index w_j(s_j, h) on top of its passive
one-step reward. Only arm-pull domains have per-arm pulls to index.
"""

from __future__ import annotations

import numpy as np

from bandits.restless.whittle import whittle_indices
from engine.planners.base import Planner
from scenarios.errors import InvalidInputError


class WhittlePlanner(Planner):
    name = "whittle"

    def _fit(self) -> None:
        if not self.structure.is_pull:
            raise InvalidInputError(
                "planner",
                f"whittle needs one pull per arm; use 'lagrangian' or 'lp_update' for the {self.model.name!r} domain",
            )
        indices = whittle_indices(self.instance.arms, discount=1.0, horizon=self.instance.horizon)
        # non-indexable arms keep their unchecked roots (the indifference subsidy), as the repair policy's users
        # would otherwise get NaN objectives
        self._indices = np.where(np.isnan(indices.values), indices.raw, indices.values)[..., 0]  # (J, H, S)
        self.non_indexable = indices.non_indexable

    def table(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        self.fit()
        s = np.asarray(states, dtype=np.int64)
        arm = np.arange(len(s))
        passive = self.structure.reward[arm, s, 0]
        return np.stack([passive, passive + self._indices[arm, int(time_to_go) - 1, s]], axis=1)

    def tables(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        self.fit()
        s = np.atleast_2d(np.asarray(states, dtype=np.int64))
        h = np.broadcast_to(np.asarray(time_to_go, dtype=np.int64), (len(s),))[:, None]
        arm = np.arange(s.shape[1])[None, :]
        passive = self.structure.reward[arm, s, 0]
        return np.stack([passive, passive + self._indices[arm, h - 1, s]], axis=-1)
