"""Exact argmax of a one-hidden-layer critic over the whole integer action box, as one persistent MILP.

For a state with hidden contribution ``c`` the critic is ``Q(a) = w2 . relu(c + W (a / amax)) + b2``.
Variables ``[a ; z ; delta]``: integer actions ``a_i in [0, amax_i]`` (entering every row divided by
``amax_i``, exactly as the critic sees them), hidden outputs ``z_k >= 0`` and, only for neurons with a
positive output weight, binaries ``delta_k``. Rows, with ``pre_k = c_k + sum_i W_ki a_i / amax_i``:

    relu_lower[k]:  z_k >= pre_k                                  (every neuron)
    relu_upper[k]:  z_k <= pre_k - L_k (1 - delta_k)              (w2_k > 0)
    relu_active[k]: z_k <= U_k delta_k                            (w2_k > 0)

A neuron with ``w2_k < 0`` needs no binary: maximisation pushes ``z_k`` down onto ``max(pre_k, 0)``.
``[L_k, U_k]`` are the per-state interval bounds of ``pre_k`` over the box (exact for one affine layer);
neurons they prove always on or off get ``delta_k`` fixed, which HiGHS presolve removes. The structure
depends only on the network, so one :class:`~solvers.highs_backend.HighsSolver` model serves every state:
per state only row bounds, column bounds and the big-M coefficients change.

HiGHS 1.14 workarounds (found by the enumeration tests): ``z`` gets no column upper bound (the implied
``z_k <= max(U_k, 0)`` as a bound makes presolve return wrong "optimal" points) and MIP restarts are off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solvers.highs_backend import HighsSolver
from solvers.milp import MatrixMILP
from solvers.solution import HEURISTIC, Solution


@dataclass
class BoxArgmax:
    """The action found, its exact critic value and the solver's report."""

    action: np.ndarray
    value: float
    solution: Solution


class BoxCriticMILP:
    """``max_a w2 . relu(c + W (a / amax)) + b2`` over ``a in {0..amax}`` for any per-state ``c``."""

    def __init__(
        self, W: np.ndarray, w2: np.ndarray, b2: float, amax: np.ndarray,
        time_limit: float | None = None, mip_rel_gap: float = 1e-4, seed: int = 0,
        lower: np.ndarray | None = None, upper: np.ndarray | None = None,
    ) -> None:
        self.W = np.asarray(W, dtype=float)
        self.w2 = np.asarray(w2, dtype=float).reshape(-1)
        self.b2 = float(b2)
        self.amax = np.asarray(amax, dtype=np.int64).reshape(-1)
        H, n = self.W.shape
        if self.w2.shape != (H,) or self.amax.shape != (n,):
            raise ValueError(f"expected w2 of shape ({H},) and amax of shape ({n},)")
        # optional sub-box (trust region) lower <= a <= upper; the critic's scaling stays a / amax
        self.lower = np.zeros(n, np.int64) if lower is None else np.asarray(lower, np.int64).reshape(-1)
        self.upper = self.amax.copy() if upper is None else np.asarray(upper, np.int64).reshape(-1)
        if self.lower.shape != (n,) or self.upper.shape != (n,) or np.any(self.lower > self.upper):
            raise ValueError(f"lower and upper must have shape ({n},) with lower <= upper")
        self.n, self.H = n, H
        self.Ws = self.W / self.amax  # weights on the integer action
        self.pos = np.flatnonzero(self.w2 > 0)
        self.solver = HighsSolver(time_limit=time_limit, mip_rel_gap=mip_rel_gap, seed=seed)
        # HiGHS 1.14 returns sub-optimal points flagged optimal on this big-M model when the MIP restarts
        # after root presolve (cf. ERGO-Code/HiGHS#3094, #2171); ~3% of tiny random instances without this.
        self.solver._h.setOptionValue("mip_allow_restart", False)
        self._build()

    # ---------------------------------------------------------------------------------- structure
    def _build(self) -> None:
        """Column layout and the constant part of the rows; big-M entries are filled per state."""
        n, H, P = self.n, self.H, self.pos.size
        self.n_cols = n + H + P
        z = n + np.arange(H)
        d = n + H + np.arange(P)
        rows: list[np.ndarray] = []
        # relu_lower[k]: -Ws[k] a + z_k ; relu_upper[p]: -Ws[k] a + z_k - L_k d_p ; relu_active[p]: z_k - U_k d_p
        for k in range(H):
            rows.append(np.concatenate([np.arange(n), [z[k]]]))
        for p, k in enumerate(self.pos):
            rows.append(np.concatenate([np.arange(n), [z[k], d[p]]]))
        for p, k in enumerate(self.pos):
            rows.append(np.array([z[k], d[p]]))
        self._indices = np.concatenate(rows)
        self._indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
        base = [np.concatenate([-self.Ws[k], [1.0]]) for k in range(H)]
        base += [np.concatenate([-self.Ws[k], [1.0, 0.0]]) for k in self.pos]
        base += [np.array([1.0, 0.0]) for _ in self.pos]
        self._data = np.concatenate(base)
        # positions of the big-M coefficients (last entry of the relu_upper / relu_active rows)
        self._m_upper = self._indptr[H + 1 : H + P + 1] - 1
        self._m_active = self._indptr[H + P + 1 :] - 1
        self.c_obj = np.concatenate([np.zeros(n), self.w2, np.zeros(P)])
        self.integer = np.concatenate([np.ones(n, bool), np.zeros(H, bool), np.ones(P, bool)])
        self.row_names = (
            [f"relu_lower[{k}]" for k in range(H)] + [f"relu_upper[{k}]" for k in self.pos]
            + [f"relu_active[{k}]" for k in self.pos]
        )
        self.col_names = [f"a[{i}]" for i in range(n)] + [f"z[{k}]" for k in range(H)] + [
            f"delta[{k}]" for k in self.pos
        ]

    def bounds(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interval bounds ``(L, U)`` of the pre-activations over the box, for hidden contribution ``c``."""
        c = np.asarray(c, dtype=float).reshape(-1)
        lo, hi = self.Ws * self.lower, self.Ws * self.upper  # (H, n): each term's value at either end
        return c + np.minimum(lo, hi).sum(1), c + np.maximum(lo, hi).sum(1)

    def milp(self, c: np.ndarray) -> MatrixMILP:
        """The MILP of one state (same sparsity pattern for every ``c``)."""
        c = np.asarray(c, dtype=float).reshape(-1)
        H, P = self.H, self.pos.size
        L, U = self.bounds(c)
        Lp, Up = L[self.pos], U[self.pos]
        # Stable neurons get delta fixed; their big-M is then irrelevant, so any nonzero value keeps the pattern.
        on, off = Lp >= 0.0, Up <= 0.0
        data = self._data.copy()
        data[self._m_upper] = -np.where(Lp < 0.0, Lp, -1.0)
        data[self._m_active] = -np.where(Up > 0.0, Up, 1.0)
        A = sp.csr_matrix((data, self._indices, self._indptr), shape=(H + 2 * P, self.n_cols))
        row_lower = np.concatenate([c, np.full(2 * P, -np.inf)])
        row_upper = np.concatenate([np.full(H, np.inf), c[self.pos] - np.where(Lp < 0.0, Lp, -1.0), np.zeros(P)])
        col_lower = np.concatenate([self.lower.astype(float), np.zeros(H), on.astype(float)])
        col_upper = np.concatenate([self.upper.astype(float), np.full(H, np.inf), np.where(off, 0.0, 1.0)])
        return MatrixMILP(
            c=self.c_obj, A=A, row_lower=row_lower, row_upper=row_upper, col_lower=col_lower,
            col_upper=col_upper, integer=self.integer, sense="max", offset=self.b2,
            row_names=self.row_names, col_names=self.col_names,
        )

    # ---------------------------------------------------------------------------------- solving
    def q(self, c: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Exact critic values (float64) of actions (..., n)."""
        pre = np.asarray(c, dtype=float).reshape(-1) + np.asarray(actions, dtype=float) @ self.Ws.T
        return np.maximum(pre, 0.0) @ self.w2 + self.b2

    def incumbent(self, c: np.ndarray, action: np.ndarray) -> np.ndarray:
        """The full MILP vector ``[a ; z ; delta]`` of an action (for warm starts)."""
        a = np.asarray(action, dtype=float).reshape(-1)
        pre = np.asarray(c, dtype=float).reshape(-1) + self.Ws @ a
        L, U = self.bounds(c)
        on = np.where(L >= 0.0, True, np.where(U <= 0.0, False, pre > 0.0))
        return np.concatenate([a, np.maximum(pre, 0.0), on[self.pos].astype(float)])

    def solve(
        self, c: np.ndarray, warm_start: np.ndarray | None = None, time_limit: float | None = None,
    ) -> BoxArgmax:
        """Argmax over the box for hidden contribution ``c``; ``warm_start`` is an action (n,)."""
        milp = self.milp(c)
        start = None if warm_start is None else self.incumbent(c, warm_start)
        sol = self.solver.solve(milp, time_limit=time_limit, warm_start=start)
        if sol.x is None:
            if warm_start is None:
                raise RuntimeError(f"MILP returned no solution (status {sol.status}) and no warm start was given")
            a = np.asarray(warm_start, dtype=np.int64).reshape(-1)
            value = float(self.q(c, a))
            return BoxArgmax(a, value, Solution(None, value, sol.bound, sol.gap, HEURISTIC, sol.seconds))
        a = np.clip(np.round(sol.x[: self.n]).astype(np.int64), self.lower, self.upper)
        value = float(self.q(c, a))
        if warm_start is not None:
            ws = np.asarray(warm_start, dtype=np.int64).reshape(-1)
            ws_value = float(self.q(c, ws))
            if ws_value > value:
                a, value = ws, ws_value
        return BoxArgmax(a, value, sol)
