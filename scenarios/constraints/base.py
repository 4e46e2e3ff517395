"""The contract of a constraint block: plain data (pydantic) that compiles to the rows of one ActionModel.

A block states one family of constraints over the binary action entries ``a`` (pulls, or interventions), with
auxiliary variables of its own where it needs them (worker assignments, walk arcs). ``compile`` returns a
standalone :class:`~scenarios.action_model.ActionModel` over ``[a ; own auxiliaries]``;
:func:`scenarios.constraints.compose.compose` stacks any list of them. ``assignment`` turns the block's
auxiliary values into the certificate a planner shows (which worker serves which arm, the route walked).
Size checks that need the number of action entries raise ``ValueError("field[index]: reason")``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from scenarios.action_model import ActionModel


class BlockBase(BaseModel):
    """Base of every constraint block; ``kind`` is the discriminator of the JSON form."""

    model_config = ConfigDict(extra="forbid")

    kind: str

    def __eq__(self, other: object) -> bool:  # the data, not the private caches of derived structures
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def check(self, n_actions: int) -> None:
        """Raise ``ValueError("field: reason")`` when the block does not fit ``n_actions`` action entries."""

    def compile(self, n_actions: int) -> ActionModel:
        """The block's rows over ``[a ; own auxiliaries]`` as a standalone ActionModel (oracle where fast)."""
        raise NotImplementedError

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """What the auxiliary values say about action ``a`` (empty for blocks without auxiliaries)."""
        return {}


def rows_model(
    name: str,
    n_actions: int,
    coefs: sp.spmatrix | np.ndarray,
    lower: np.ndarray | list[float],
    upper: np.ndarray | list[float],
    row_names: list[str],
    downward_closed: bool,
) -> ActionModel:
    """An ActionModel of action-only rows ``lower <= coefs a <= upper`` checked by :class:`RowsOracle`."""
    A = sp.csr_matrix(coefs, shape=(len(row_names), n_actions))
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    model = ActionModel(
        name=name,
        n_actions=n_actions,
        A=A,
        row_lower=lo,
        row_upper=hi,
        row_names=list(row_names),
        aux_lower=np.zeros(0),
        aux_upper=np.zeros(0),
        aux_integer=np.zeros(0, bool),
        downward_closed=downward_closed,
    )
    model.oracle = RowsOracle(A, lo, hi, downward_closed, fallback=model)
    return model


def keeps_downward_closure(coefs: sp.spmatrix | np.ndarray, lower: np.ndarray, upper: np.ndarray) -> bool:
    """Rows ``c a <= u`` with ``c >= 0`` and ``u >= 0`` (or ``c a >= l`` with ``c <= 0`` and ``l <= 0``) keep a
    downward-closed set closed and contain ``a = 0``."""
    dense = sp.csr_matrix(coefs).toarray()
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    up_only = np.isneginf(lower) & np.all(dense >= 0, axis=1) & (upper >= 0)
    low_only = np.isposinf(upper) & np.all(dense <= 0, axis=1) & (lower <= 0)
    return bool(np.all(up_only | low_only))


class RowsOracle:
    """Exact feasibility of action-only rows; random maximal samples when the set is downward closed."""

    def __init__(
        self, A: sp.csr_matrix, lower: np.ndarray, upper: np.ndarray, closed: bool, fallback: ActionModel
    ) -> None:
        self.A, self.lower, self.upper, self.closed = A, lower, upper, closed
        self._fallback = fallback

    def is_feasible(self, a: np.ndarray) -> bool:
        v = self.A @ np.asarray(a, dtype=float)
        return bool(np.all((v >= self.lower - 1e-9) & (v <= self.upper + 1e-9)))

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        return np.zeros(0) if self.is_feasible(a) else None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if not self.closed:  # a MILP with a random objective over the rows
            return dataclasses.replace(self._fallback, oracle=None, _cache={}, _solver=None).sample(rng)
        return greedy_sample(self.A.shape[1], self.is_feasible, rng)


def greedy_sample(n: int, feasible, rng: np.random.Generator) -> np.ndarray:
    """Entries in random order, each kept when the action stays feasible: a random maximal action of a
    downward-closed set."""
    a = np.zeros(n, dtype=np.int64)
    for j in rng.permutation(n).tolist():
        a[j] = 1
        if not feasible(a):
            a[j] = 0
    return a
