"""OR-Tools back-ends for :class:`~solvers.milp.MatrixMILP`: SCIP or CBC through pywraplp, CP-SAT for integers.

``OrToolsSolver`` rebuilds a pywraplp model per solve (OR-Tools has no cheap in-place update of a loaded
matrix that we rely on) and reports the dual bound from ``BestBound()``. ``CpSatSolver`` accepts only pure
integer models: CP-SAT works over integers, so every row and the objective are multiplied by ``scale`` and
must then be integral (within ``1e-9``); a model with continuous columns or fractional scaled coefficients
raises ``ValueError`` rather than being silently rounded. Network embeddings (continuous ``h``) are
therefore SCIP/CBC territory; pure allocation models (the myopic baselines) suit CP-SAT.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from solvers.milp import MatrixMILP
from solvers.solution import HEURISTIC, INFEASIBLE, OPTIMAL, TIME_LIMIT, Solution, relative_gap

_BIG = 1e20


def _clip(v: float) -> float:
    return float(np.clip(v, -_BIG, _BIG)) if np.isfinite(v) else (math.inf if v > 0 else -math.inf)


def _worst(milp: MatrixMILP) -> float:
    return -math.inf if milp.sense == "max" else math.inf


def _finish(milp: MatrixMILP, x: np.ndarray | None, bound: float, optimal: bool, seconds: float) -> Solution:
    """A :class:`Solution` from a primal vector (or None) and a dual bound, in ``milp``'s sense."""
    worst = _worst(milp)
    if x is None:
        return Solution(None, worst, -worst, math.inf, HEURISTIC, seconds)
    x = np.asarray(x, dtype=float)
    x[milp.integer] = np.round(x[milp.integer])
    objective = milp.objective(x)
    if not np.isfinite(bound):
        bound = objective if optimal else -worst
    bound = max(bound, objective) if milp.sense == "max" else min(bound, objective)
    return Solution(x, objective, bound, relative_gap(objective, bound), OPTIMAL if optimal else TIME_LIMIT, seconds)


class OrToolsSolver:
    """Solve a :class:`MatrixMILP` with SCIP (default) or CBC through ``pywraplp``."""

    def __init__(self, backend: str = "SCIP", time_limit: float | None = None, mip_rel_gap: float = 1e-4) -> None:
        if pywraplp.Solver.CreateSolver(backend) is None:
            raise ValueError(f"OR-Tools solver {backend!r} is not available in this build")
        self.backend = backend
        self.name = f"ortools-{backend.lower()}"
        self.time_limit = time_limit
        self.mip_rel_gap = mip_rel_gap

    def solve(
        self,
        milp: MatrixMILP,
        time_limit: float | None = None,
        mip_rel_gap: float | None = None,
        warm_start: np.ndarray | None = None,
    ) -> Solution:
        """Solve ``milp``; ``warm_start`` (a full vector) is passed as a hint."""
        start = time.perf_counter()
        s = pywraplp.Solver.CreateSolver(self.backend)
        inf = s.infinity()
        lo = np.where(np.isfinite(milp.col_lower), milp.col_lower, -inf)
        hi = np.where(np.isfinite(milp.col_upper), milp.col_upper, inf)
        xs = [
            (s.IntVar if milp.integer[j] else s.NumVar)(float(lo[j]), float(hi[j]), f"x{j}") for j in range(milp.n_cols)
        ]
        A = milp.A.tocsr()
        rl = np.where(np.isfinite(milp.row_lower), milp.row_lower, -inf)
        ru = np.where(np.isfinite(milp.row_upper), milp.row_upper, inf)
        for i in range(milp.n_rows):
            row = s.RowConstraint(float(rl[i]), float(ru[i]), f"r{i}")
            for k in range(A.indptr[i], A.indptr[i + 1]):
                row.SetCoefficient(xs[A.indices[k]], float(A.data[k]))
        obj = s.Objective()
        for j in np.flatnonzero(milp.c):
            obj.SetCoefficient(xs[j], float(milp.c[j]))
        obj.SetOffset(float(milp.offset))
        if milp.sense == "max":
            obj.SetMaximization()
        else:
            obj.SetMinimization()
        limit = time_limit if time_limit is not None else self.time_limit
        if limit is not None:
            s.SetTimeLimit(max(int(limit * 1000), 1))
        params = pywraplp.MPSolverParameters()
        gap = mip_rel_gap if mip_rel_gap is not None else self.mip_rel_gap
        params.SetDoubleParam(params.RELATIVE_MIP_GAP, float(gap))
        if warm_start is not None:
            s.SetHint(xs, [float(v) for v in np.asarray(warm_start, dtype=float)])
        status = s.Solve(params)
        seconds = time.perf_counter() - start
        if status == pywraplp.Solver.INFEASIBLE:
            w = _worst(milp)
            return Solution(None, w, w, math.inf, INFEASIBLE, seconds)
        if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return _finish(milp, None, math.nan, False, seconds)
        x = np.array([v.solution_value() for v in xs])
        # an LP's objective bounds it only when proven optimal (stopped early, the incumbent is on the wrong side)
        lp_bound = obj.Value() if status == pywraplp.Solver.OPTIMAL else math.nan
        bound = obj.BestBound() + 0.0 if milp.integer.any() else lp_bound
        return _finish(milp, x, _clip(bound), status == pywraplp.Solver.OPTIMAL, seconds)


class CpSatSolver:
    """Solve a pure-integer :class:`MatrixMILP` with CP-SAT (coefficients scaled by ``scale`` to integers)."""

    name = "cpsat"

    def __init__(
        self, time_limit: float | None = None, mip_rel_gap: float = 1e-4, scale: float = 1.0, workers: int = 1
    ) -> None:
        self.time_limit, self.mip_rel_gap, self.scale, self.workers = time_limit, mip_rel_gap, scale, workers

    @staticmethod
    def supports(milp: MatrixMILP, scale: float = 1.0) -> bool:
        """Pure integer with finite column bounds and integral scaled row coefficients."""
        if not milp.integer.all() or not (np.isfinite(milp.col_lower).all() and np.isfinite(milp.col_upper).all()):
            return False
        data = milp.A.data * scale
        return bool(np.all(np.abs(data - np.round(data)) <= 1e-9))

    def solve(
        self,
        milp: MatrixMILP,
        time_limit: float | None = None,
        mip_rel_gap: float | None = None,
        warm_start: np.ndarray | None = None,
    ) -> Solution:
        """Rows are scaled by ``scale`` (bounds rounded inwards); the objective is scaled to integers by the
        smallest power of ten up to 1e6 that makes it integral, else rounded at 1e6 (then the reported
        objective is recomputed exactly from ``x``, and the bound is widened by the rounding error)."""
        start = time.perf_counter()
        if not self.supports(milp, self.scale):
            raise ValueError("CP-SAT needs a pure-integer model with finite bounds and integral scaled rows")
        m = cp_model.CpModel()
        xs = [
            m.new_int_var(math.ceil(lo - 1e-9), math.floor(hi + 1e-9), f"x{j}")
            for j, (lo, hi) in enumerate(zip(milp.col_lower, milp.col_upper, strict=True))
        ]
        A = milp.A.tocsr()
        coef = np.round(A.data * self.scale).astype(np.int64)
        for i in range(milp.n_rows):
            sl = slice(A.indptr[i], A.indptr[i + 1])
            expr = sum(int(c) * xs[j] for c, j in zip(coef[sl], A.indices[sl], strict=True))
            lo, hi = milp.row_lower[i] * self.scale, milp.row_upper[i] * self.scale
            if np.isfinite(lo):
                m.add(expr >= math.ceil(lo - 1e-9))
            if np.isfinite(hi):
                m.add(expr <= math.floor(hi + 1e-9))
        obj_scale = next(
            (10.0**p for p in range(7) if np.allclose(milp.c * 10.0**p, np.round(milp.c * 10.0**p), atol=1e-9, rtol=0)),
            1e6,
        )
        oc = np.round(milp.c * obj_scale).astype(np.int64)
        rounding = float(np.abs(milp.c * obj_scale - oc) @ np.maximum(np.abs(milp.col_lower), np.abs(milp.col_upper)))
        expr = sum(int(oc[j]) * xs[j] for j in np.flatnonzero(oc))
        if milp.sense == "max":
            m.maximize(expr)
        else:
            m.minimize(expr)
        if warm_start is not None:
            for v, val in zip(xs, np.round(np.asarray(warm_start)).astype(int), strict=True):
                m.add_hint(v, int(val))
        solver = cp_model.CpSolver()
        limit = time_limit if time_limit is not None else self.time_limit
        if limit is not None:
            solver.parameters.max_time_in_seconds = float(limit)
        solver.parameters.relative_gap_limit = float(mip_rel_gap if mip_rel_gap is not None else self.mip_rel_gap)
        solver.parameters.num_workers = self.workers
        status = solver.solve(m)
        seconds = time.perf_counter() - start
        if status == cp_model.INFEASIBLE:
            w = _worst(milp)
            return Solution(None, w, w, math.inf, INFEASIBLE, seconds)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return _finish(milp, None, math.nan, False, seconds)
        x = np.array([solver.value(v) for v in xs], dtype=float)
        sign = 1.0 if milp.sense == "max" else -1.0
        bound = solver.best_objective_bound / obj_scale + sign * rounding / obj_scale + milp.offset
        # optimal for the rounded objective only certifies the real one when nothing was rounded
        return _finish(milp, x, bound, status == cp_model.OPTIMAL and rounding == 0.0, seconds)
