"""The matrix-form MILP that every back-end consumes.

optimise  c @ x + offset
s.t.      row_lower <= A @ x <= row_upper
          col_lower <= x <= col_upper,   x[integer] integral
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp


@dataclass
class MatrixMILP:
    """A mixed-integer linear program in matrix form (``sense`` is ``"max"`` or ``"min"``)."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray
    sense: str = "max"
    offset: float = 0.0
    row_names: list[str] = field(default_factory=list)
    col_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.c.shape[0]
        if self.A.shape[1] != n:
            raise ValueError(f"A has {self.A.shape[1]} columns but c has {n} entries")
        if self.sense not in ("max", "min"):
            raise ValueError(f"sense must be 'max' or 'min', got {self.sense!r}")
        for name in ("row_lower", "row_upper"):
            if getattr(self, name).shape != (self.A.shape[0],):
                raise ValueError(f"{name} must have {self.A.shape[0]} entries")
        for name in ("col_lower", "col_upper", "integer"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have {n} entries")

    @property
    def n_cols(self) -> int:
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

    def objective(self, x: np.ndarray) -> float:
        return float(self.c @ x + self.offset)

    def violations(self, x: np.ndarray, tol: float = 1e-6) -> list[str]:
        """Names of the rows, bounds and integrality conditions that ``x`` violates."""
        out: list[str] = []
        ax = self.A @ x
        bad_rows = np.flatnonzero((ax < self.row_lower - tol) | (ax > self.row_upper + tol))
        out += [self.row_names[i] if self.row_names else f"row[{i}]" for i in bad_rows]
        bad_cols = np.flatnonzero((x < self.col_lower - tol) | (x > self.col_upper + tol))
        bad_int = np.flatnonzero(self.integer & (np.abs(x - np.round(x)) > tol))
        for kind, idx in (("bound", bad_cols), ("integrality", bad_int)):
            out += [f"{kind}:{self.col_names[j] if self.col_names else f'x[{j}]'}" for j in idx]
        return out

    def is_feasible(self, x: np.ndarray, tol: float = 1e-6) -> bool:
        return not self.violations(x, tol)

    def with_objective(self, c: np.ndarray, sense: str = "max", offset: float = 0.0) -> MatrixMILP:
        """The same feasible set with another objective."""
        return replace(self, c=np.asarray(c, dtype=float), sense=sense, offset=offset)

    def pruned(self) -> tuple[MatrixMILP, np.ndarray]:
        """Drop fixed columns (lower == upper) into row bounds and offset, and rows left empty.

        Returns the smaller MILP and the kept column indices; a full solution is ``x = col_lower.copy();
        x[kept] = x_small``. An empty row whose bounds exclude 0 is kept so that the back-end reports
        the problem infeasible.
        """
        fixed = self.col_lower == self.col_upper
        kept = np.flatnonzero(~fixed)
        value = self.col_lower[fixed].astype(float)
        csc = sp.csc_matrix(self.A)
        shift = csc[:, np.flatnonzero(fixed)] @ value
        row_lower = self.row_lower - shift
        row_upper = self.row_upper - shift
        sub = csc[:, kept].tocsr()
        sub.eliminate_zeros()
        tol = 1e-9 * np.maximum(1.0, np.abs(shift))
        empty = np.diff(sub.indptr) == 0
        drop = empty & (row_lower <= tol) & (row_upper >= -tol)
        rows = np.flatnonzero(~drop)
        return (
            MatrixMILP(
                c=self.c[kept].copy(),
                A=sub[rows],
                row_lower=row_lower[rows],
                row_upper=row_upper[rows],
                col_lower=self.col_lower[kept].copy(),
                col_upper=self.col_upper[kept].copy(),
                integer=self.integer[kept].copy(),
                sense=self.sense,
                offset=float(self.offset + self.c[fixed] @ value),
                row_names=[self.row_names[i] for i in rows] if self.row_names else [],
                col_names=[self.col_names[j] for j in kept] if self.col_names else [],
            ),
            kept,
        )
