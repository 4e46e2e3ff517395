"""The per-arm occupancy LP of a coRMAB instance (see :mod:`engine.analysis.occupancy_bound` for the model
and the bound it certifies), shared by the bound and the planners that read its duals (Lagrangian) or re-solve it
from the current states (LP-update): each arm's control structure, and the coupling of the shared per-arm LP
(:mod:`bandits.restless.occupancy_model`: occupancies, flow rows, objective) to the actions: action marginals,
link rows, ties between identical arms and the ActionModel's rows in expectation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from bandits.restless.occupancy_model import occupancy_rows
from scenarios.action_model import ActionModel
from scenarios.arms import birth_death_matrices
from scenarios.cormab.instance import ArmControls, CoRMABInstance, EntryTies, ReachStructure


def expected_rows(
    model: ActionModel, action_cols: np.ndarray, aux_cols: np.ndarray, n_cols: int, tag: str = ""
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, list[str]]:
    """The ActionModel's rows over LP columns: action k -> ``action_cols[k]`` (its expectation),
    auxiliary k -> ``aux_cols[k]`` (relaxed to its bounds by the caller). Returns (A, lower, upper, names)."""
    coo = model.A.tocoo()
    remap = np.concatenate([np.asarray(action_cols), np.asarray(aux_cols)]).astype(np.int64)
    A = sp.csr_matrix((coo.data, (coo.row, remap[coo.col])), shape=(model.A.shape[0], n_cols))
    return A, model.row_lower.astype(float), model.row_upper.astype(float), [f"{n}{tag}" for n in model.row_names]


def control_structure(
    instance: CoRMABInstance,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(weights (J, N), control values per arm, transition matrices (V_j, S, S) and expected step rewards
    (S, V_j) at those values).

    Domains whose birth-death arms respond to a combination of actions expose ``control_structure()`` (weights,
    values, up-probabilities); otherwise the action sets each arm's level: x = level_weights @ a, values 0..K,
    the arms' own transitions and rewards.
    """
    if isinstance(instance, ArmControls):
        return instance.arm_controls()
    if isinstance(instance, ReachStructure):
        W, values, probs = instance.control_structure()
        _, _, table = instance.arms.birth_death(type(instance).__name__)
        s = np.arange(table.shape[1])
        trans = [birth_death_matrices(np.asarray(p, float)) for p in probs]
        up, down = np.minimum(s + 1, len(s) - 1), np.maximum(s - 1, 0)
        reward = [
            np.asarray(p, float)[None, :] * table[j, up][:, None]
            + (1 - np.asarray(p, float)[None, :]) * table[j, down][:, None]
            for j, p in enumerate(probs)
        ]
        return W, values, trans, reward
    J, K = instance.n_arms, instance.arms.n_levels
    P, R, _, _ = instance.arms.arrays()
    levels = np.arange(K + 1, dtype=float)
    return instance.level_weights(), [levels] * J, list(P), list(R)


def action_only_model(model: ActionModel) -> ActionModel:
    """The rows of ``model`` that involve no auxiliary variable, over the actions alone."""
    keep = np.flatnonzero(np.diff(model.A[:, model.n_actions :].tocsr().indptr) == 0)
    return ActionModel(
        name=model.name,
        n_actions=model.n_actions,
        A=model.A[keep][:, : model.n_actions],
        row_lower=model.row_lower[keep],
        row_upper=model.row_upper[keep],
        row_names=[model.row_names[k] for k in keep],
        aux_lower=np.zeros(0),
        aux_upper=np.zeros(0),
        aux_integer=np.zeros(0, bool),
    )


def distinct_values(q: np.ndarray, decimals: int = 9) -> np.ndarray:
    return np.unique(np.round(q, decimals), axis=0)


@dataclass
class OccupancyLP:
    """max c x, row_lo <= A x <= row_hi, col_lo <= x <= col_hi; ``q[t, i]`` = column of E[a_{t,i}]."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    q: np.ndarray
    mu: np.ndarray | None = None  # (J, H, S, V) column of each occupancy
    # the rows that tie arms to the actions and to each other (link, ties)
    coupling: slice = field(default_factory=lambda: slice(0, 0))
    reward: np.ndarray | None = None  # (J, S, V) expected next-step reward e_j(s, v)


def build_occupancy_lp(
    instance: CoRMABInstance,
    model: ActionModel,
    training: bool,
    rho: np.ndarray | None = None,
    horizon: int | None = None,
) -> OccupancyLP:
    """The occupancy LP with ``model``'s rows in expectation at every step; ``rho`` (J, S) replaces the
    initial state distribution and ``horizon`` the instance's (an LP from the current states over the time
    left: the LP-update planner)."""
    W, values, trans_list, reward_list = control_structure(instance)
    J, N = W.shape
    H = instance.horizon if horizon is None else int(horizon)
    N_STATES = trans_list[0].shape[-1]
    V = max(len(v) for v in values)
    val = np.zeros((J, V))
    trans = np.zeros((J, V, N_STATES, N_STATES))
    e = np.zeros((J, N_STATES, V))  # expected next-step reward e_j(s, v)
    valid = np.zeros((J, V), dtype=bool)
    for j in range(J):
        k = len(values[j])
        val[j, :k], trans[j, :k], e[j, :, :k], valid[j, :k] = values[j], trans_list[j], reward_list[j], True
        trans[j, k:] = birth_death_matrices(0.0, N_STATES)  # values an arm cannot take: fixed at 0 below
    if rho is None:
        rho = instance.arms.initial_distribution(training)
    # columns: mu[j, t, s, v] | q[t, i] | y[t, k]; flow entries: the non-zero probabilities, plus the birth-death
    # pattern (up or down one level) kept as explicit entries so that birth-death arms give HiGHS the same matrix
    # whatever their probabilities
    n_aux = model.n_aux
    extra_lo = np.concatenate([np.zeros(H * N), np.tile(model.aux_lower, H)])
    extra_hi = np.concatenate([np.ones(H * N), np.tile(model.aux_upper, H)])
    lp = occupancy_rows(
        trans,
        e,
        rho,
        H,
        valid=valid,
        extra_bounds=(extra_lo, extra_hi),
        support=(trans != 0) | (birth_death_matrices(0.5, N_STATES) != 0),
    )
    mu = lp.mu
    if not isinstance(instance, ReachStructure) and instance.arms.restricted:  # unavailable levels: no occupancy
        closed = ~np.broadcast_to(instance.arms.cache.allowed[:, None, :, :V], mu.shape)
        lp.col_hi = np.array(lp.col_hi, dtype=float, copy=True)
        lp.col_hi[mu[closed]] = 0.0
    q0 = mu.size
    q = q0 + np.arange(H * N).reshape(H, N)
    y = q0 + H * N + np.arange(H * n_aux).reshape(H, n_aux)

    # link: rows (t, j): sum_i w_ji q[t, i] - sum_{s,v} v mu[j, t, s, v] = 0
    coupling_start = lp.n_rows
    Wc = sp.coo_matrix(W)
    link_q_r = (np.arange(H)[:, None] * J + Wc.row[None, :]).ravel()
    mu_r, mu_c, mu_v = lp.usage(-val)
    lp.add(
        np.concatenate([link_q_r, mu_r]),
        np.concatenate([q[:, Wc.col].ravel(), mu_c]),
        np.concatenate([np.tile(Wc.data, H), mu_v]),
        H * J,
        0.0,
        0.0,
    )

    # arms with identical (non-zero) weight rows share the law of x: tie their value marginals
    ties = identical_rows(W)
    if ties:
        a_arm, b_arm = np.array(ties).T
        n_t = len(ties)
        row = np.arange(H * n_t * V).reshape(H, n_t, V)
        rr = np.broadcast_to(row[:, :, None, :], (H, n_t, N_STATES, V))
        lp.add(
            np.concatenate([rr.ravel(), rr.ravel()]),
            np.concatenate([mu[a_arm].transpose(1, 0, 2, 3).ravel(), mu[b_arm].transpose(1, 0, 2, 3).ravel()]),
            np.concatenate([np.ones(rr.size), -np.ones(rr.size)]),
            row.size,
            0.0,
            0.0,
        )
    if isinstance(instance, EntryTies):  # rows (tie, t): q[t, i] - P(arm j in state s / at its k-th value) = 0
        linked: list[tuple[int, np.ndarray]] = [(i, mu[j, :, s, :]) for i, j, s in instance.state_ties()]
        linked += [(i, mu[j, :, :, k]) for i, j, k in instance.value_ties()]
        for entry, cols in linked:  # cols (H, S or V): the occupancy columns summed at each step
            lp.add(
                np.concatenate([np.arange(H), np.repeat(np.arange(H), cols.shape[1])]),
                np.concatenate([q[:, entry], cols.ravel()]),
                np.concatenate([np.ones(H), -np.ones(cols.size)]),
                H,
                0.0,
                0.0,
            )
    coupling_end = lp.n_rows
    # the feasible set's rows in expectation, per step
    for t in range(H):
        A_t, lo_t, hi_t, _ = expected_rows(model, q[t], y[t], lp.n_cols)
        lp.append(A_t, lo_t, hi_t)
    A, row_lo, row_hi = lp.matrix()
    return OccupancyLP(lp.c, A, row_lo, row_hi, lp.col_lo, lp.col_hi, q, mu, slice(coupling_start, coupling_end), e)


def identical_rows(W: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (j, k) of consecutive arms in each class of identical non-zero weight rows."""
    groups: dict[bytes, list[int]] = {}
    for j, row in enumerate(W):
        if np.any(row):
            groups.setdefault(np.asarray(row, float).tobytes(), []).append(j)
    return [(g[k], g[k + 1]) for g in groups.values() for k in range(len(g) - 1)]
