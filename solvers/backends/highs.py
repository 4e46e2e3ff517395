"""HiGHS back-end: one persistent highspy model, updated in place between solves.

The first solve loads the matrix form. Later solves with the same structure (shape, sparsity pattern,
integrality) push only what changed: objective, column bounds, row bounds and matrix coefficients.
A warm start (full or partial incumbent) is passed through ``setSolution``.
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from solvers.milp import MatrixMILP
from solvers.solution import HEURISTIC, INFEASIBLE, OPTIMAL, TIME_LIMIT, Solution, relative_gap

_INF = highspy.kHighsInf


def _finite(v: np.ndarray) -> np.ndarray:
    """Map +-inf (and anything beyond HiGHS's infinity) onto HiGHS's infinity."""
    return np.clip(v, -_INF, _INF)


class HighsSolver:
    """Solve :class:`MatrixMILP` instances with a persistent HiGHS model."""

    name = "highs"
    #: keeps one model between solves: a same-structure MILP only updates values (callers skip pruning)
    persistent = True

    def __init__(
        self,
        time_limit: float | None = None,
        mip_rel_gap: float = 1e-4,
        seed: int = 0,
        mip_allow_restart: bool = True,
        options: dict[str, object] | None = None,
    ) -> None:
        """``mip_allow_restart=False`` disables HiGHS's MIP restarts after root presolve: HiGHS 1.14 returns
        sub-optimal points flagged optimal on ~3% of tiny big-M network MILPs with restarts on (the network
        selectors switch them off). ``options`` are further raw HiGHS options."""
        self.time_limit = time_limit
        self.mip_rel_gap = mip_rel_gap
        self._h = highspy.Highs()
        self._h.setOptionValue("output_flag", False)
        self._h.setOptionValue("random_seed", int(seed))
        self._h.setOptionValue("mip_allow_restart", bool(mip_allow_restart))
        for key, value in (options or {}).items():
            self._h.setOptionValue(key, value)
        self._loaded: MatrixMILP | None = None
        self.n_rebuilds = 0
        self.n_updates = 0

    @property
    def highs(self) -> highspy.Highs:
        """The underlying highspy model (for callers that drive HiGHS directly, e.g. bound tightening)."""
        return self._h

    # ----------------------------------------------------------------------------------- loading
    def _same_structure(self, milp: MatrixMILP) -> bool:
        old = self._loaded
        return (
            old is not None
            and old.A.shape == milp.A.shape
            and np.array_equal(old.A.indptr, milp.A.indptr)
            and np.array_equal(old.A.indices, milp.A.indices)
            and np.array_equal(old.integer, milp.integer)
            and old.sense == milp.sense
        )

    def load(self, milp: MatrixMILP) -> None:
        """Load ``milp`` into the HiGHS model without solving it (callers that then drive :attr:`highs` directly,
        e.g. hot-started LP re-solves in bound tightening)."""
        self._load(milp)

    def _load(self, milp: MatrixMILP) -> None:
        lp = highspy.HighsLp()
        lp.num_col_ = milp.n_cols
        lp.num_row_ = milp.n_rows
        lp.col_cost_ = milp.c.astype(float)
        lp.col_lower_ = _finite(milp.col_lower.astype(float))
        lp.col_upper_ = _finite(milp.col_upper.astype(float))
        lp.row_lower_ = _finite(milp.row_lower.astype(float))
        lp.row_upper_ = _finite(milp.row_upper.astype(float))
        lp.offset_ = float(milp.offset)
        lp.sense_ = highspy.ObjSense.kMaximize if milp.sense == "max" else highspy.ObjSense.kMinimize
        csc = milp.A.tocsc()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data.astype(float)
        if milp.integer.any():
            lp.integrality_ = [
                highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous for flag in milp.integer
            ]
        self._h.clearModel()
        self._h.passModel(lp)
        self._loaded = _copy(milp)
        self.n_rebuilds += 1

    def _update(self, milp: MatrixMILP) -> None:
        old = self._loaded
        assert old is not None
        h = self._h
        idx = np.flatnonzero(old.c != milp.c)
        if idx.size:
            h.changeColsCost(idx.size, idx.astype(np.int32), milp.c[idx].astype(float))
        if old.offset != milp.offset:
            h.changeObjectiveOffset(float(milp.offset))
        idx = np.flatnonzero((old.col_lower != milp.col_lower) | (old.col_upper != milp.col_upper))
        if idx.size:
            h.changeColsBounds(
                idx.size,
                idx.astype(np.int32),
                _finite(milp.col_lower[idx].astype(float)),
                _finite(milp.col_upper[idx].astype(float)),
            )
        idx = np.flatnonzero((old.row_lower != milp.row_lower) | (old.row_upper != milp.row_upper))
        if idx.size:
            h.changeRowsBounds(
                idx.size,
                idx.astype(np.int32),
                _finite(milp.row_lower[idx].astype(float)),
                _finite(milp.row_upper[idx].astype(float)),
            )
        changed = np.flatnonzero(old.A.data != milp.A.data)
        if changed.size:
            rows = np.searchsorted(milp.A.indptr, changed, side="right") - 1
            cols = milp.A.indices[changed]
            for r, col, v in zip(rows.tolist(), cols.tolist(), milp.A.data[changed].tolist(), strict=True):
                h.changeCoeff(r, col, v)
        self._loaded = _copy(milp)
        self.n_updates += 1

    # ------------------------------------------------------------------------------------ solving
    def solve(
        self,
        milp: MatrixMILP,
        time_limit: float | None = None,
        mip_rel_gap: float | None = None,
        warm_start: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Solution:
        """Solve ``milp``; ``warm_start`` is a full vector or ``(indices, values)`` of a partial incumbent."""
        start = time.perf_counter()
        if self._same_structure(milp):
            self._update(milp)
        else:
            self._load(milp)
        h = self._h
        limit = time_limit if time_limit is not None else self.time_limit
        h.setOptionValue("time_limit", float(limit) if limit is not None else _INF)
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap if mip_rel_gap is not None else self.mip_rel_gap))
        if warm_start is not None:
            _set_incumbent(h, warm_start, milp.n_cols)
        h.run()
        return self._result(milp, time.perf_counter() - start)

    def _result(self, milp: MatrixMILP, seconds: float) -> Solution:
        h = self._h
        status = h.getModelStatus()
        info = h.getInfo()
        has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
        worst = -np.inf if milp.sense == "max" else np.inf
        if not has_x:
            if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
                return Solution(None, worst, worst, float("inf"), INFEASIBLE, seconds)
            bound = -worst
            proven = status == highspy.HighsModelStatus.kTimeLimit and milp.integer.any() and info.valid
            if proven and abs(info.mip_dual_bound) < _INF:  # no incumbent at the limit, but a proven dual bound
                bound = float(info.mip_dual_bound)
            return Solution(None, worst, bound, float("inf"), HEURISTIC, seconds)
        x = np.asarray(h.getSolution().col_value, dtype=float)
        x[milp.integer] = np.round(x[milp.integer])
        objective = milp.objective(x)
        if milp.integer.any():
            bound = float(info.mip_dual_bound)
            bound = max(bound, objective) if milp.sense == "max" else min(bound, objective)
        else:  # an LP's objective bounds it only when proven optimal (stopped early, it is on the wrong side)
            bound = objective if status == highspy.HighsModelStatus.kOptimal else -worst
        gap = relative_gap(objective, bound)
        optimal = status == highspy.HighsModelStatus.kOptimal
        return Solution(x, objective, bound, gap, OPTIMAL if optimal else TIME_LIMIT, seconds)


def _set_incumbent(h: highspy.Highs, warm_start, n_cols: int) -> None:
    if isinstance(warm_start, tuple):
        idx, vals = warm_start
        h.setSolution(len(idx), np.asarray(idx, dtype=np.int32), np.asarray(vals, dtype=float))
        return
    sol = highspy.HighsSolution()
    sol.col_value = np.asarray(warm_start, dtype=float).tolist()
    sol.value_valid = True
    h.setSolution(sol)


def _copy(milp: MatrixMILP) -> MatrixMILP:
    return MatrixMILP(
        c=milp.c.copy(),
        A=milp.A.copy(),
        row_lower=milp.row_lower.copy(),
        row_upper=milp.row_upper.copy(),
        col_lower=milp.col_lower.copy(),
        col_upper=milp.col_upper.copy(),
        integer=milp.integer.copy(),
        sense=milp.sense,
        offset=milp.offset,
    )
