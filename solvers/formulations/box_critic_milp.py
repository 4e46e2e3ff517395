"""Exact argmax of a one-hidden-layer critic over the whole integer action box, as one persistent MILP.

For a state with hidden contribution ``c`` the critic is ``Q(a) = w2 . relu(c + W (a / amax)) + b2``: a
:class:`~solvers.formulations.relu_network.ReluNetwork` with first-layer weights ``W / amax`` (the integer actions
enter every row divided by ``amax_i``, exactly as the critic sees them), per-state first-layer bias ``c`` and
output ``w2, b2``, over the integer box ``a_i in [0, amax_i]`` (or a sub-box). It is compiled by the one big-M
compiler, :class:`~solvers.formulations.network_milp.NetworkMILP`: variables ``[a ; z ; delta]`` with hidden
outputs ``z_k >= 0`` and, only for neurons with a positive output weight (``binaries="needed"``), binaries
``delta_k``; rows, with ``pre_k = c_k + sum_i W_ki a_i / amax_i``:

    relu_ge[0,k]:  z_k >= pre_k                                   (every neuron)
    relu_le[0,k]:  z_k <= pre_k - L_k (1 - delta_k)               (w2_k > 0)
    relu_on[0,k]:  z_k <= U_k delta_k                             (w2_k > 0)

A neuron with ``w2_k <= 0`` needs no binary: maximisation pushes ``z_k`` down onto ``max(pre_k, 0)``.
``[L_k, U_k]`` are the per-state interval bounds of ``pre_k`` over the box
(:func:`~solvers.formulations.interval_bounds.interval_bounds`, exact for one affine layer); neurons they prove
always on or off get ``delta_k`` fixed, which HiGHS presolve removes. The structure depends only on the network,
so one persistent back-end model serves every state: per state only row bounds, column bounds and the big-M
coefficients change.

Optionally a known reward ``r(a) = sum_i T_i[a_i] - charge * [exists i: a_i > thr_i]``
(:class:`~solvers.formulations.separable_reward.SeparableReward` of one state) is added to ``Q``, exactly: columns
``u_{i,v}`` (one-hot binaries for ``v in [lower_i, upper_i]``) and, when ``charge > 0`` and some value can
exceed a threshold, one binary ``o`` (objective ``sum T_i[v] u_{i,v} - charge o``), with rows

    onehot[i]: sum_v u_{i,v} = 1        value[i]: a_i - sum_v v u_{i,v} = 0
    charge[i]: o - sum_{v > thr_i} u_{i,v} >= 0                   (coordinates with some v > thr_i)

The ``charge`` rows follow the thresholds, so that part of the pattern may change between states (the
back-end then reloads the model).

HiGHS 1.14 workarounds (found by the enumeration tests): ``z`` gets no column upper bound (``h_upper=False``: the
implied ``z_k <= max(U_k, 0)`` as a bound makes presolve return wrong "optimal" points) and MIP restarts are off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solvers.backends.registry import Backend, resolve_backend
from solvers.formulations.interval_bounds import interval_bounds
from solvers.formulations.network_milp import NetworkMILP
from solvers.formulations.relu_network import ReluNetwork
from solvers.formulations.separable_reward import SeparableReward
from solvers.milp import MatrixMILP
from solvers.solution import HEURISTIC, Solution


@dataclass
class _StateReward:
    """One state's reward model in float64: tables ``(n, L)``, thresholds ``(n,)`` and the charge."""

    tables: np.ndarray
    thresholds: np.ndarray
    charge: float

    def value(self, actions: np.ndarray) -> np.ndarray:
        """``r(a)`` of integer actions (..., n)."""
        a = np.rint(np.asarray(actions, dtype=float)).astype(np.int64)
        if np.any(a < 0) or np.any(a >= self.tables.shape[1]):
            raise ValueError(f"actions outside the reward tables' range 0..{self.tables.shape[1] - 1}")
        separable = self.tables[np.arange(a.shape[-1]), a].sum(-1)
        return separable - self.charge * np.any(a > self.thresholds, axis=-1)


@dataclass
class _Box:
    """The action box of one solve: ``lower <= a <= upper`` and the reward columns' values per coordinate."""

    lower: np.ndarray
    upper: np.ndarray
    u_values: list[np.ndarray]  # coordinate i's values lower_i..upper_i, in order
    u_start: np.ndarray  # first u column of each coordinate (and one past the last)


@dataclass
class BoxArgmax:
    """The action found, its exact critic value and the solver's report."""

    action: np.ndarray
    value: float
    solution: Solution


class BoxCriticMILP:
    """``max_a w2 . relu(c + W (a / amax)) + b2`` over ``a in {0..amax}`` for any per-state ``c``."""

    def __init__(
        self,
        W: np.ndarray,
        w2: np.ndarray,
        b2: float,
        amax: np.ndarray,
        time_limit: float | None = None,
        mip_rel_gap: float = 1e-4,
        seed: int = 0,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        backend: Backend = "highs",
    ) -> None:
        """``backend``: a registered back-end name (``seed`` and the restart workaround below apply to HiGHS) or a
        solver object."""
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
        # HiGHS 1.14 returns sub-optimal points flagged optimal on this big-M model when the MIP restarts
        # after root presolve (cf. ERGO-Code/HiGHS#3094, #2171); ~3% of tiny random instances without this.
        highs = {"seed": seed, "mip_allow_restart": False}
        self.solver = resolve_backend(backend, highs_args=highs, time_limit=time_limit, mip_rel_gap=mip_rel_gap)
        self.time_limit, self.mip_rel_gap = time_limit, mip_rel_gap  # per solve, also for a solver object
        feasible = MatrixMILP(
            c=np.zeros(n),
            A=sp.csr_matrix((0, n)),
            row_lower=np.zeros(0),
            row_upper=np.zeros(0),
            col_lower=np.zeros(n),
            col_upper=self.amax.astype(float),
            integer=np.ones(n, dtype=bool),
            col_names=[f"a[{i}]" for i in range(n)],
        )
        net = ReluNetwork([self.Ws, self.w2[None]], [np.zeros(H), np.array([self.b2])])
        self._compiled = NetworkMILP(net, feasible, tighten_cardinality=False, binaries="needed", h_upper=False)
        self.n_cols = self._compiled.n_cols
        self._default_box = self._make_box(self.lower, self.upper)

    def _box(self, lower: np.ndarray | None, upper: np.ndarray | None) -> _Box:
        """The constructor's box, or a per-solve one (any sub-box of ``[0, amax]``)."""
        if lower is None and upper is None:
            return self._default_box
        lo = self.lower if lower is None else np.asarray(lower, np.int64).reshape(-1)
        hi = self.upper if upper is None else np.asarray(upper, np.int64).reshape(-1)
        return self._make_box(lo, hi)

    def _make_box(self, lo: np.ndarray, hi: np.ndarray) -> _Box:
        """Validate ``lo .. hi`` and lay out its reward columns."""
        shaped = lo.shape == (self.n,) and hi.shape == (self.n,)
        if not shaped or np.any(lo < 0) or np.any(hi > self.amax) or np.any(lo > hi):
            raise ValueError(f"lower, upper: need 0 <= lower <= upper <= amax, shape ({self.n},)")
        values = [np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)]
        return _Box(lo, hi, values, self.n_cols + np.concatenate([[0], np.cumsum([v.size for v in values])]))

    def bounds(self, c: np.ndarray, box: _Box | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Interval bounds ``(L, U)`` of the pre-activations over the box, for hidden contribution ``c``
        (:func:`~solvers.formulations.interval_bounds.interval_bounds`)."""
        box = box or self._default_box
        first = np.asarray(c, dtype=float).reshape(-1)
        return interval_bounds(self._compiled.net, first, box.lower.astype(float), box.upper.astype(float))[0]

    def _state_reward(self, reward: SeparableReward, box: _Box) -> _StateReward:
        """Validate a single-state reward model against the box and convert it to float64."""
        if reward.batch != 1 or reward.n != self.n:
            raise ValueError(f"reward: expected one state with {self.n} coordinates, got ({reward.batch}, {reward.n})")
        tables = reward.tables[0].double().numpy()
        if tables.shape[1] < box.upper.max() + 1:
            raise ValueError(f"reward: tables need values 0..{box.upper.max()}, got {tables.shape[1]} columns")
        if not all(np.all(np.isfinite(tables[i, v])) for i, v in enumerate(box.u_values)):
            raise ValueError("reward: tables must be finite inside the box")
        return _StateReward(tables, reward.thresholds[0].double().numpy(), float(reward.charge[0]))

    def milp(
        self,
        c: np.ndarray,
        reward: SeparableReward | None = None,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> MatrixMILP:
        """The MILP of one state (same sparsity pattern for every ``c``; with ``reward`` the ``charge`` rows
        depend on its thresholds), over the constructor's box or ``lower .. upper``."""
        box = self._box(lower, upper)
        return self._model(c, box, None if reward is None else self._state_reward(reward, box))

    def _model(self, c: np.ndarray, box: _Box, r: _StateReward | None) -> MatrixMILP:
        base = self._milp(c, box)
        return base if r is None else self._with_reward(base, r, box)

    def _charged(self, r: _StateReward, box: _Box) -> list[np.ndarray]:
        """Per coordinate, the positions in ``box.u_values[i]`` that trigger the charge (empty lists if no ``o``)."""
        over = [vals > r.thresholds[i] for i, vals in enumerate(box.u_values)]
        if r.charge <= 0.0 or not any(m.any() for m in over):
            return [np.zeros(0, np.int64) for _ in over]
        return [np.flatnonzero(m) for m in over]

    def _with_reward(self, base: MatrixMILP, r: _StateReward, box: _Box) -> MatrixMILP:
        """Append the one-hot reward columns ``u`` (and ``o``) and their rows to the critic MILP."""
        n, starts = self.n, box.u_start
        charged = self._charged(r, box)
        has_o = any(m.size for m in charged)
        n_u = int(starts[-1] - starts[0])
        o = int(starts[-1])
        n_cols = o + int(has_o)
        rows: list[tuple[np.ndarray, np.ndarray]] = []
        lo: list[float] = []
        hi: list[float] = []
        for i, vals in enumerate(box.u_values):
            cols = starts[i] + np.arange(vals.size)
            rows.append((cols, np.ones(vals.size)))
            lo.append(1.0)
            hi.append(1.0)
        for i, vals in enumerate(box.u_values):
            nz = vals != 0  # no explicit zeros in the matrix
            rows.append((np.concatenate([[i], starts[i] + np.flatnonzero(nz)]), np.concatenate([[1.0], -vals[nz]])))
            lo.append(0.0)
            hi.append(0.0)
        names = [f"onehot[{i}]" for i in range(n)] + [f"value[{i}]" for i in range(n)]
        for i, pos in enumerate(charged):
            if pos.size:
                rows.append((np.concatenate([starts[i] + pos, [o]]), np.concatenate([-np.ones(pos.size), [1.0]])))
                lo.append(0.0)
                hi.append(np.inf)
                names.append(f"charge[{i}]")
        A0 = base.A
        indices = np.concatenate([A0.indices, *[cols for cols, _ in rows]]).astype(A0.indices.dtype)
        data = np.concatenate([A0.data, *[vals for _, vals in rows]])
        indptr = np.concatenate([A0.indptr, A0.indptr[-1] + np.cumsum([cols.size for cols, _ in rows])])
        A = sp.csr_matrix((data, indices, indptr), shape=(A0.shape[0] + len(rows), n_cols))
        gains = np.concatenate([r.tables[i, vals] for i, vals in enumerate(box.u_values)])
        extra = np.concatenate([gains, [-r.charge]]) if has_o else gains
        n_new = n_u + int(has_o)
        return MatrixMILP(
            c=np.concatenate([base.c, extra]),
            A=A,
            row_lower=np.concatenate([base.row_lower, lo]),
            row_upper=np.concatenate([base.row_upper, hi]),
            col_lower=np.concatenate([base.col_lower, np.zeros(n_new)]),
            col_upper=np.concatenate([base.col_upper, np.ones(n_new)]),
            integer=np.concatenate([base.integer, np.ones(n_new, bool)]),
            sense="max",
            offset=base.offset,
            row_names=base.row_names + names,
            col_names=base.col_names
            + [f"u[{i},{v}]" for i, vals in enumerate(box.u_values) for v in vals]
            + (["o"] if has_o else []),
        )

    def _milp(self, c: np.ndarray, box: _Box) -> MatrixMILP:
        """The critic-only MILP of one state (the compiled network's numbers for ``c`` over ``box``)."""
        first = np.asarray(c, dtype=float).reshape(-1)
        return self._compiled.build(first, lower=box.lower.astype(float), upper=box.upper.astype(float))

    # ---------------------------------------------------------------------------------- solving
    def q(
        self,
        c: np.ndarray,
        actions: np.ndarray,
        reward: SeparableReward | None = None,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> np.ndarray:
        """Exact values (float64) of actions (..., n): the critic, plus ``r(a)`` when ``reward`` is given (its
        tables must cover the box, or ``lower .. upper``)."""
        r = None if reward is None else self._state_reward(reward, self._box(lower, upper))
        return self._value(c, actions, r)

    def _value(self, c: np.ndarray, actions: np.ndarray, r: _StateReward | None) -> np.ndarray:
        pre = np.asarray(c, dtype=float).reshape(-1) + np.asarray(actions, dtype=float) @ self.Ws.T
        value = np.maximum(pre, 0.0) @ self.w2 + self.b2
        return value if r is None else value + r.value(actions)

    def incumbent(
        self,
        c: np.ndarray,
        action: np.ndarray,
        reward: SeparableReward | None = None,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> np.ndarray:
        """The full MILP vector ``[a ; z ; delta]`` (with ``reward`` also ``[u ; o]``) of an action (for warm
        starts)."""
        box = self._box(lower, upper)
        return self._incumbent(c, action, box, None if reward is None else self._state_reward(reward, box))

    def _incumbent(
        self, c: np.ndarray, action: np.ndarray, box: _Box, r: _StateReward | None, built: bool = False
    ) -> np.ndarray:
        """``built``: the compiled network's last build is already this ``c`` and box (as in :meth:`solve`)."""
        a = np.asarray(action, dtype=float).reshape(-1)
        if not built:
            self._milp(c, box)
        x = self._compiled.warm_start(a, np.zeros(0))
        if r is None:
            return x
        charged = self._charged(r, box)
        u = [(vals == ai).astype(float) for vals, ai in zip(box.u_values, a, strict=True)]  # all 0 outside box
        o = [float(any(np.any(ui[pos] > 0) for ui, pos in zip(u, charged, strict=True)))]
        return np.concatenate([x, *u, o if any(p.size for p in charged) else []])

    def solve(
        self,
        c: np.ndarray,
        warm_start: np.ndarray | None = None,
        time_limit: float | None = None,
        reward: SeparableReward | None = None,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> BoxArgmax:
        """Argmax over the box (or ``lower .. upper``) for hidden contribution ``c`` (of ``Q + r`` with a
        single-state ``reward``); ``warm_start`` is an action (n,)."""
        box = self._box(lower, upper)
        r = None if reward is None else self._state_reward(reward, box)
        milp = self._model(c, box, r)
        if warm_start is not None:
            warm_start = np.asarray(warm_start, dtype=np.int64).reshape(-1)
            if warm_start.shape != (self.n,) or np.any(warm_start < box.lower) or np.any(warm_start > box.upper):
                raise ValueError(f"warm_start: must be an action of shape ({self.n},) inside the box")
        start = None if warm_start is None else self._incumbent(c, warm_start, box, r, built=True)
        limit = self.time_limit if time_limit is None else time_limit
        sol = self.solver.solve(milp, time_limit=limit, mip_rel_gap=self.mip_rel_gap, warm_start=start)
        if sol.x is None:
            if warm_start is None:
                raise RuntimeError(f"MILP returned no solution (status {sol.status}) and no warm start was given")
            value = float(self._value(c, warm_start, r))
            return BoxArgmax(warm_start, value, Solution(None, value, sol.bound, sol.gap, HEURISTIC, sol.seconds))
        a = np.clip(np.round(sol.x[: self.n]).astype(np.int64), box.lower, box.upper)
        value = float(self._value(c, a, r))
        if warm_start is not None:
            ws_value = float(self._value(c, warm_start, r))
            if ws_value > value:
                a, value = warm_start, ws_value
        return BoxArgmax(a, value, sol)
