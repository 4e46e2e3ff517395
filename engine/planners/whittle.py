"""Whittle index planner: finite-horizon indices per arm (time to go included), joint action = the MILP argmax
of the chosen arms' indices over the domain's feasible set (greedy repair as the fallback).

The indices are computed once (:func:`bandits.restless.whittle.whittle_indices`, vectorised over arms, states
and times to go) on the instance's distinct arms (arms with equal transitions, rewards and costs share one
computation), in chunks of :data:`CHUNK` arms so that memory stays O(J); pulling arm j is worth its index
w_j(s_j, h) times its marginal cost c_j(1) - c_j(0) on top of its passive one-step reward (an index is a charge per
unit of cost: with unit costs the index itself). Only arm-pull domains have per-arm pulls to index. The
indexability check (which does not change the indices used) runs on demand (:attr:`WhittlePlanner.non_indexable`).
"""

from __future__ import annotations

import numpy as np

from bandits.restless.indexability import check_indexability
from bandits.restless.whittle import whittle_indices
from engine.planners.arm_values import ControlStructure
from engine.planners.base import Planner, check_time_to_go
from scenarios.errors import InvalidInputError

#: arms per call of the vectorised index search (its work arrays hold ~ arms x horizon x states^3 floats)
CHUNK = 1024


def distinct_arms(P: np.ndarray, R: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of one representative per distinct arm, the representative of each arm) over (P, R, C)."""
    rows = np.concatenate([P.reshape(len(P), -1), R.reshape(len(R), -1), C.reshape(len(C), -1)], axis=1)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def chunked_raw_indices(P: np.ndarray, R: np.ndarray, C: np.ndarray, horizon: int) -> np.ndarray:
    """Raw finite-horizon Whittle indices (J, H, S, K) (undiscounted), distinct arms only, :data:`CHUNK` at a
    time."""
    first, inverse = distinct_arms(P, R, C)
    parts = [
        whittle_indices((P[idx], R[idx], C[idx]), discount=1.0, horizon=horizon, check=False).raw
        for idx in np.array_split(first, max(1, -(-first.size // CHUNK)))
    ]
    return np.concatenate(parts)[inverse]


class WhittlePlanner(Planner):
    name = "whittle"
    fallback = "lagrangian"

    @classmethod
    def applies(cls, instance) -> bool:
        """Only where each arm's action is one pull (Whittle indices price a pull)."""
        return ControlStructure.of(instance).is_pull

    def _fit(self) -> None:
        if not self.structure.is_pull:
            raise InvalidInputError(
                "planner",
                f"whittle needs one pull per arm; use 'lagrangian' or 'lp_update' for the {self.model.name!r} domain",
            )
        P, _, C, _ = self.instance.arms.arrays()
        R = self.structure.masked_reward  # -inf where an arm cannot be pulled in a state: its index there is -inf
        # every arm keeps its root (the indifference subsidy), indexable or not: the repair policy's users would
        # otherwise get NaN objectives
        self._raw = chunked_raw_indices(P, R, C, self.instance.horizon)
        # an index is a charge per unit of the pull's marginal cost: a pull is worth index x that cost in reward
        self._indices = self._raw[..., 0] * (C[:, 1] - C[:, 0])[:, None, None]  # (J, H, S)
        self._non_indexable: np.ndarray | None = None

    @property
    def non_indexable(self) -> np.ndarray:
        """Arms that fail the exact indexability check (their indices are still the indifference subsidies). The
        check is not defined for arms with unavailable actions (``arms.available``): refused, naming the field."""
        if self.instance.arms.restricted:
            raise InvalidInputError(
                "arms.available", "the indexability check does not cover actions unavailable in some states"
            )
        if self._non_indexable is None:
            P, _, C, _ = self.fit().instance.arms.arrays()
            R = self.structure.masked_reward
            bad = [
                idx[~check_indexability((P[idx], R[idx], C[idx]), self._raw[idx], 1.0, self.instance.horizon)]
                for idx in np.array_split(np.arange(len(P)), max(1, -(-len(P) // CHUNK)))
            ]
            self._non_indexable = np.concatenate(bad)
        return self._non_indexable

    def table(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        self.fit()
        check_time_to_go(time_to_go, self.instance.horizon)
        s = np.asarray(states, dtype=np.int64)
        arm = np.arange(len(s))
        passive = self.structure.reward[arm, s, 0]
        return np.stack([passive, passive + self._indices[arm, int(time_to_go) - 1, s]], axis=1)

    def tables(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        self.fit()
        check_time_to_go(time_to_go, self.instance.horizon)
        s = np.atleast_2d(np.asarray(states, dtype=np.int64))
        h = np.broadcast_to(np.asarray(time_to_go, dtype=np.int64), (len(s),))[:, None]
        arm = np.arange(s.shape[1])[None, :]
        passive = self.structure.reward[arm, s, 0]
        return np.stack([passive, passive + self._indices[arm, h - 1, s]], axis=-1)
