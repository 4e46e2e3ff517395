"""Per-arm action values of a coRMAB instance: the table every planner (and the planner prior) reduces to.

Every arm j responds to a control value x_j = W_j . a (its own pull for arm-pull domains, the summed
intensity of the interventions reaching it otherwise), taking one of a few values ``values[j]``. A planner
scores each arm's possible control values at the current state; the joint objective
``sum_j table[j, k(x_j)]`` is then maximised over the feasible set (:mod:`engine.planners.objective`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from engine.analysis.occupancy_lp import control_structure
from scenarios.cormab.instance import ArmControls, CoRMABInstance, ReachStructure


@dataclass(frozen=True)
class ControlStructure:
    """``weights`` (J, N) sparse: x = weights @ a; ``values`` (J, V) padded control values with ``valid`` (J, V);
    ``trans`` (J, V, S, S) the arm's transition matrix at each value; ``reward`` (J, S, V) expected step reward;
    ``allowed`` (J, S, V) whether the value may be taken in the state (``arms.available``; None: everywhere).
    Every array is O(J) (no dense J x N matrix: the weights are a sparse matrix)."""

    weights: sp.csr_matrix
    values: np.ndarray
    valid: np.ndarray
    trans: np.ndarray
    reward: np.ndarray
    allowed: np.ndarray | None = None

    @cached_property
    def masked_reward(self) -> np.ndarray:
        """``reward`` with -inf where a value is not valid or not available in the state (J, S, V)."""
        ok = np.broadcast_to(self.valid[:, None, :], self.reward.shape)
        if self.allowed is not None:
            ok = ok & self.allowed
        return np.where(ok, self.reward, -np.inf)

    def available_at(self, states: np.ndarray) -> np.ndarray:
        """(..., J, V) whether each arm may take each control value at ``states`` (..., J)."""
        s = np.asarray(states, dtype=np.int64)
        valid = np.broadcast_to(self.valid, (*s.shape, self.valid.shape[1]))
        if self.allowed is None:
            return valid
        return valid & self.allowed[np.arange(s.shape[-1]), s]

    @cached_property
    def is_pull(self) -> bool:
        """Arm-pull domain: one action entry per arm, control value = the pull (0 or 1); checked on the sparse
        weights' structure (entry j of row j equal to 1, nothing else), O(J)."""
        W = self.weights
        J, N = W.shape
        return bool(
            J == N
            and W.nnz == J
            and np.array_equal(W.indptr, np.arange(J + 1))
            and np.array_equal(W.indices, np.arange(J))
            and np.all(W.data == 1.0)
            and self.values.shape[1] == 2
            and self.valid.all()
            and np.all(self.values[:, 0] == 0.0)
            and np.all(self.values[:, 1] == 1.0)
        )

    @classmethod
    def of(cls, instance: CoRMABInstance) -> ControlStructure:
        if not isinstance(instance, (ReachStructure, ArmControls)):  # levels of the arms' own actions: O(J)
            J, K = instance.n_arms, instance.arms.n_levels
            trans_all, reward_all, _, _ = instance.arms.arrays()
            entries = np.arange(J * K)
            W = sp.csr_matrix(
                (np.tile(np.arange(1.0, K + 1), J), (np.repeat(np.arange(J), K), entries)), shape=(J, J * K)
            )
            levels = np.broadcast_to(np.arange(K + 1, dtype=float), (J, K + 1))
            allowed = instance.arms.cache.allowed if instance.arms.restricted else None
            return cls(W, levels, np.ones((J, K + 1), dtype=bool), trans_all, reward_all, allowed)
        W, values, trans, rewards = control_structure(instance)
        J, S = W.shape[0], trans[0].shape[-1]
        V = max(len(v) for v in values)
        val, P, reward = np.zeros((J, V)), np.zeros((J, V, S, S)), np.zeros((J, S, V))
        valid = np.zeros((J, V), dtype=bool)
        for j in range(J):
            k = len(values[j])
            val[j, :k], P[j, :k], reward[j, :, :k], valid[j, :k] = values[j], trans[j], rewards[j], True
        return cls(sp.csr_matrix(np.asarray(W, float)), val, valid, P, reward)

    @property
    def n_states(self) -> int:
        return self.trans.shape[-1]

    def next_value(self, V: np.ndarray) -> np.ndarray:
        """E[V_j(s')] for every (j, s, v) given next-step values ``V`` (J, S)."""
        return expected_next(self.trans, V[:, None, None, :]).transpose(0, 2, 1)

    def next_value_at(self, V: np.ndarray, states: np.ndarray) -> np.ndarray:
        """E[V_j(s')] at the arms' states: ``V`` (J, B, S) per batch row, ``states`` (B, J) -> (B, J, V)."""
        s = np.asarray(states, dtype=np.int64)
        rows = self.trans[np.arange(s.shape[1])[None, :], :, s]  # (B, J, V, S)
        return expected_next(rows, V.transpose(1, 0, 2)[:, :, None, :])

    def value_index(self, actions: np.ndarray) -> np.ndarray:
        """Index k of each arm's control value under ``actions`` (..., N) -> (..., J)."""
        a = np.asarray(actions, dtype=float)
        x = a if self.is_pull else (self.weights @ a.reshape(-1, a.shape[-1]).T).T.reshape(*a.shape[:-1], -1)
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
    a value is not valid, or not available in the state); V[:, H] = 0."""
    J, H, S, _ = adjusted.shape
    V = np.zeros((J, H + 1, S))
    mask = np.where(structure.valid, 0.0, -np.inf)[:, None, :]
    if structure.allowed is not None:
        mask = mask + np.where(structure.allowed, 0.0, -np.inf)
    for t in range(H - 1, -1, -1):
        Q = adjusted[:, t] + structure.next_value(V[:, t + 1]) + mask
        V[:, t] = Q.max(-1)
    return V


def expected_next(trans: np.ndarray, V: np.ndarray) -> np.ndarray:
    """sum_s' trans[..., s'] V[..., s'] as products then sums over s' (no fused multiply-add, so birth-death
    arms give exactly p V(up) + (1 - p) V(down))."""
    return (trans * V).sum(-1)
