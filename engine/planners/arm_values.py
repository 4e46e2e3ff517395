"""Per-arm action values of a coRMAB instance: the table every planner (and the planner prior) reduces to.

Every arm j responds to a control value x_j = W_j . a (its own pull for arm-pull domains, the summed
intensity of the interventions reaching it otherwise), taking one of a few values ``values[j]``. A planner
scores each arm's possible control values at the current state; the joint objective
``sum_j table[j, k(x_j)]`` is then maximised over the feasible set (:mod:`engine.planners.objective`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.analysis.occupancy_bound import control_structure
from scenarios.cormab.instance import N_STATES, CoRMABInstance

UP = np.minimum(np.arange(N_STATES) + 1, N_STATES - 1)
DOWN = np.maximum(np.arange(N_STATES) - 1, 0)


@dataclass(frozen=True)
class ControlStructure:
    """``weights`` (J, N): x = weights @ a; ``values`` (J, V) padded control values with ``valid`` (J, V);
    ``up`` (J, V) the up-probability at each value; ``reward`` (J, S, V) expected next-step reward."""

    weights: np.ndarray
    values: np.ndarray
    valid: np.ndarray
    up: np.ndarray
    reward: np.ndarray

    @property
    def is_pull(self) -> bool:
        """Arm-pull domain: one action entry per arm, control value = the pull (0 or 1)."""
        J, N = self.weights.shape
        return (
            J == N
            and np.array_equal(self.weights, np.eye(J))
            and self.values.shape[1] == 2
            and bool(self.valid.all())
            and np.array_equal(self.values, np.tile([0.0, 1.0], (J, 1)))
        )

    @classmethod
    def of(cls, instance: CoRMABInstance) -> ControlStructure:
        W, values, probs = control_structure(instance)
        J = W.shape[0]
        V = max(len(v) for v in values)
        val, up = np.zeros((J, V)), np.zeros((J, V))
        valid = np.zeros((J, V), dtype=bool)
        for j in range(J):
            k = len(values[j])
            val[j, :k], up[j, :k], valid[j, :k] = values[j], probs[j], True
        _, _, table = instance.arms.arrays()
        arm = np.arange(J)[:, None]
        reward = up[:, None, :] * table[arm, UP][:, :, None] + (1 - up[:, None, :]) * table[arm, DOWN][:, :, None]
        return cls(np.asarray(W, float), val, valid, up, reward)

    def next_value(self, V: np.ndarray) -> np.ndarray:
        """E[V_j(s')] for every (j, s, v) given next-step values ``V`` (J, S)."""
        J = V.shape[0]
        arm = np.arange(J)[:, None]
        v_up, v_down = V[arm, UP], V[arm, DOWN]  # (J, S)
        return self.up[:, None, :] * v_up[:, :, None] + (1 - self.up[:, None, :]) * v_down[:, :, None]

    def value_index(self, actions: np.ndarray) -> np.ndarray:
        """Index k of each arm's control value under ``actions`` (..., N) -> (..., J)."""
        x = np.asarray(actions, dtype=float) @ self.weights.T
        hit = np.abs(x[..., :, None] - self.values) < 1e-9
        hit &= self.valid
        if not np.all(hit.any(-1)):
            raise ValueError("an action gives an arm a control value outside its table")
        return hit.argmax(-1)


def joint_values(table: np.ndarray, structure: ControlStructure, actions: np.ndarray) -> np.ndarray:
    """sum_j table[..., j, k_j(a)] for per-state tables (..., J, V) and actions (..., k, N) -> (..., k)."""
    k = structure.value_index(actions)  # (..., k, J)
    full = np.broadcast_to(table[..., None, :, :], k.shape + table.shape[-1:])
    return np.take_along_axis(full, k[..., None], axis=-1)[..., 0].sum(-1)


def backward_values(adjusted: np.ndarray, structure: ControlStructure) -> np.ndarray:
    """Per-arm DP over the horizon: V[:, t] (J, H + 1, S) for adjusted step rewards (J, H, S, V) (-inf where
    a value is not available); V[:, H] = 0."""
    J, H, S, _ = adjusted.shape
    V = np.zeros((J, H + 1, S))
    mask = np.where(structure.valid, 0.0, -np.inf)[:, None, :]
    for t in range(H - 1, -1, -1):
        Q = adjusted[:, t] + structure.next_value(V[:, t + 1]) + mask
        V[:, t] = Q.max(-1)
    return V
