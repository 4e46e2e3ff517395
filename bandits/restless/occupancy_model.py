"""The per-arm occupancy LP over arrays: the one implementation behind the engine's occupancy bound and planners
(:mod:`engine.analysis.occupancy_lp`) and the restless bandits' LP bound (:mod:`bandits.restless.lp_bound`).

Arm j has control values indexed v (``valid[j, v]`` says which exist), transition matrices ``trans[j, v]``
(S x S), expected step rewards ``reward[j, s, v]`` and initial distribution ``initial[j]``. Finite horizon T:
columns mu[j, t, s, v] >= 0 with

    sum_v mu[j, 0, s, v] = initial[j, s]
    sum_v mu[j, t, s', v] = sum_{s, v} P_j(s' | s, v) mu[j, t - 1, s, v]          (t >= 1)
    maximise sum_{j, t, s, v} discount^t reward[j, s, v] mu[j, t, s, v]

Infinite horizon (``horizon=None``, discount < 1): one discounted occupancy per arm (t = 0 only),

    sum_v mu[j, s', v] = initial[j, s'] + discount sum_{s, v} P_j(s' | s, v) mu[j, s, v].

The caller appends its coupling: extra columns after the occupancies (the engine's action marginals and
auxiliary variables) and rows over both, often over the expected per-arm control usage
sum_{s, v} coef[j, v] mu[j, t, s, v] (:meth:`OccupancyRows.usage`): a budget for the bandits, the link to the
action marginals for the engine. :func:`highs_for` and :func:`solve_lp` solve the result with HiGHS.

The module lives in ``bandits/restless`` (not ``engine/analysis``) because the engine imports the bandits
and the bandits never import the engine: a core both use has to sit below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp


@dataclass
class OccupancyRows:
    """An occupancy LP being built: max c x, row_lo <= A x <= row_hi, col_lo <= x <= col_hi, with the occupancy
    columns ``mu`` (J, T, S, V) first and the caller's extra columns after them."""

    c: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    mu: np.ndarray  # (J, T, S, V) column of each occupancy
    blocks: list[sp.csr_matrix] = field(default_factory=list)
    lows: list[np.ndarray] = field(default_factory=list)
    highs: list[np.ndarray] = field(default_factory=list)

    @property
    def n_cols(self) -> int:
        return len(self.c)

    @property
    def n_rows(self) -> int:
        return sum(b.shape[0] for b in self.blocks)

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, lo: object, hi: object) -> slice:
        """Append ``n_rows`` rows given as (row, column, value) entries (duplicates add up), lo <= row <= hi;
        returns where they sit."""
        return self.append(sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, self.n_cols)), lo, hi)

    def append(self, A: sp.csr_matrix, lo: object, hi: object) -> slice:
        """Append the rows of ``A`` (over all columns), lo <= A x <= hi; returns where they sit."""
        start = self.n_rows
        self.blocks.append(A)
        self.lows.append(np.broadcast_to(np.asarray(lo, float), (A.shape[0],)))
        self.highs.append(np.broadcast_to(np.asarray(hi, float), (A.shape[0],)))
        return slice(start, start + A.shape[0])

    def usage(self, coef: np.ndarray, per_arm: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entries (row, column, value) of sum_{s, v} coef[j, v] mu[j, t, s, v]: row t * J + j (``per_arm``) or
        row t (summed over the arms)."""
        J, T = self.mu.shape[:2]
        t, j = np.arange(T)[None, :, None, None], np.arange(J)[:, None, None, None]
        rows = np.broadcast_to(t * J + j if per_arm else t + 0 * j, self.mu.shape).ravel()
        vals = np.broadcast_to(np.asarray(coef, float)[:, None, None, :], self.mu.shape).ravel()
        return rows, self.mu.ravel(), vals

    def matrix(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """(A, row_lo, row_hi) of the rows added so far."""
        return sp.vstack(self.blocks, format="csr"), np.concatenate(self.lows), np.concatenate(self.highs)


def occupancy_rows(
    trans: np.ndarray,
    reward: np.ndarray,
    initial: np.ndarray,
    horizon: int | None,
    discount: float = 1.0,
    valid: np.ndarray | None = None,
    extra_bounds: tuple[np.ndarray, np.ndarray] | None = None,
    support: np.ndarray | None = None,
    mu_upper: float | None = None,
) -> OccupancyRows:
    """The occupancy columns, objective and per-arm flow rows (see the module docstring).

    ``trans`` (J, V, S, S), ``reward`` (J, S, V), ``initial`` (J, S); ``valid`` (J, V) fixes the occupancies of
    missing control values at 0; ``extra_bounds`` (lower, upper) adds the caller's columns; ``support`` (J, V, S, S)
    lists the flow entries to write (default: the non-zero probabilities); ``mu_upper`` caps each occupancy
    (default 1 for a finite horizon, 1 / (1 - discount) otherwise: both implied by the flow rows).
    """
    trans, reward = np.asarray(trans, float), np.asarray(reward, float)
    J, V, S, _ = trans.shape
    T = 1 if horizon is None else int(horizon)
    valid = np.ones((J, V), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    support = trans != 0 if support is None else np.asarray(support, dtype=bool)
    if mu_upper is None:
        mu_upper = 1.0 if horizon is not None else 1.0 / (1.0 - discount)
    extra_lo, extra_hi = extra_bounds if extra_bounds is not None else (np.zeros(0), np.zeros(0))

    n_mu = J * T * S * V
    mu = np.arange(n_mu).reshape(J, T, S, V)
    col_lo = np.concatenate([np.zeros(n_mu), np.asarray(extra_lo, float)])
    col_hi = np.concatenate([np.zeros(n_mu), np.asarray(extra_hi, float)])
    col_hi[:n_mu] = np.where(np.broadcast_to(valid[:, None, None, :], mu.shape).ravel(), mu_upper, 0.0)
    c = np.zeros(len(col_lo))
    weight = np.ones(T) if horizon is None or discount == 1.0 else discount ** np.arange(T)
    c[:n_mu] = (np.broadcast_to(reward[:, None], mu.shape) * weight[None, :, None, None]).ravel()
    out = OccupancyRows(c, col_lo, col_hi, mu)

    # initial distribution: rows (j, s) (infinite horizon: with the discounted inflow)
    rho = np.asarray(initial, dtype=float).ravel()
    r = np.broadcast_to(np.arange(J * S).reshape(J, S, 1), (J, S, V))
    j_, v_, s_, n_ = np.nonzero(support)
    if horizon is None:
        flow_r, flow_c = (j_ * S + n_), mu[j_, 0, s_, v_]
        out.add(
            np.concatenate([r.ravel(), flow_r]),
            np.concatenate([mu[:, 0].ravel(), flow_c]),
            np.concatenate([np.ones(r.size), -discount * trans[j_, v_, s_, n_]]),
            J * S,
            rho,
            rho,
        )
        return out
    out.add(r.ravel(), mu[:, 0].ravel(), np.ones(r.size), J * S, rho, rho)

    # flow: rows (j, t, s') for t = 1..T-1; mass leaving (j, s, v) at t-1 reaches s' with P_j(s' | s, v)
    if T > 1:
        row = np.arange(J * (T - 1) * S).reshape(J, T - 1, S)
        lhs_r = np.broadcast_to(row[..., None], (J, T - 1, S, V)).ravel()
        lhs_c = mu[:, 1:].ravel()
        t_ = np.arange(T - 1)[:, None]
        flow_r = row[j_[None, :], t_, n_[None, :]].ravel()
        flow_c = mu[j_[None, :], t_, s_[None, :], v_[None, :]].ravel()
        flow_v = -np.broadcast_to(trans[j_, v_, s_, n_], (T - 1, len(j_))).ravel()
        out.add(
            np.concatenate([lhs_r, flow_r]),
            np.concatenate([lhs_c, flow_c]),
            np.concatenate([np.ones(lhs_c.size), flow_v]),
            row.size,
            0.0,
            0.0,
        )
    return out


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


@dataclass
class LPSolution:
    """Optimum of max c x: its value, x, and HiGHS's row duals y (c - A^T y is the reduced cost)."""

    value: float
    x: np.ndarray
    row_dual: np.ndarray
    status: str


def solve_lp(rows: OccupancyRows, time_limit: float = 600.0) -> LPSolution:
    """Solve the LP of ``rows`` with HiGHS; raises RuntimeError when it gives no optimal primal and dual pair."""
    A, row_lo, row_hi = rows.matrix()
    h = highs_for(rows.c, A, row_lo, row_hi, rows.col_lo, rows.col_hi, time_limit)
    h.run()
    sol = h.getSolution()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal or not sol.dual_valid:
        raise RuntimeError(f"occupancy LP: {status}")
    x, y = np.asarray(sol.col_value, float), np.asarray(sol.row_dual, float)
    return LPSolution(float(h.getInfo().objective_function_value), x, y, status)
