"""Compile a :class:`ReluNetwork` over a feasible set into a MILP, once per (network, feasible set).

Variables ``[feasible-set columns (action first, then auxiliaries) ; per hidden layer l: h_l, delta_l]``.
Each hidden neuron with per-state pre-activation bounds ``[L, U]`` and ``z = W x + b`` (``x`` is the action
for the first layer, the previous ``h`` otherwise) is encoded by the big-M rows

    relu_ge[l,k]:  h - W x             >= b            (h >= z)
    relu_le[l,k]:  h - W x - L delta   <= b - L        (h <= z - L (1 - delta))
    relu_on[l,k]:  h - U delta         <= 0            (h <= U delta)

with ``0 <= h <= max(U, 0)`` and ``delta`` binary. The sparsity pattern, shape and integrality never depend
on the state: a new state changes only the ``-L``/``-U`` coefficients, the row bounds carrying ``b`` and
``L``, and the column bounds that fix stable neurons (``U <= 0``: ``h = delta = 0``; ``L >= 0``:
``delta = 1``). A persistent back-end (:class:`~solvers.backends.highs.HighsSolver`) therefore updates its
model in place; non-persistent back-ends can call :meth:`MatrixMILP.pruned` to drop the fixed columns.
With ``tightening="lp"`` the interval bounds are further tightened per state by LP-based bound tightening
(:mod:`solvers.formulations.bound_tightening`); the structure stays the same, only more neurons come out stable.
The objective is the output layer on the last ``h`` plus the output bias as offset, maximised.

Two options serve the integer-box critic (:mod:`solvers.formulations.box_critic_milp`), compiled here too:
``binaries="needed"`` gives a neuron of the last hidden layer whose output weight is not positive no ``delta``
and no ``relu_le``/``relu_on`` rows (maximisation pushes its ``h`` down onto ``max(z, 0)`` already), and
``h_upper=False`` leaves ``h`` without the implied upper bound ``max(U, 0)`` (HiGHS 1.14 presolve returned
wrong "optimal" points with it on that model); a neuron without a binary never gets that bound.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import scipy.sparse as sp

from solvers.backends.registry import Backend, resolve_backend
from solvers.formulations.interval_bounds import interval_bounds
from solvers.formulations.relu_network import ReluNetwork
from solvers.milp import MatrixMILP

if TYPE_CHECKING:
    from solvers.formulations.bound_tightening import TighteningReport

TIGHTENING_MODES = ("interval", "lp")
BINARY_MODES = ("all", "needed")


class StableCounts(NamedTuple):
    """Hidden neurons the bounds prove always on, always off, and the rest (which need a binary)."""

    on: int
    off: int
    unstable: int


_CARDINALITY_CACHE: dict[bytes, int | None] = {}


def max_cardinality(
    feasible: MatrixMILP, n_actions: int, time_limit: float = 1.0, backend: Backend = "highs"
) -> int | None:
    """A valid upper bound on ``sum(action)`` over ``feasible`` (None when nothing useful is proven), solved by
    ``backend`` (a registered name or a solver object).

    Memoised on the feasible set's numbers (and the back-end's name): a trainer recompiles the network MILP
    whenever the weights change, and this bound depends on the feasible set alone."""
    name = backend if isinstance(backend, str) else getattr(backend, "name", type(backend).__qualname__)
    digest = hashlib.sha256(repr((n_actions, time_limit, name)).encode())
    A = feasible.A.tocsr()
    for arr in (
        A.indptr,
        A.indices,
        A.data,
        feasible.row_lower,
        feasible.row_upper,
        feasible.col_lower,
        feasible.col_upper,
        feasible.integer,
    ):
        digest.update(np.ascontiguousarray(arr).tobytes())
    key = digest.digest()
    if key not in _CARDINALITY_CACHE:
        if len(_CARDINALITY_CACHE) > 256:
            _CARDINALITY_CACHE.clear()
        _CARDINALITY_CACHE[key] = _solve_max_cardinality(feasible, n_actions, time_limit, backend)
    return _CARDINALITY_CACHE[key]


def _solve_max_cardinality(feasible: MatrixMILP, n_actions: int, time_limit: float, backend: Backend) -> int | None:
    c = np.zeros(feasible.n_cols)
    c[:n_actions] = 1.0
    solver = resolve_backend(backend, mip_rel_gap=1e-9)
    sol = solver.solve(feasible.with_objective(c, "max"), time_limit=time_limit, mip_rel_gap=1e-9)
    if sol.status == "infeasible":
        raise ValueError("the feasible set is empty")
    if not np.isfinite(sol.bound):
        return None
    k = int(np.floor(sol.bound + 1e-6))
    return k if k < n_actions else None


def cardinality_range(feasible: MatrixMILP, n_actions: int, time_limit: float = 1.0) -> tuple[int, int]:
    """Proven (least, most) ones of a feasible action: two small MILPs (HiGHS); (0, n) where nothing is proven.
    A feasible set whose actions all have the same size (exactly B interventions) gives (B, B)."""
    most = max_cardinality(feasible, n_actions, time_limit)  # raises on an empty set; memoised
    c = np.zeros(feasible.n_cols)
    c[:n_actions] = 1.0
    solver = resolve_backend("highs", mip_rel_gap=1e-9)
    least = solver.solve(feasible.with_objective(c, "min"), time_limit=time_limit, mip_rel_gap=1e-9)
    lo = int(np.ceil(least.bound - 1e-6)) if np.isfinite(least.bound) else 0
    return max(0, lo), n_actions if most is None else most


class NetworkMILP:
    """The MILP ``max net(a)`` over a feasible set; :meth:`build` fills in one state's numbers."""

    def __init__(
        self,
        net: ReluNetwork,
        feasible: MatrixMILP,
        tighten_cardinality: bool = True,
        tightening: str = "interval",
        tightening_budget: float = 0.05,
        backend: Backend = "highs",
        binaries: str = "all",
        h_upper: bool = True,
    ) -> None:
        """``backend`` (a registered name or a solver object) runs the compiler's own solves: the cardinality
        bound and, with ``tightening="lp"``, the bound-tightening LPs (HiGHS only). The caller solves the network
        MILP itself, with whichever back-end it holds. ``binaries`` and ``h_upper``: see the module docstring."""
        if tightening not in TIGHTENING_MODES:
            raise ValueError(f"tightening must be one of {TIGHTENING_MODES}, got {tightening!r}")
        if binaries not in BINARY_MODES:
            raise ValueError(f"binaries must be one of {BINARY_MODES}, got {binaries!r}")
        self.h_upper = h_upper
        self.tightening, self.tightening_budget, self.backend = tightening, tightening_budget, backend
        n = net.n_inputs
        if feasible.n_cols < n:
            raise ValueError(f"feasible set has {feasible.n_cols} columns, the network reads {n} actions")
        self.net = net
        self.feasible = feasible
        self.n_actions = n
        widths = net.hidden_widths
        self.n_hidden = int(sum(widths))
        nf, mf = feasible.n_cols, feasible.n_rows
        # which neurons get a binary: all, or (binaries="needed") not those of the last hidden layer whose
        # output weight is <= 0
        masks = [np.ones(w, dtype=bool) for w in widths]
        if binaries == "needed" and widths:
            masks[-1] = net.weights[-1][0] > 0.0
        self._binary = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)

        # ---- column layout: [feasible ; h_1 ; delta_1 ; h_2 ; delta_2 ; ...] (delta_l: the neurons with a binary)
        self.h_cols: list[np.ndarray] = []
        self.delta_cols: list[np.ndarray] = []
        col = nf
        for w, mask in zip(widths, masks, strict=True):
            m = int(mask.sum())
            self.h_cols.append(np.arange(col, col + w))
            self.delta_cols.append(np.arange(col + w, col + w + m))
            col += w + m
        self.n_cols = col
        self._network_cols = np.concatenate([np.arange(n), *self.h_cols, *self.delta_cols]).astype(np.int64)

        # ---- row layout: [feasible ; per layer: relu_ge (w) ; relu_le (m) ; relu_on (m)]
        self._ge_rows, self._le_rows, self._on_rows = [], [], []
        row = mf
        for w, mask in zip(widths, masks, strict=True):
            m = int(mask.sum())
            self._ge_rows.append(np.arange(row, row + w))
            self._le_rows.append(np.arange(row + w, row + w + m))
            self._on_rows.append(np.arange(row + w + m, row + w + 2 * m))
            row += w + 2 * m
        self.n_rows = row

        # ---- sparse structure in COO; ``tag`` >= 0 marks per-state entries: tag k < N is -L_k, N + k is -U_k
        fa = feasible.A.tocoo(copy=True)
        fa.sum_duplicates()
        rows, cols, vals = [fa.row.astype(np.int64)], [fa.col.astype(np.int64)], [fa.data.astype(float)]
        tags = [np.full(fa.nnz, -1, dtype=np.int64)]
        N = self.n_hidden
        first = 0  # index of this layer's first neuron among all hidden neurons
        for layer, (w, mask) in enumerate(zip(widths, masks, strict=True)):
            W = net.weights[layer]
            in_cols = np.arange(n) if layer == 0 else self.h_cols[layer - 1]
            # the first layer is dense so that per-state first-layer weights keep the pattern fixed
            k_idx, j_idx = np.nonzero(np.ones_like(W)) if layer == 0 else np.nonzero(W)
            kb = np.flatnonzero(mask)  # the neurons with a binary, and each neuron's place among them
            place = np.cumsum(mask) - 1
            sel = mask[k_idx]
            h, d = self.h_cols[layer], self.delta_cols[layer]
            ge, le, on = self._ge_rows[layer], self._le_rows[layer], self._on_rows[layer]
            rows += [ge[k_idx], ge, le[place[k_idx[sel]]], le, le, on, on]
            cols += [in_cols[j_idx], h, in_cols[j_idx[sel]], h[kb], d, h[kb], d]
            one, wv = np.ones(w), -W[k_idx, j_idx]
            vals += [wv, one, wv[sel], one[kb], np.zeros(kb.size), one[kb], np.zeros(kb.size)]
            static = np.full(k_idx.size, -1, dtype=np.int64)
            if layer == 0:  # tag 2N + k*n + j: entry (k, j) of the per-state first-layer weights
                static = 2 * self.n_hidden + k_idx * n + j_idx
            tags += [
                static,
                -np.ones(w, np.int64),
                static[sel],
                -np.ones(kb.size, np.int64),
                first + kb,
                -np.ones(kb.size, np.int64),
                N + first + kb,
            ]
            first += w
        r, c, v, t = (np.concatenate(a) for a in (rows, cols, vals, tags))
        order = np.lexsort((c, r))
        self._indices = c[order].astype(np.int32)
        counts = np.bincount(r, minlength=self.n_rows)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        self._data = v[order]
        t = t[order]
        self._dyn_pos = np.flatnonzero(t >= 0)
        self._dyn_src = t[self._dyn_pos]

        # ---- static bounds, integrality, names
        self._row_lower = np.concatenate([feasible.row_lower.astype(float), np.full(row - mf, -np.inf)])
        self._row_upper = np.concatenate([feasible.row_upper.astype(float), np.full(row - mf, np.inf)])
        for on_rows in self._on_rows:
            self._row_upper[on_rows] = 0.0
        self._integer = np.zeros(col, dtype=bool)
        self._integer[:nf] = feasible.integer
        for d in self.delta_cols:
            self._integer[d] = True
        self._c = np.zeros(col)
        if widths:
            self._c[self.h_cols[-1]] = net.weights[-1][0]
        else:
            self._c[:n] = net.weights[-1][0]
        self.row_names = (list(feasible.row_names) or [f"row[{i}]" for i in range(mf)]) + [
            f"relu_{kind}[{layer},{k}]"
            for layer, mask in enumerate(masks)
            for kind in ("ge", "le", "on")
            for k in (range(mask.size) if kind == "ge" else np.flatnonzero(mask))
        ]
        self.col_names = (list(feasible.col_names) or [f"x[{j}]" for j in range(nf)]) + [
            f"{kind}[{layer},{k}]"
            for layer, mask in enumerate(masks)
            for kind in ("h", "delta")
            for k in (range(mask.size) if kind == "h" else np.flatnonzero(mask))
        ]
        self.max_ones = max_cardinality(feasible, n, backend=backend) if tighten_cardinality and widths else None

        self.stable_counts = StableCounts(0, 0, self.n_hidden)
        self.interval_stable_counts = self.stable_counts
        self.tightening_report: TighteningReport | None = None
        self.bounds: list[tuple[np.ndarray, np.ndarray]] = []
        self._bias: np.ndarray | None = None
        self._col_lower: np.ndarray | None = None
        self._col_upper: np.ndarray | None = None

    # ------------------------------------------------------------------------------------ per state
    def build(
        self,
        first_bias: np.ndarray,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        first_weights: np.ndarray | None = None,
        tightening: str | None = None,
        tightening_budget: float | None = None,
        linear: np.ndarray | None = None,
        offset: float = 0.0,
    ) -> MatrixMILP:
        """The MILP for one state: its first-layer bias and, when the state also scales how actions enter
        (action-state interaction features), its first-layer action weights; ``lower``/``upper``
        optionally narrow the action box. ``tightening`` (default: the compiler's) is ``"interval"`` (the
        per-state interval bounds) or ``"lp"`` (then LP-based bound tightening within
        ``tightening_budget`` seconds, see :mod:`solvers.formulations.bound_tightening`). ``linear`` (n,) and ``offset``
        add a fixed linear term in the action to the objective: max net(a) + linear . a + offset."""
        n, f = self.n_actions, self.feasible
        net = self.net
        if first_weights is not None:
            W0 = np.asarray(first_weights, dtype=float)
            if W0.shape != net.weights[0].shape:
                raise ValueError(f"first_weights must have shape {net.weights[0].shape}, got {W0.shape}")
            net = ReluNetwork(weights=[W0, *net.weights[1:]], biases=list(net.biases))
        b0 = net.first_bias(first_bias)
        col_lower = np.concatenate([f.col_lower.astype(float), np.zeros(self.n_cols - f.n_cols)])
        col_upper = np.concatenate([f.col_upper.astype(float), np.zeros(self.n_cols - f.n_cols)])
        if lower is not None:
            col_lower[:n] = np.maximum(col_lower[:n], lower)
        if upper is not None:
            col_upper[:n] = np.minimum(col_upper[:n], upper)
        bounds = interval_bounds(net, b0, col_lower[:n], col_upper[:n], max_ones=self.max_ones)
        self._state_net = net
        milp = self._assemble(net, b0, col_lower, col_upper, bounds)
        self.interval_stable_counts = self.stable_counts
        self.tightening_report = None
        mode = tightening or self.tightening
        if mode not in TIGHTENING_MODES:
            raise ValueError(f"tightening must be one of {TIGHTENING_MODES}, got {mode!r}")
        if mode == "lp" and bounds:
            from solvers.formulations.bound_tightening import lp_tighten

            budget = self.tightening_budget if tightening_budget is None else tightening_budget
            bounds, self.tightening_report = lp_tighten(
                self,
                milp,
                bounds,
                lambda bds: self._assemble(net, b0, col_lower, col_upper, bds),
                budget,
                backend=self.backend,
            )
            milp = self._assemble(net, b0, col_lower, col_upper, bounds)
        if linear is not None:
            linear = np.asarray(linear, dtype=float).reshape(-1)
            if linear.size != n:
                raise ValueError(f"linear must have {n} entries (one per action), got {linear.size}")
            milp.c[:n] += linear
            milp.offset += float(offset)
        return milp

    def _assemble(
        self,
        net: ReluNetwork,
        b0: np.ndarray,
        col_lower: np.ndarray,
        col_upper: np.ndarray,
        bounds: list[tuple[np.ndarray, np.ndarray]],
    ) -> MatrixMILP:
        """The state's MILP from its network, column box and per-neuron pre-activation bounds."""
        col_lower, col_upper = col_lower.copy(), col_upper.copy()
        row_lower, row_upper = self._row_lower.copy(), self._row_upper.copy()
        n_on = n_off = 0
        if bounds:
            L = np.concatenate([lo for lo, _ in bounds])
            U = np.concatenate([up for _, up in bounds])
            off, on = U <= 0.0, (L >= 0.0) & (U > 0.0)
            n_on, n_off = int(on.sum()), int(off.sum())
            h_all = np.concatenate(self.h_cols)
            d_all = np.concatenate(self.delta_cols)
            b = self._binary
            upper = np.where(off, 0.0, np.maximum(U, 0.0)) if self.h_upper else np.full(U.shape, np.inf)
            # a neuron without a binary keeps h >= max(z, 0) only: an upper bound on its h made HiGHS 1.14's presolve
            # return wrong "optimal" points (0.05 below the optimum with SCIP and presolve off agreeing on it)
            upper[~b] = np.inf
            col_upper[h_all] = upper
            col_upper[d_all] = np.where(off[b], 0.0, 1.0)
            col_lower[d_all] = np.where(on[b], 1.0, 0.0)
            bias = np.concatenate([b0, *net.biases[1:-1]])
            row_lower[np.concatenate(self._ge_rows)] = bias
            row_upper[np.concatenate(self._le_rows)] = (bias - L)[b]
            dyn = np.concatenate([-L, -U, -net.weights[0].ravel()])
        else:
            dyn = np.zeros(0)
        data = self._data.copy()
        data[self._dyn_pos] = dyn[self._dyn_src]
        A = sp.csr_matrix((data, self._indices, self._indptr), shape=(self.n_rows, self.n_cols), copy=False)
        offset = float(net.biases[-1][0]) if bounds else float(b0[0])
        self.stable_counts = StableCounts(n_on, n_off, self.n_hidden - n_on - n_off)
        self.bounds = bounds
        self._bias, self._col_lower, self._col_upper = b0, col_lower, col_upper
        return MatrixMILP(
            c=self._c.copy(),
            A=A,
            row_lower=row_lower,
            row_upper=row_upper,
            col_lower=col_lower,
            col_upper=col_upper,
            integer=self._integer.copy(),
            sense="max",
            offset=offset,
            row_names=list(self.row_names),
            col_names=list(self.col_names),
        )

    # ----------------------------------------------------------------------------------- incumbents
    def _network_values(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """h and delta (all layers, concatenated) for ``action`` under the last build's state and bounds."""
        bias, col_lower, col_upper = self._bias, self._col_lower, self._col_upper
        if bias is None or col_lower is None or col_upper is None:
            raise RuntimeError("call build(first_bias) before asking for a warm start")
        acts = self._state_net.hidden_activations(action, bias)
        if not acts:
            return np.zeros(0), np.zeros(0)
        z = np.concatenate([a for a, _ in acts])
        h = np.concatenate([b for _, b in acts])
        h_all = np.concatenate(self.h_cols)
        d_all = np.concatenate(self.delta_cols)
        h = np.clip(h, col_lower[h_all], col_upper[h_all])
        delta = np.clip((z[self._binary] > 0.0).astype(float), col_lower[d_all], col_upper[d_all])
        return h, delta

    def warm_start(self, action: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """Full variable vector for a feasible ``action`` with auxiliaries ``aux`` (last built state)."""
        a = np.asarray(action, dtype=float).reshape(-1)
        y = np.asarray(aux, dtype=float).reshape(-1)
        if a.size != self.n_actions or y.size != self.feasible.n_cols - self.n_actions:
            n_aux = self.feasible.n_cols - self.n_actions
            raise ValueError(f"expected {self.n_actions} actions and {n_aux} auxiliary values")
        h, delta = self._network_values(a)
        return np.concatenate([a, y, *self._interleave(h, delta)])

    def partial_warm_start(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, values)`` over the action, h and delta columns; the back-end completes the rest."""
        a = np.asarray(action, dtype=float).reshape(-1)
        if a.size != self.n_actions:
            raise ValueError(f"expected {self.n_actions} actions")
        h, delta = self._network_values(a)
        return self._network_cols, np.concatenate([a, h, delta])

    def _interleave(self, h: np.ndarray, delta: np.ndarray) -> list[np.ndarray]:
        out, start, start_d = [], 0, 0
        for h_cols, d_cols in zip(self.h_cols, self.delta_cols, strict=True):
            w, m = h_cols.size, d_cols.size
            out += [h[start : start + w], delta[start_d : start_d + m]]
            start, start_d = start + w, start_d + m
        return out

    def decode(self, x: np.ndarray) -> np.ndarray:
        """The integer action of a solution vector."""
        return np.round(np.asarray(x)[: self.n_actions]).astype(np.int64)
