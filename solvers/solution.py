"""The result of one MILP solve, whatever the back-end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTIMAL = "optimal"
TIME_LIMIT = "time_limit"
HEURISTIC = "heuristic"
INFEASIBLE = "infeasible"


@dataclass
class Solution:
    """``x`` is None only when ``status`` is ``infeasible``; ``gap`` is relative, ``bound`` is the dual bound."""

    x: np.ndarray | None
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float


def relative_gap(objective: float, bound: float) -> float:
    """|bound - objective| / max(|objective|, 1e-9), as HiGHS and Gurobi define it (0 when both are equal)."""
    if not np.isfinite(bound) or not np.isfinite(objective):
        return float("inf")
    return float(abs(bound - objective) / max(abs(objective), 1e-9))
