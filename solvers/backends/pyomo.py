"""Pyomo back-end: a :class:`~solvers.milp.MatrixMILP` as a pyomo model solved by a persistent HiGHS interface.

Every number of the matrix form (costs, matrix coefficients, row bounds) is a mutable pyomo ``Param`` and
column bounds live on the variables, so a MILP with the same structure (shape, sparsity pattern,
integrality, sense and which row sides are finite) only updates values; the persistent interface
(``pyomo.contrib.solver`` 'highs', checked against pyomo 6.10.1 + highspy 1.14; ``appsi`` as a fallback)
pushes the changes to its HiGHS model. Slower than :class:`~solvers.backends.highs.HighsSolver` (pyomo
expression handling costs milliseconds per solve) but it is the door to pyomo modelling and OMLT.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyomo.environ as pe

from solvers.milp import MatrixMILP
from solvers.solution import HEURISTIC, INFEASIBLE, OPTIMAL, TIME_LIMIT, Solution, relative_gap


def persistent_highs():
    """A persistent pyomo HiGHS interface: ``pyomo.contrib.solver`` 'highs', else ``appsi``'s."""
    try:
        from pyomo.contrib.solver.solvers.highs import Highs

        solver = Highs()
        if solver.available():
            return solver
    except ImportError:  # pragma: no cover - older pyomo
        pass
    from pyomo.contrib.appsi.solvers import Highs as AppsiHighs

    return AppsiHighs()


def solve_pyomo(
    model: pe.ConcreteModel,
    objective_sense: str,
    solver=None,
    time_limit: float | None = None,
    mip_rel_gap: float = 1e-4,
) -> tuple[str, float, float]:
    """Solve a pyomo model with (persistent) HiGHS -> (status, objective, dual bound); values loaded into vars."""
    solver = solver or persistent_highs()
    cfg = solver.config
    cfg.load_solutions = False
    if hasattr(cfg, "raise_exception_on_nonoptimal_result"):
        cfg.raise_exception_on_nonoptimal_result = False
    # None would leave a persistent solver's previous limit in place (pyomo sets the option only when given)
    cfg.time_limit = float(time_limit) if time_limit is not None else math.inf
    cfg.rel_gap = float(mip_rel_gap)
    res = solver.solve(model)
    tc = res.termination_condition.name
    worst = -math.inf if objective_sense == "max" else math.inf
    if tc in ("provenInfeasible", "infeasible", "infeasibleOrUnbounded"):
        return INFEASIBLE, worst, worst
    incumbent = getattr(res, "incumbent_objective", getattr(res, "best_feasible_objective", None))
    if incumbent is None:
        return HEURISTIC, worst, -worst
    res.solution_loader.load_vars()
    bound = getattr(res, "objective_bound", getattr(res, "best_objective_bound", None))
    optimal = tc in ("convergenceCriteriaSatisfied", "optimal")
    return (OPTIMAL if optimal else TIME_LIMIT), float(incumbent), float(bound) if bound is not None else -worst


class PyomoSolver:
    """Solve :class:`MatrixMILP` instances through one persistent pyomo model + HiGHS."""

    name = "pyomo-highs"
    persistent = True

    def __init__(self, time_limit: float | None = None, mip_rel_gap: float = 1e-4) -> None:
        self.time_limit, self.mip_rel_gap = time_limit, mip_rel_gap
        self._solver = persistent_highs()
        self._key: tuple | None = None
        self.model: pe.ConcreteModel | None = None
        self.n_rebuilds = 0

    @staticmethod
    def _structure(milp: MatrixMILP) -> tuple:
        A = milp.A.tocsr()
        return (
            A.shape,
            A.indptr.tobytes(),
            A.indices.tobytes(),
            milp.integer.tobytes(),
            milp.sense,
            np.isfinite(milp.row_lower).tobytes(),
            np.isfinite(milp.row_upper).tobytes(),
        )

    def _build(self, milp: MatrixMILP) -> None:
        A = milp.A.tocsr()
        m = pe.ConcreteModel()
        n, r = milp.n_cols, milp.n_rows
        m.x = pe.Var(range(n), within=pe.Reals)
        for j in np.flatnonzero(milp.integer):
            m.x[int(j)].domain = pe.Integers
        m.coef = pe.Param(range(A.nnz), mutable=True, initialize=dict(enumerate(A.data.tolist())))
        m.cost = pe.Param(range(n), mutable=True, initialize=dict(enumerate(milp.c.tolist())))
        m.offset = pe.Param(mutable=True, initialize=float(milp.offset))
        lo = np.where(np.isfinite(milp.row_lower), milp.row_lower, 0.0)
        hi = np.where(np.isfinite(milp.row_upper), milp.row_upper, 0.0)
        m.rl = pe.Param(range(r), mutable=True, initialize=dict(enumerate(lo.tolist())))
        m.ru = pe.Param(range(r), mutable=True, initialize=dict(enumerate(hi.tolist())))
        has_lo, has_hi = np.isfinite(milp.row_lower), np.isfinite(milp.row_upper)

        def row(m, i):
            body = sum(m.coef[k] * m.x[int(A.indices[k])] for k in range(A.indptr[i], A.indptr[i + 1]))
            if has_lo[i] and has_hi[i]:
                return pe.inequality(m.rl[i], body, m.ru[i])
            if has_lo[i]:
                return body >= m.rl[i]
            if has_hi[i]:
                return body <= m.ru[i]
            return pe.Constraint.Skip

        m.rows = pe.Constraint(range(r), rule=row)
        m.obj = pe.Objective(
            expr=sum(m.cost[j] * m.x[j] for j in range(n)) + m.offset,
            sense=pe.maximize if milp.sense == "max" else pe.minimize,
        )
        self.model = m
        self.n_rebuilds += 1

    def _refill(self, milp: MatrixMILP) -> pe.ConcreteModel:
        """Write ``milp``'s numbers into the built model's mutable parameters and bounds; returns the model."""
        m = self.model
        assert m is not None
        for k, v in enumerate(milp.A.tocsr().data.tolist()):
            m.coef[k] = v
        for j, v in enumerate(milp.c.tolist()):
            m.cost[j] = v
        m.offset = float(milp.offset)
        for i, (lo, hi) in enumerate(zip(milp.row_lower.tolist(), milp.row_upper.tolist(), strict=True)):
            if math.isfinite(lo):
                m.rl[i] = lo
            if math.isfinite(hi):
                m.ru[i] = hi
        for j, (lo, hi) in enumerate(zip(milp.col_lower.tolist(), milp.col_upper.tolist(), strict=True)):
            m.x[j].setlb(lo if math.isfinite(lo) else None)
            m.x[j].setub(hi if math.isfinite(hi) else None)
        return m

    def solve(
        self,
        milp: MatrixMILP,
        time_limit: float | None = None,
        mip_rel_gap: float | None = None,
        warm_start: np.ndarray | None = None,
    ) -> Solution:
        """Solve ``milp`` (``warm_start`` is accepted for interface parity and ignored)."""
        start = time.perf_counter()
        key = self._structure(milp)
        if key != self._key:
            self._build(milp)
            self._key = key
        model = self._refill(milp)
        limit = time_limit if time_limit is not None else self.time_limit
        gap = mip_rel_gap if mip_rel_gap is not None else self.mip_rel_gap
        status, _, bound = solve_pyomo(model, milp.sense, self._solver, limit, gap)
        seconds = time.perf_counter() - start
        worst = -math.inf if milp.sense == "max" else math.inf
        if status == INFEASIBLE:
            return Solution(None, worst, worst, math.inf, INFEASIBLE, seconds)
        if status == HEURISTIC:
            return Solution(None, worst, -worst, math.inf, HEURISTIC, seconds)
        x = np.array([model.x[j].value or 0.0 for j in range(milp.n_cols)], dtype=float)
        x[milp.integer] = np.round(x[milp.integer])
        objective = milp.objective(x)
        bound = max(bound, objective) if milp.sense == "max" else min(bound, objective)
        return Solution(x, objective, bound, relative_gap(objective, bound), status, seconds)
