"""Candidate joint actions for the one-step lookahead: every feasible action when there are few, or every one a
state leaves open when the feasible set depends on the state and its oracle lists it (a patrol's walks from
where it stands), else the feasible one-move neighbourhood of an action (add an entry, drop one, or swap one in
for one out).

Neighbourhoods larger than ``limit`` are subsampled with a generator the caller seeds, so a decision stays a
deterministic function of its state. Every candidate returned is feasible (checked by the ActionModel).
"""

from __future__ import annotations

import numpy as np

from scenarios.action_model import ActionModel
from scenarios.errors import EnumerationTimeoutError
from scenarios.feasibility import EnumerableOracle


def all_feasible(model: ActionModel, limit: int) -> np.ndarray | None:
    """Every feasible action (K, n) when the set provably has at most ``limit`` members, else None."""
    if model.count_upper_bound() > limit:
        return None
    return model.enumerate(max_count=limit)


def feasible_in_state(
    model: ActionModel, closed: np.ndarray, limit: int, max_seconds: float | None = None
) -> np.ndarray | None:
    """Every feasible action with none of the ``closed`` entries when its oracle lists them directly and there
    are at most ``limit``, else None (the generic enumeration would go through the whole set). Raises
    :class:`EnumerationTimeoutError` when listing them takes more than ``max_seconds`` (None: no limit)."""
    if not isinstance(model.oracle, EnumerableOracle):
        return None
    try:
        listed = model.enumerate(max_count=limit, max_seconds=max_seconds, closed=closed)
    except EnumerationTimeoutError:
        raise
    except ValueError:
        return None
    return listed if len(listed) else None


def neighbourhood(model: ActionModel, action: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """``action`` and its feasible one-move neighbours (adds, drops, swaps): at most ``limit`` + 1 rows."""
    a = np.asarray(action, dtype=np.int64)
    on, off = np.flatnonzero(a == 1), np.flatnonzero(a == 0)
    moves = [(-1, k) for k in off] + [(i, -1) for i in on] + [(i, k) for i in on for k in off]
    if len(moves) > limit:
        moves = [moves[m] for m in np.sort(rng.choice(len(moves), size=limit, replace=False))]
    rows = [a]
    for i, k in moves:
        b = a.copy()
        if i >= 0:
            b[i] = 0
        if k >= 0:
            b[k] = 1
        if model.is_feasible(b):
            rows.append(b)
    return np.stack(rows)
