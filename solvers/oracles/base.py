"""What every exact combinatorial oracle provides: the maximum of a linear objective over one feasible set.

An oracle is built for one :class:`~scenarios.action_model.ActionModel` whose declared
:class:`~scenarios.action_model.Structure` it reads (see :mod:`solvers.oracles`); ``maximise(w, offset)``
returns a :class:`~solvers.solution.Solution` for ``max w @ a + offset`` whose ``x`` is the full feasible-set
vector ``[a ; y]`` (the action and auxiliaries certifying it against the rows). ``status`` is ``optimal``
only when the oracle proved the maximum (then ``bound == objective``); an oracle that stops at its time limit
returns its incumbent with status ``time_limit`` and a valid upper bound.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import numpy as np

from solvers.solution import OPTIMAL, TIME_LIMIT, Solution, relative_gap

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel


class LinearOracle(Protocol):
    """Exact ``max_a w @ a + offset`` over one feasible set."""

    def maximise(self, weights: np.ndarray, offset: float = 0.0, time_limit: float | None = None) -> Solution: ...


def check_weights(weights: np.ndarray, n_actions: int) -> np.ndarray:
    """``weights`` as a finite float vector of ``n_actions`` entries, or ValueError."""
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.size != n_actions:
        raise ValueError(f"weights must have {n_actions} entries (one per action), got {w.size}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite")
    return w


def solution_for(
    model: ActionModel,
    action: np.ndarray,
    weights: np.ndarray,
    offset: float,
    start: float,
    bound: float | None = None,
    aux: np.ndarray | None = None,
) -> Solution:
    """The Solution for ``action`` (its certificate from ``aux`` or the model): ``optimal`` when ``bound`` is
    None (the caller proved ``action`` optimal), else ``time_limit`` with that upper bound."""
    a = np.asarray(action, dtype=np.int64)
    y = model.certificate(a) if aux is None else np.asarray(aux, dtype=float)
    if y is None:
        raise RuntimeError(f"oracle for {model.name!r} produced an action the rows do not admit")
    objective = float(weights @ a + offset)
    if bound is None:
        status, bound = OPTIMAL, objective
    else:
        status, bound = TIME_LIMIT, max(float(bound), objective)
    x = np.concatenate([a.astype(float), np.asarray(y, dtype=float).reshape(-1)])
    return Solution(x, objective, bound, relative_gap(objective, bound), status, time.perf_counter() - start)
