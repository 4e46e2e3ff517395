"""The joint objective of a planner, sum_j table[j, k(x_j)], as a MILP over the domain's feasible set.

Arm-pull domains give a linear objective on the action columns (gains = value of pulling - value of not);
the domain's ActionModel rows are used as they are. Where an arm's control value is a sum of interventions
(x_j = W_j . a), one binary z_jv per reachable value picks it: sum_v z_jv = 1, W_j . a = sum_v v z_jv, and the
objective is sum table[j, v] z_jv. Arms with a single possible value add a constant.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.planners.arm_values import ControlStructure
from scenarios.action_model import ActionModel
from solvers.milp import MatrixMILP


def linear_objective(table: np.ndarray, structure: ControlStructure) -> tuple[np.ndarray, float]:
    """(gains over the action entries, offset) of an arm-pull domain's per-arm table (J, 2)."""
    if not structure.is_pull:
        raise ValueError("linear_objective needs an arm-pull domain")
    return table[:, 1] - table[:, 0], float(table[:, 0].sum())


def penalised_gains(gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gains with each -inf (an arm that cannot be pulled in its state) replaced by a penalty larger than the sum
    of every finite gain, the mask of those entries), per row of (..., N). On a downward-closed feasible set an
    exact argmax never takes a penalised entry: dropping it keeps the action feasible and gains more than any
    other entry can. Lets the combinatorial oracles, which need finite gains, decide restricted states."""
    closed = ~np.isfinite(gains)
    finite = np.where(closed, 0.0, gains)
    penalty = 1.0 + np.abs(finite).sum(-1, keepdims=True)
    return np.where(closed, -penalty, finite), closed


def first_order(table: np.ndarray, structure: ControlStructure) -> tuple[np.ndarray, np.ndarray]:
    """The line through the objective at a = 0 and at each single action e_i, for tables (..., J, V):
    (gains (..., N), base (...)); exact for arm-pull domains."""
    if structure.is_pull:  # arm i's own line: O(J), where the generic path below scores N single actions
        return table[..., :, 1] - table[..., :, 0], table[..., :, 0].sum(-1)
    N = structure.weights.shape[1]
    zero = np.zeros((1, N))
    base = _joint(table, structure, zero)[..., 0]
    single = _joint(table, structure, np.eye(N))
    return single - base[..., None], base


def _joint(table: np.ndarray, structure: ControlStructure, actions: np.ndarray) -> np.ndarray:
    from engine.planners.arm_values import joint_values

    return joint_values(table, structure, np.broadcast_to(actions, table.shape[:-2] + actions.shape))


def objective_milp(model: ActionModel, table: np.ndarray, structure: ControlStructure) -> MatrixMILP:
    """Maximise sum_j table[j, k(x_j)] over ``model``'s feasible set (columns: actions, auxiliaries, z)."""
    if structure.is_pull:
        gains, offset = linear_objective(table, structure)
        closed = ~np.isfinite(gains)  # arms that cannot be pulled in their states: fixed at 0
        milp = model.milp(np.where(closed, 0.0, gains), offset)
        milp.col_upper[: len(gains)][closed] = 0.0
        return milp
    W, values, valid = structure.weights, structure.values, structure.valid
    J, N = W.shape
    reached = [j for j in range(J) if valid[j].sum() > 1]
    offset = float(sum(table[j, np.flatnonzero(valid[j])[0]] for j in range(J) if valid[j].sum() <= 1))
    z_arm = (
        np.concatenate([np.full(int(valid[j].sum()), j) for j in reached]).astype(np.int64)
        if reached
        else np.zeros(0, np.int64)
    )
    z_k = (
        np.concatenate([np.flatnonzero(valid[j]) for j in reached]).astype(np.int64)
        if reached
        else np.zeros(0, np.int64)
    )
    nz, R, n_base = len(z_arm), len(reached), model.n_vars
    row_of = np.full(J, -1)
    row_of[reached] = np.arange(R)
    zr = row_of[z_arm]
    zc = n_base + np.arange(nz)
    Wr = sp.coo_matrix(W[reached]) if reached else sp.coo_matrix((0, N))
    rows = np.concatenate([zr, R + Wr.row, R + zr])
    cols = np.concatenate([zc, Wr.col, zc])
    vals = np.concatenate([np.ones(nz), Wr.data, -values[z_arm, z_k]])
    extra = sp.csr_matrix((vals, (rows, cols)), shape=(2 * R, n_base + nz))
    A = sp.vstack([sp.hstack([model.A, sp.csr_matrix((model.A.shape[0], nz))]), extra], format="csr")
    lo = np.concatenate([model.row_lower, np.ones(R), np.zeros(R)]).astype(float)
    hi = np.concatenate([model.row_upper, np.ones(R), np.zeros(R)]).astype(float)
    z_cost = table[z_arm, z_k]
    blocked = ~np.isfinite(z_cost)  # a level unavailable in the arm's state: its z column is fixed at 0
    c = np.concatenate([np.zeros(n_base), np.where(blocked, 0.0, z_cost)])
    z_upper = np.where(blocked, 0.0, 1.0)
    return MatrixMILP(
        c=c,
        A=A,
        row_lower=lo,
        row_upper=hi,
        col_lower=np.concatenate([np.zeros(N), model.aux_lower, np.zeros(nz)]).astype(float),
        col_upper=np.concatenate([np.ones(N), model.aux_upper, z_upper]).astype(float),
        integer=np.concatenate([np.ones(N, bool), model.aux_integer.astype(bool), np.ones(nz, bool)]),
        sense="max",
        offset=offset,
        row_names=list(model.row_names) + [f"one_value[{j}]" for j in reached] + [f"control[{j}]" for j in reached],
        col_names=[f"a[{i}]" for i in range(N)]
        + list(model.aux_names)
        + [f"z[{j},{values[j, k]:g}]" for j, k in zip(z_arm.tolist(), z_k.tolist(), strict=True)],
    )
