"""Spend a per-period budget on action upgrades in decreasing order of score (top-B for binary arms).

Arm j at level k (action k) costs ``costs[j, k]``; moving from k-1 to k is an "upgrade" with score
``scores[..., j, k-1]`` and marginal cost ``costs[j, k] - costs[j, k-1]``. Scores are made non-increasing
in k per arm so that an upgrade is always taken after its predecessor; the longest prefix of the sorted
upgrades that fits the budget left after every arm's level-0 (passive) cost and scores above ``threshold`` is
taken (all of it, whatever the score, when ``fill`` is set). Vectorised over any leading batch dimensions.
"""

from __future__ import annotations

import numpy as np

from scenarios.errors import InvalidInputError


def allocate(
    scores: np.ndarray, costs: np.ndarray, budget: float, threshold: float = 0.0, fill: bool = False
) -> np.ndarray:
    """Actions (levels) of shape scores.shape[:-1] from upgrade scores (..., arms, levels)."""
    scores = np.minimum.accumulate(np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf), axis=-1)
    batch, (N, K) = scores.shape[:-2], scores.shape[-2:]
    flat = scores.reshape(*batch, N * K)
    order = np.argsort(-flat, axis=-1, kind="stable")
    marginal = np.broadcast_to(np.diff(costs, axis=1).reshape(N * K), flat.shape)
    spent = np.cumsum(np.take_along_axis(marginal, order, -1), axis=-1)
    passive = float(np.asarray(costs, dtype=float)[:, 0].sum())  # every arm pays its level-0 cost whatever it does
    if passive > budget + 1e-9:
        raise InvalidInputError("budget", f"{budget:g} is below the arms' total passive cost {passive:g}")
    take = spent <= budget - passive + 1e-9
    if not fill:
        take &= np.take_along_axis(flat, order, -1) > threshold
    chosen = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(chosen, order, take, -1)
    return chosen.reshape(*batch, N, K).sum(-1).astype(np.int64)
