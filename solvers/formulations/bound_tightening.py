"""LP-based (optimisation-based) bound tightening of a network MILP's pre-activation bounds, per state.

Starting from the interval bounds, layer by layer: for every neuron still unstable (``L < 0 < U``) minimise
and maximise its pre-activation ``z = w . x + b`` (``x`` = the actions for the first layer, the previous
layer's ``h`` otherwise) over the LP relaxation of the network MILP (feasible set + big-M rows with the
current bounds, binaries relaxed to [0, 1]). The LP optimum bounds ``z`` over every feasible action, so
``[max(L, lp_min), min(U, lp_max)]`` is valid; the tightened layer is written back into the LP (smaller
big-M constants) before the next layer, and interval arithmetic carries the gain to the later layers. A
time budget stops the loop early; the bounds are valid whenever it stops. One persistent highspy LP is
hot-started across the objective changes (presolve off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np

from solvers.backends.registry import Backend, require_highs, resolve_backend
from solvers.formulations.interval_bounds import Bounds, propagate
from solvers.milp import MatrixMILP


@dataclass
class TighteningReport:
    """What one tightening pass did: stable neurons before/after (on, off, unstable), LPs solved, time."""

    stable_before: tuple[int, int, int]
    stable_after: tuple[int, int, int]
    n_lps: int
    seconds: float
    complete: bool

    @property
    def newly_stable(self) -> int:
        return self.stable_before[2] - self.stable_after[2]


def _counts(bounds: Bounds) -> tuple[int, int, int]:
    L = np.concatenate([lo for lo, _ in bounds])
    U = np.concatenate([up for _, up in bounds])
    off = U <= 0.0
    on = (L >= 0.0) & ~off
    return int(on.sum()), int(off.sum()), int(L.size - on.sum() - off.sum())


def _prefix(compiled, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the feasible set and hidden layers ``< layer`` (all a pre-activation of ``layer``
    depends on): a smaller LP than the whole network MILP, with the same optimum for that objective."""
    layers = list(zip(compiled.h_cols[:layer], compiled.delta_cols[:layer], strict=True))
    n_rows = compiled.feasible.n_rows + sum(h.size + 2 * d.size for h, d in layers)
    n_cols = compiled.feasible.n_cols + sum(h.size + d.size for h, d in layers)
    return np.arange(n_rows), np.arange(n_cols)


def lp_tighten(
    compiled,
    milp: MatrixMILP,
    bounds: Bounds,
    assemble: Callable[[Bounds], MatrixMILP],
    time_budget: float = 0.05,
    tol: float = 1e-7,
    backend: Backend = "highs",
) -> tuple[Bounds, TighteningReport]:
    """Tighten ``bounds`` of ``compiled`` (a :class:`~solvers.formulations.network_milp.NetworkMILP` whose last build
    is ``milp``); ``assemble(bounds)`` rebuilds the state's MILP from bounds. Returns the bounds and a report.

    HiGHS only: the LPs are hot-started re-solves of one loaded highspy model under objective changes, which the
    back-end protocol does not offer; ``backend`` must be ``"highs"`` (a fresh model with presolve off) or a
    :class:`~solvers.backends.highs.HighsSolver` dedicated to this (its loaded model is replaced), and any other
    back-end is refused naming the field ``backend``."""
    start = time.perf_counter()
    net = compiled._state_net
    b0 = compiled._bias
    biases = [b0, *net.biases[1:-1]]
    bounds = [(lo.copy(), up.copy()) for lo, up in bounds]
    before = _counts(bounds)
    solver = require_highs(resolve_backend(backend, highs_args={"options": {"presolve": "off"}}), "LP bound tightening")
    h = solver.highs
    n_lps, complete = 0, True
    current = milp
    for layer, (W, b) in enumerate(zip(net.weights[:-1], biases, strict=True)):
        L, U = bounds[layer]
        todo = np.flatnonzero((L < 0.0) & (U > 0.0))
        if todo.size == 0:
            continue
        if time.perf_counter() - start > time_budget:
            complete = False
            break
        rows, keep = _prefix(compiled, layer)
        A = current.A[rows][:, keep]
        relaxed = MatrixMILP(
            c=np.zeros(keep.size),
            A=A.tocsr(),
            row_lower=current.row_lower[rows],
            row_upper=current.row_upper[rows],
            col_lower=current.col_lower[keep],
            col_upper=current.col_upper[keep],
            integer=np.zeros(keep.size, bool),
        )
        solver.load(relaxed)
        # the kept columns are a prefix of the layout, so the objective columns keep their indices
        cols = (np.arange(compiled.n_actions) if layer == 0 else compiled.h_cols[layer - 1]).astype(np.int32)
        for k in todo:
            if time.perf_counter() - start > time_budget:
                complete = False
                break
            h.changeColsCost(cols.size, cols, W[k].astype(float))
            for sense in (highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize):
                h.changeObjectiveSense(sense)
                h.run()
                n_lps += 1
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    continue
                z = h.getInfo().objective_function_value + b[k]
                slack = tol * (1.0 + abs(z))
                if sense == highspy.ObjSense.kMaximize:
                    U[k] = min(U[k], z + slack)
                    if U[k] <= 0.0:
                        break
                else:
                    L[k] = max(L[k], z - slack)
        bounds[layer] = (L, np.maximum(U, L))
        propagate(net.weights, biases, bounds, layer)
        if not complete:
            break
        current = assemble(bounds)
    after = _counts(bounds)
    return bounds, TighteningReport(before, after, n_lps, time.perf_counter() - start, complete)
