"""The record of one selection, with what off-policy evaluation needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Selection:
    """``action``: chosen super arm (0/1 over base arms); ``scores``: weights handed to the oracle;
    ``propensity``: probability of ``action`` under the policy at this round (1 for a deterministic choice,
    exact under known exploration laws, else a Monte Carlo estimate over ``params['propensity_samples']``
    replays of the sampling step); ``marginals``: per-arm inclusion probabilities (same provenance);
    ``exact``: whether the oracle proved optimality; ``params``: the sampling distribution's parameters."""

    action: np.ndarray
    scores: np.ndarray
    propensity: float
    marginals: np.ndarray
    exact: bool
    round: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "action": self.action.tolist(),
            "scores": self.scores.tolist(),
            "propensity": self.propensity,
            "marginals": self.marginals.tolist(),
            "exact": self.exact,
            "round": self.round,
            "params": self.params,
        }
