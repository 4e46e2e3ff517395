"""Pooling arms' transition counts within clusters into empirical-Bayes Dirichlet priors.

For arm ``i`` in cluster ``c``, the prior of its transition row under action ``a`` from state ``s`` is

    alpha0[i, a, s] = base + tau[c, a, s] * q[-i, a, s]

where ``q[-i]`` is a centre made of the *other* arms' rows of the cluster (leave-one-out, so an arm's records
are not counted twice; zero when they have none, leaving the symmetric ``base``), and ``tau`` is the pool
strength in pseudo-records: the arms' concentration about their cluster's centre. ``tau`` is fixed
(``pool_strength``) or chosen by a moment rule: if arms' rows in a cluster are Dirichlet(tau * p) draws, the
counts are Dirichlet-multinomial with intra-cluster correlation ``rho = 1 / (tau + 1)``, and the Pearson
statistic of the arms' rows against the pooled row, ``D = sum_i sum_j (n_ij - n_i p_j)^2 / (n_i p_j)``, has
expectation ``(K - 1) * [(I - 1) + rho * (N - sum_i n_i^2 / N - (I - 1))]`` (``I`` arms with records, ``N``
records, ``K`` next states seen). Solving for ``rho`` per (cluster, action, state) row and summing numerators
and denominators over a cluster's rows gives one ``rho`` per cluster, clipped to [0, 1]; ``tau = 1/rho - 1``
capped at ``max_pool_strength``. A cluster with no row holding two arms' records takes the estimate over all
clusters, and failing that ``FALLBACK_POOL_STRENGTH``.

``centre`` chooses how ``q[-i]`` is made and how far it is trusted:

* ``"inverse_variance"`` (default): the other arms' rows weighted by the inverse of their variance about the
  centre, and ``tau`` lowered per (arm, action, state) by the centre's own uncertainty (``centres.py``), so
  a row whose cluster-mates have few records leans less on them.
* ``"counts"`` (the estimator before it; saved records without a ``centre`` re-estimate with it): the other
  arms' pooled counts, trusted with the full ``tau``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios.errors import InvalidInputError
from scenarios.estimation.centres import leave_one_out_centres
from scenarios.estimation.cluster_count import best_cluster_count, predictive_log_likelihood
from scenarios.estimation.kmeans import kmeans

FALLBACK_POOL_STRENGTH = 10.0  # pseudo-records when no cluster has two arms with records in one row
CENTRES = ("inverse_variance", "counts")


@dataclass(frozen=True, eq=False)
class Pooling:
    """Which arms share strength: given ``clusters`` (one id per arm) or ``features`` to k-means into
    ``n_clusters`` groups (None: the count whose pooled priors best predict each arm's records, see
    ``cluster_count.py``); ``pool_strength`` fixes tau (None: the moment rule above)."""

    clusters: np.ndarray | None = None
    features: np.ndarray | None = None
    n_clusters: int | None = 3
    pool_strength: float | None = None
    max_pool_strength: float = 1000.0
    seed: int = 0
    centre: str = "inverse_variance"

    def __post_init__(self) -> None:
        if (self.clusters is None) == (self.features is None):
            raise InvalidInputError("pooling", "give exactly one of clusters or features")
        if self.n_clusters is not None and not (isinstance(self.n_clusters, int | np.integer) and self.n_clusters >= 1):
            raise InvalidInputError("n_clusters", f"expected an integer >= 1 or None, got {self.n_clusters!r}")
        if self.centre not in CENTRES:
            raise InvalidInputError("pooling.centre", f"expected one of {CENTRES}, got {self.centre!r}")
        if self.pool_strength is not None and not (np.isfinite(self.pool_strength) and self.pool_strength >= 0):
            raise InvalidInputError("pool_strength", f"expected a finite number >= 0, got {self.pool_strength}")
        if not (np.isfinite(self.max_pool_strength) and self.max_pool_strength > 0):
            raise InvalidInputError("max_pool_strength", f"expected a finite number > 0, got {self.max_pool_strength}")

    def resolved(self, n_arms: int, counts: np.ndarray | None = None) -> Pooling:
        """This pooling with ``clusters`` set (k-means on the features if needed) and checked against arms;
        choosing the number of clusters needs the ``counts`` (arms, actions, states, states)."""
        if self.clusters is None:
            features = np.asarray(self.features)
            if len(features) != n_arms:
                raise InvalidInputError("features", f"expected {n_arms} rows (one per arm), got {len(features)}")
            if self.n_clusters is not None:
                clusters = kmeans(features, self.n_clusters, seed=self.seed)
            elif counts is None:
                raise InvalidInputError("n_clusters", "choosing the number of clusters needs the counts")
            else:
                clusters = self._best_clusters(features, np.asarray(counts, dtype=np.float64))
        else:
            clusters = np.asarray(self.clusters)
            if clusters.shape != (n_arms,) or not (clusters.size == 0 or np.issubdtype(clusters.dtype, np.integer)):
                raise InvalidInputError("clusters", f"expected {n_arms} integer cluster ids (one per arm)")
            if (clusters < 0).any():
                raise InvalidInputError("clusters", "cluster ids must be >= 0")
        return Pooling(clusters.astype(np.int64), None, int(clusters.max()) + 1, self.pool_strength,
                       self.max_pool_strength, self.seed, self.centre)  # fmt: skip

    def _best_clusters(self, features: np.ndarray, counts: np.ndarray) -> np.ndarray:
        base = 1.0 / counts.shape[-1]  # the prior's symmetric part with one pseudo-record per row

        def score(labels: np.ndarray) -> float:
            candidate = Pooling(labels, None, int(labels.max()) + 1, self.pool_strength, self.max_pool_strength,
                                self.seed, self.centre)  # fmt: skip
            return predictive_log_likelihood(counts, pooled_prior(counts, candidate, base)[0])

        return best_cluster_count(features, score, seed=self.seed)[0]

    def to_dict(self) -> dict[str, Any]:
        if self.clusters is None:
            raise InvalidInputError("pooling", "resolve the features into clusters before saving")
        return {"clusters": self.clusters.tolist(), "pool_strength": self.pool_strength,
                "max_pool_strength": self.max_pool_strength, "centre": self.centre}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pooling:
        try:
            clusters = np.asarray(data["clusters"], dtype=np.int64)
            strength = None if data["pool_strength"] is None else float(data["pool_strength"])
            centre = str(data.get("centre", "counts"))  # records saved before inverse-variance centres existed
            return cls(clusters, None, int(clusters.max(initial=0)) + 1, strength, float(data["max_pool_strength"]),
                       centre=centre)  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError("pooling", f"malformed pooling record: {exc}") from exc


def pooled_prior(counts: np.ndarray, pooling: Pooling, base: float) -> tuple[np.ndarray, np.ndarray]:
    """Prior alpha0 (arms, actions, states, states) and the pool strength tau (clusters, actions, states)."""
    clusters = pooling.clusters
    assert clusters is not None, "call Pooling.resolved first"
    C = int(clusters.max()) + 1
    totals = np.zeros((C, *counts.shape[1:]))
    np.add.at(totals, clusters, counts)
    if pooling.pool_strength is None:
        tau = moment_pool_strength(counts, clusters, totals, pooling.max_pool_strength)
    else:
        tau = np.full(totals.shape[:-1], float(pooling.pool_strength))
    if pooling.centre == "inverse_variance":
        q, strength = leave_one_out_centres(counts, clusters, tau)
        return base + strength[..., None] * q, tau
    others = totals[clusters] - counts  # leave-one-out: the other arms of the cluster
    others_n = others.sum(-1, keepdims=True)
    q = np.divide(others, others_n, out=np.zeros_like(others), where=others_n > 0)
    return base + tau[clusters][..., None] * q, tau


def moment_pool_strength(counts: np.ndarray, clusters: np.ndarray, totals: np.ndarray, cap: float) -> np.ndarray:
    """tau per (cluster, action, state) by the moment rule in the module docstring (constant within a cluster)."""
    C = len(totals)
    n = counts.sum(-1)  # (arms, actions, states)
    N = totals.sum(-1)  # (clusters, actions, states)
    p = np.divide(totals, N[..., None], out=np.zeros_like(totals), where=N[..., None] > 0)
    expected = n[..., None] * p[clusters]
    pearson = np.divide((counts - expected) ** 2, expected, out=np.zeros_like(expected), where=expected > 0).sum(-1)
    D, arms_seen, S2 = (np.zeros(N.shape) for _ in range(3))
    np.add.at(D, clusters, pearson)
    np.add.at(arms_seen, clusters, n > 0)
    np.add.at(S2, clusters, n.astype(np.float64) ** 2)
    K = (totals > 0).sum(-1)
    numerator = np.where(K >= 2, D / np.maximum(K - 1, 1), 0.0) - (arms_seen - 1)
    denominator = N - np.divide(S2, N, out=np.zeros_like(S2), where=N > 0) - (arms_seen - 1)
    valid = (arms_seen >= 2) & (denominator > 0)
    num_c = np.where(valid, numerator, 0.0).reshape(C, -1).sum(1)
    den_c = np.where(valid, denominator, 0.0).reshape(C, -1).sum(1)
    overall = _strength(num_c.sum() / den_c.sum(), cap) if den_c.sum() > 0 else min(FALLBACK_POOL_STRENGTH, cap)
    per_cluster = np.array([_strength(a / b, cap) if b > 0 else overall for a, b in zip(num_c, den_c, strict=True)])
    return np.broadcast_to(per_cluster[:, None, None], N.shape).copy()


def _strength(rho: float, cap: float) -> float:
    rho = float(np.clip(rho, 0.0, 1.0))
    return cap if rho <= 1.0 / (cap + 1.0) else 1.0 / rho - 1.0
