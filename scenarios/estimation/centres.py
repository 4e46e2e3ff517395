"""Leave-one-out cluster centres weighted by inverse variance, and the pool strength their uncertainty allows.

Model: within a cluster, arm ``j``'s transition row (one action, one state) is a Dirichlet(tau * m) draw
around the cluster's centre ``m``, and its ``n_j`` records of that row are multinomial. Its empirical row
then scatters about ``m`` with variance ``m (1 - m) / w_j`` per entry, where

    w_j = n_j (tau + 1) / (n_j + tau)

(an arm with a few records counts in proportion to them, one with many as at most ``tau + 1`` records: its
row differs from the centre by the arms' spread however many records it has). Arm ``i``'s prior is centred
on the other arms' rows (leave-one-out, so its own records are not counted twice) weighted by ``w_j``; that
centre is itself uncertain, with variance ``m (1 - m) / W`` for ``W = sum_{j != i} w_j``, so arm ``i``'s row
varies about it with variance ``m (1 - m) * (1 / (tau + 1) + 1 / W)``, which is a Dirichlet's with strength

    tau_i = 1 / (1 / (tau + 1) + 1 / W) - 1      (clipped at 0)

The prior trusts a centre built from many records almost as much as the true centre, and one built from a
handful of records hardly at all.
"""

from __future__ import annotations

import numpy as np


def leave_one_out_centres(counts: np.ndarray, clusters: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each arm's prior centre (arms, actions, states, states) and strength (arms, actions, states).

    ``counts`` (arms, actions, states, states); ``clusters`` (arms,) ids from 0; ``tau`` (clusters, actions,
    states) the arms' concentration about their cluster's centre. Where no other arm of the cluster visited
    a row, its centre is all zeros and its strength 0.
    """
    C = int(clusters.max()) + 1
    n = counts.sum(-1)
    t = tau[clusters]
    weight = np.where(n > 0, n * (t + 1.0) / np.maximum(n + t, 1e-300), 0.0)
    rows = weight[..., None] * np.divide(counts, n[..., None], out=np.zeros_like(counts), where=n[..., None] > 0)
    total_rows, total_weight = np.zeros((C, *counts.shape[1:])), np.zeros((C, *n.shape[1:]))
    np.add.at(total_rows, clusters, rows)
    np.add.at(total_weight, clusters, weight)
    others, others_weight = total_rows[clusters] - rows, total_weight[clusters] - weight
    seen = others_weight > 1e-9 * np.maximum(total_weight[clusters], 1.0)  # round-off of the subtraction
    centre = np.clip(np.where(seen[..., None], others, 0.0), 0.0, None)
    sums = centre.sum(-1, keepdims=True)
    centre = np.divide(centre, sums, out=np.zeros_like(centre), where=sums > 0)
    spread = 1.0 / (t + 1.0) + np.divide(1.0, others_weight, out=np.full_like(t, np.inf), where=seen)
    strength = np.where(seen & (sums[..., 0] > 0), np.maximum(1.0 / spread - 1.0, 0.0), 0.0)
    return centre, strength
