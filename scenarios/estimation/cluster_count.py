"""Choosing how many clusters to pool arms into: the count whose pooled priors best predict each arm's records.

For each ``k`` in 1..``max_clusters``, the arms' features are k-means'd into ``k`` groups and every arm's prior
is built from its cluster-mates' records only (leave-one-out, as pooling always does); the score is the
Dirichlet-multinomial log-likelihood of each arm's counts under its own prior, summed over arms and rows. An
arm's own records never shape the centre it is scored against, so a ``k`` too large (arms alone, priors left
uniform) and one too small (unlike arms pooled) both predict worse; the best ``k`` wins, the smaller on ties.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import gammaln

from scenarios.estimation.kmeans import kmeans

MAX_CLUSTERS = 10


def predictive_log_likelihood(counts: np.ndarray, prior: np.ndarray) -> float:
    """Sum over rows of log P(counts | Dirichlet(prior)) for multinomial counts (the arrangement-free part)."""
    n, total = counts.sum(-1), prior.sum(-1)
    per_row = gammaln(total) - gammaln(total + n) + (gammaln(prior + counts) - gammaln(prior)).sum(-1)
    return float(per_row.sum())


def best_cluster_count(
    features: np.ndarray,
    score: Callable[[np.ndarray], float],
    seed: int = 0,
    max_clusters: int = MAX_CLUSTERS,
) -> tuple[np.ndarray, dict[int, float]]:
    """The k-means labels of the best-scoring cluster count, and the score of every count tried.

    ``score(labels)`` is the predictive log-likelihood of the records pooled by ``labels`` (module docstring).
    """
    scores: dict[int, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for k in range(1, min(max_clusters, len(features)) + 1):
        labels = kmeans(features, k, seed=seed)
        scores[k] = score(labels)
        if best is None or scores[k] > best[0] + 1e-9:
            best = (scores[k], labels)
    assert best is not None, "features has at least one row"
    return best[1], scores
