"""Linear rows written by the user over the pulls ``a[j]`` and named auxiliary variables.

A term's name is ``a[j]`` (action entry j), a variable declared in ``variables`` (an auxiliary of this block),
or the name of an auxiliary variable of another block of the same composition (e.g. ``x[0,3]``, worker 0
serves arm 3, of a worker_capacity block), which ties the blocks together.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.constraints.base import BlockBase, RowsOracle, keeps_downward_closure

_PULL = re.compile(r"^a\[(\d+)\]$")


class LinearRow(BaseModel):
    """``sum terms[name] * name  <sense>  rhs``."""

    model_config = ConfigDict(extra="forbid")

    terms: dict[str, float] = Field(description="coefficient per variable name: a[j] or an auxiliary's name")
    sense: Literal["<=", ">=", "=="] = "<="
    rhs: float
    name: str | None = Field(None, description="row name (default row[k])")


class AuxVariable(BaseModel):
    """An auxiliary variable of a linear block."""

    model_config = ConfigDict(extra="forbid")

    name: str
    lower: float = Field(0.0, allow_inf_nan=False, description="finite (a JSON round trip keeps it)")
    upper: float = Field(1.0, allow_inf_nan=False, description="finite (a JSON round trip keeps it)")
    integer: bool = True


class LinearBlock(BlockBase):
    """User rows; see the module docstring for the names a term may use."""

    kind: Literal["linear"] = "linear"
    rows: list[LinearRow] = Field(description="the rows")
    variables: list[AuxVariable] = Field(default_factory=list, description="auxiliary variables of this block")

    @model_validator(mode="after")
    def _values(self) -> LinearBlock:
        names = [v.name for v in self.variables]
        for k, v in enumerate(self.variables):
            if _PULL.match(v.name) or names.index(v.name) != k:
                raise ValueError(f"variables[{k}].name: {v.name!r} is a pull name or declared twice")
            if not v.lower <= v.upper or np.isnan(v.lower):
                raise ValueError(f"variables[{k}].upper: must be >= lower")
        for r, row in enumerate(self.rows):
            if not np.isfinite(row.rhs):
                raise ValueError(f"rows[{r}].rhs: must be finite")
            for name, c in row.terms.items():
                if not np.isfinite(c):
                    raise ValueError(f"rows[{r}].terms.{name}: coefficient must be finite")
        return self

    def check(self, n_actions: int) -> None:
        for r, row in enumerate(self.rows):
            for name in row.terms:
                m = _PULL.match(name)
                if m and int(m.group(1)) >= n_actions:
                    raise ValueError(f"rows[{r}].terms.{name}: entry outside [0, {n_actions - 1}]")

    def external_names(self) -> set[str]:
        """Term names that are neither pulls nor this block's variables (other blocks' auxiliaries)."""
        own = {v.name for v in self.variables}
        return {n for row in self.rows for n in row.terms if not _PULL.match(n) and n not in own}

    def external_terms(self) -> list[tuple[int, str, float]]:
        """(row, name, coefficient) of every term on another block's auxiliary variable."""
        ext = self.external_names()
        return [(r, n, c) for r, row in enumerate(self.rows) for n, c in row.terms.items() if n in ext]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([-np.inf if r.sense == "<=" else r.rhs for r in self.rows], dtype=float)
        hi = np.array([np.inf if r.sense == ">=" else r.rhs for r in self.rows], dtype=float)
        return lo, hi

    def compile(self, n_actions: int) -> ActionModel:
        self.check(n_actions)
        own = {v.name: n_actions + k for k, v in enumerate(self.variables)}
        rows, cols, vals = [], [], []
        for r, row in enumerate(self.rows):
            for name, c in row.terms.items():
                m = _PULL.match(name)
                col = int(m.group(1)) if m else own.get(name)
                if col is not None:
                    rows.append(r)
                    cols.append(col)
                    vals.append(float(c))
        n_vars = n_actions + len(self.variables)
        A = sp.csr_matrix((vals, (rows, cols)), shape=(len(self.rows), n_vars))
        lo, hi = self.bounds()
        names = [row.name or f"row[{r}]" for r, row in enumerate(self.rows)]
        closed = not self.variables and not self.external_names() and keeps_downward_closure(A, lo, hi)
        model = ActionModel(
            name="linear",
            n_actions=n_actions,
            A=A,
            row_lower=lo,
            row_upper=hi,
            row_names=names,
            aux_lower=np.array([v.lower for v in self.variables], dtype=float),
            aux_upper=np.array([v.upper for v in self.variables], dtype=float),
            aux_integer=np.array([v.integer for v in self.variables], dtype=bool),
            aux_names=[v.name for v in self.variables],
            downward_closed=closed,
        )
        if not self.variables and not self.external_names():
            model.oracle = RowsOracle(A, lo, hi, closed, fallback=model)
        return model

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"variables": {name: value}}`` for this block's auxiliary variables."""
        if not self.variables:
            return {}
        values = np.asarray(aux, dtype=float)
        return {
            "variables": {
                v.name: (round(float(x)) if v.integer else float(x))
                for v, x in zip(self.variables, values, strict=True)
            }
        }
