"""The answer to one decision request."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Decision:
    """A feasible joint action with its predicted value and, for exact selectors, bound and gap.

    ``status`` is ``optimal`` (certified within the requested gap), ``time_limit`` (the incumbent when the
    limit hit, with its certified bound) or ``heuristic`` (no certificate: a heuristic's answer). ``reason``
    says how an exact selector reached it when not by its main path (a combinatorial oracle, a solver error and
    the fallback taken); empty otherwise. ``assignment`` is the certificate of the action decoded by the
    feasible set's constraint blocks (``{"workers": {"0": [3, 5]}}``, ``{"route": [...]}``, ``{"slots": [...]}``;
    a user block's part under its label ``constraints[k]``); empty when the feasible set has no blocks.
    """

    action: np.ndarray
    value: float
    bound: float
    gap: float
    status: str
    seconds: float
    selector: str
    policy_version: str = ""
    reason: str = ""
    assignment: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["action"] = [int(v) for v in self.action]
        for key in ("value", "bound", "gap"):
            d[key] = float(d[key]) if np.isfinite(d[key]) else None
        return d


def check_time_limit(time_limit: object) -> None:
    """Refuse a decision's ``time_limit`` unless it is None or a positive, finite number of seconds."""
    from scenarios.errors import InvalidInputError

    if time_limit is None:
        return
    if isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real) or not 0 < float(time_limit) < np.inf:
        raise InvalidInputError("time_limit", f"must be a positive number of seconds, got {time_limit!r}")
