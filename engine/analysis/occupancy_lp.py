"""The per-arm occupancy LP of a coRMAB instance (see :mod:`engine.analysis.occupancy_bound` for the model
and the bound it certifies): each arm's control structure, the LP's rows in HiGHS, and the solver set-up shared
by the bound and the planners that read its duals (Lagrangian) or re-solve it from the current states
(LP-update)."""

from __future__ import annotations

from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from scenarios.action_model import ActionModel
from scenarios.arms import birth_death_matrices
from scenarios.cormab.instance import CoRMABInstance, ReachStructure


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
    # flow entries: the non-zero probabilities, plus the birth-death pattern (up or down one level) kept as
    # explicit entries so that birth-death arms give HiGHS the same matrix whatever their probabilities
    support = (trans != 0) | (birth_death_matrices(0.5, N_STATES) != 0)

    # ---- columns: mu[j, t, s, v] | q[t, i] | y[t, k]
    n_mu = J * H * N_STATES * V
    n_aux = model.n_aux
    q0, y0 = n_mu, n_mu + H * N
    n_cols = y0 + H * n_aux
    mu = np.arange(n_mu).reshape(J, H, N_STATES, V)
    q = q0 + np.arange(H * N).reshape(H, N)
    y = y0 + np.arange(H * n_aux).reshape(H, n_aux)

    col_lo = np.zeros(n_cols)
    col_hi = np.ones(n_cols)
    col_hi[:n_mu] = np.broadcast_to(valid[:, None, None, :], (J, H, N_STATES, V)).ravel().astype(float)
    col_lo[y0:] = np.tile(model.aux_lower, H)
    col_hi[y0:] = np.tile(model.aux_upper, H)
    cost = np.zeros(n_cols)
    cost[:n_mu] = np.broadcast_to(e[:, None], (J, H, N_STATES, V)).ravel()

    blocks: list[sp.csr_matrix] = []
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []

    def add(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, lo, hi) -> None:
        blocks.append(sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols)))
        lows.append(np.broadcast_to(np.asarray(lo, float), (n_rows,)))
        highs.append(np.broadcast_to(np.asarray(hi, float), (n_rows,)))

    # initial distribution: rows (j, s)
    if rho is None:
        rho = instance.arms.initial_distribution(training)
    rho = np.asarray(rho, dtype=float).ravel()
    r = np.broadcast_to(np.arange(J * N_STATES).reshape(J, N_STATES, 1), (J, N_STATES, V))
    add(r.ravel(), mu[:, 0].ravel(), np.ones(r.size), J * N_STATES, rho, rho)

    # flow: rows (j, t, s') for t = 1..H-1
    if H > 1:
        row = np.arange(J * (H - 1) * N_STATES).reshape(J, H - 1, N_STATES)
        lhs_r = np.broadcast_to(row[..., None], (J, H - 1, N_STATES, V)).ravel()
        lhs_c = mu[:, 1:].ravel()
        # mass leaving (j, s, v) at t-1 reaches s' with P_j(s' | s, v): one entry per non-zero probability
        j_, v_, s_, n_ = np.nonzero(support)
        t_ = np.arange(H - 1)[:, None]
        flow_r = row[j_[None, :], t_, n_[None, :]].ravel()
        flow_c = mu[j_[None, :], t_, s_[None, :], v_[None, :]].ravel()
        flow_v = -np.broadcast_to(trans[j_, v_, s_, n_], (H - 1, len(j_))).ravel()
        add(
            np.concatenate([lhs_r, flow_r]),
            np.concatenate([lhs_c, flow_c]),
            np.concatenate([np.ones(lhs_c.size), flow_v]),
            row.size,
            0.0,
            0.0,
        )

    # link: rows (t, j): sum_i w_ji q[t, i] - sum_{s,v} v mu[j, t, s, v] = 0
    coupling_start = sum(b.shape[0] for b in blocks)
    Wc = sp.coo_matrix(W)
    t_idx = np.arange(H)[:, None]
    link_q_r = (t_idx * J + Wc.row[None, :]).ravel()
    link_q_c = q[:, Wc.col].ravel()
    link_q_v = np.tile(Wc.data, H)
    mu_r = np.broadcast_to(
        (np.arange(H)[None, :, None, None] * J + np.arange(J)[:, None, None, None]), mu.shape
    ).ravel()
    mu_v = -np.broadcast_to(val[:, None, None, :], mu.shape).ravel()
    add(
        np.concatenate([link_q_r, mu_r]),
        np.concatenate([link_q_c, mu.ravel()]),
        np.concatenate([link_q_v, mu_v]),
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
        add(
            np.concatenate([rr.ravel(), rr.ravel()]),
            np.concatenate([mu[a_arm].transpose(1, 0, 2, 3).ravel(), mu[b_arm].transpose(1, 0, 2, 3).ravel()]),
            np.concatenate([np.ones(rr.size), -np.ones(rr.size)]),
            row.size,
            0.0,
            0.0,
        )

    coupling_end = sum(b.shape[0] for b in blocks)
    # the feasible set's rows in expectation, per step
    for t in range(H):
        A_t, lo_t, hi_t, _ = expected_rows(model, q[t], y[t], n_cols)
        blocks.append(A_t)
        lows.append(lo_t)
        highs.append(hi_t)

    A = sp.vstack(blocks, format="csr")
    return OccupancyLP(
        cost,
        A,
        np.concatenate(lows),
        np.concatenate(highs),
        col_lo,
        col_hi,
        q,
        mu,
        slice(coupling_start, coupling_end),
        e,
    )


def highs_for(
    c: np.ndarray,
    A: sp.csr_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    time_limit: float,
) -> highspy.Highs:
    """A HiGHS model of max c x, row_lo <= A x <= row_hi, col_lo <= x <= col_hi (not yet solved)."""
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(c), A.shape[0]
    lp.col_cost_ = c
    lp.col_lower_, lp.col_upper_ = np.clip(col_lo, -inf, inf), np.clip(col_hi, -inf, inf)
    lp.row_lower_, lp.row_upper_ = np.clip(row_lo, -inf, inf), np.clip(row_hi, -inf, inf)
    lp.sense_ = highspy.ObjSense.kMaximize
    csc = A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    if len(c) > 100_000:  # large LPs: interior point without crossover (the bound is recomputed from duals)
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "off")
    h.passModel(lp)
    return h


def identical_rows(W: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (j, k) of consecutive arms in each class of identical non-zero weight rows."""
    groups: dict[bytes, list[int]] = {}
    for j, row in enumerate(W):
        if np.any(row):
            groups.setdefault(np.asarray(row, float).tobytes(), []).append(j)
    return [(g[k], g[k + 1]) for g in groups.values() for k in range(len(g) - 1)]
