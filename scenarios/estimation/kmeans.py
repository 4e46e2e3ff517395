"""A small deterministic k-means for grouping arms by their features before pooling their dynamics."""

from __future__ import annotations

import numpy as np

from scenarios.errors import InvalidInputError


def kmeans(features: np.ndarray, n_clusters: int, seed: int = 0, n_init: int = 4, max_iter: int = 100) -> np.ndarray:
    """Cluster label per row of ``features`` (rows, d); the same inputs always give the same labels.

    Columns are standardised (constant columns become zero), each of ``n_init`` runs starts from a k-means++
    seeding drawn from ``numpy.random.default_rng(seed)`` and iterates Lloyd steps until the labels stop
    changing; the run with the least within-cluster sum of squares wins. Labels are numbered in order of
    first appearance, so label 0 is the first row's cluster.
    """
    X = np.asarray(features, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or len(X) == 0 or not np.isfinite(X).all():
        raise InvalidInputError("features", "expected a finite (arms, d) array with at least one arm")
    if not 1 <= n_clusters <= len(X):
        raise InvalidInputError("n_clusters", f"expected an integer in [1, {len(X)}], got {n_clusters}")
    scale = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    rng = np.random.default_rng(seed)
    best_labels, best_inertia = np.zeros(len(X), dtype=np.int64), np.inf
    for _ in range(n_init):
        labels, inertia = _lloyd(X, _plus_plus(X, n_clusters, rng), max_iter)
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    _, first, inverse = np.unique(best_labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse].astype(np.int64)  # renumber by first row


def _plus_plus(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [X[rng.integers(len(X))]]
    for _ in range(1, k):
        d2 = ((X[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1).min(axis=1)
        total = d2.sum()
        pick = rng.integers(len(X)) if total <= 0 else rng.choice(len(X), p=d2 / total)
        centres.append(X[pick])
    return np.asarray(centres)


def _lloyd(X: np.ndarray, centres: np.ndarray, max_iter: int) -> tuple[np.ndarray, float]:
    labels = np.full(len(X), -1)
    for _ in range(max_iter):
        d2 = ((X[:, None, :] - centres[None]) ** 2).sum(-1)
        new = d2.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(len(centres)):
            members = labels == c
            if members.any():
                centres[c] = X[members].mean(axis=0)
            else:  # an empty cluster takes the point farthest from its centre
                far = int(d2[np.arange(len(X)), labels].argmax())
                centres[c], labels[far] = X[far], c
    d2 = ((X - centres[labels]) ** 2).sum(-1)
    return labels, float(d2.sum())
