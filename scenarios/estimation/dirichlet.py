"""Dirichlet posteriors over each arm's transition rows, estimated from logged transitions.

Every (arm, action, state) row of the transition tensor gets an independent Dirichlet posterior
``alpha = prior + counts``. The prior is symmetric (``prior_strength`` pseudo-records spread evenly over the
next states) plus, with :class:`Pooling`, the empirical rows of the arm's cluster (see ``pooling.py``), so a
row the arm never visited falls back to its cluster's, and to uniform when the cluster has none either.

    posterior = estimate_dynamics(load_transition_log("log.csv"), pooling=Pooling(clusters=ids))
    P = posterior.mean()                      # (arms, actions, states, states), rows sum to 1
    draws = posterior.sample(rng, n=100)      # (100, arms, actions, states, states)
    lower, upper = posterior.interval(0.95)   # per-entry credible intervals
    posterior = posterior.update(new_log)     # same as estimating on the concatenated logs
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaincinv

from scenarios.errors import InvalidInputError
from scenarios.estimation.logs import TransitionLog
from scenarios.estimation.pooling import Pooling, pooled_prior

FORMAT = "redwood.dynamics_posterior/1"


@dataclass(frozen=True, eq=False)
class DynamicsPosterior:
    """Dirichlet parameters ``alpha = prior + counts``, each (arms, actions, states, states)."""

    counts: np.ndarray
    prior: np.ndarray
    prior_strength: float
    pooling: Pooling | None = None
    pool_strengths: np.ndarray | None = None  # tau per (cluster, action, state) when pooled

    @property
    def alpha(self) -> np.ndarray:
        return self.prior + self.counts

    @property
    def shape(self) -> tuple[int, int, int]:
        """(arms, actions, states)."""
        N, A, S, _ = self.counts.shape
        return N, A, S

    def mean(self) -> np.ndarray:
        """Posterior mean transition probabilities; every row sums to 1."""
        alpha = self.alpha
        return alpha / alpha.sum(-1, keepdims=True)

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Posterior draws of the transition tensor, one Gamma normalisation for all rows at once.

        Shape (arms, actions, states, states), or (n, ...) when ``n`` is given.
        """
        alpha = self.alpha
        size = alpha.shape if n is None else (int(n), *alpha.shape)
        gammas = rng.standard_gamma(np.broadcast_to(alpha, size))
        totals = gammas.sum(-1, keepdims=True)
        underflow = totals <= 0  # all Gammas of a row can underflow when alpha is tiny: use the mean row
        return np.where(underflow, self.mean(), gammas / np.where(underflow, 1.0, totals))

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of every transition probability (each entry's Beta marginal).

        Two arrays (lower, upper) shaped like :meth:`mean`; an entry whose interval is narrow is one the log
        pins down, whatever the number of records of its arm.
        """
        if not 0.0 < level < 1.0:
            raise InvalidInputError("level", f"expected a number in (0, 1), got {level}")
        alpha = self.alpha
        rest = alpha.sum(-1, keepdims=True) - alpha
        tail = (1.0 - level) / 2.0
        return betaincinv(alpha, rest, tail), betaincinv(alpha, rest, 1.0 - tail)

    def record_counts(self) -> np.ndarray:
        """Logged records per arm."""
        return self.counts.sum(axis=(1, 2, 3))

    def update(self, more: TransitionLog | np.ndarray) -> DynamicsPosterior:
        """A new posterior with more records (pooling strengths re-estimated on all of them)."""
        N, A, S = self.shape
        extra = _counts(more, (N, A, S))
        return estimate_dynamics(self.counts + extra, self.prior_strength, self.pooling)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record; :meth:`from_dict` restores an equal posterior."""
        return {
            "format": FORMAT,
            "prior_strength": self.prior_strength,
            "pooling": None if self.pooling is None else self.pooling.to_dict(),
            "pool_strengths": None if self.pool_strengths is None else self.pool_strengths.tolist(),
            "counts": self.counts.tolist(),
            "prior": self.prior.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DynamicsPosterior:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInputError("posterior.format", f"expected {FORMAT!r}")
        counts = _array(data, "counts", 4)
        prior = _array(data, "prior", 4)
        if prior.shape != counts.shape or counts.shape[-1] != counts.shape[-2] or not (prior > 0).all():
            raise InvalidInputError("posterior.prior", "expected positive values shaped like the counts")
        if (counts < 0).any():
            raise InvalidInputError("posterior.counts", "expected non-negative counts")
        pooling = None if data.get("pooling") is None else Pooling.from_dict(data["pooling"])
        if pooling is not None:
            pooling = pooling.resolved(len(counts))
        strengths = None if data.get("pool_strengths") is None else _array(data, "pool_strengths", 3)
        return cls(counts, prior, float(data.get("prior_strength", 1.0)), pooling, strengths)


def estimate_dynamics(
    log_or_counts: TransitionLog | np.ndarray,
    prior_strength: float = 1.0,
    pooling: Pooling | None = None,
) -> DynamicsPosterior:
    """Dirichlet posterior from a log or a counts tensor (arms, actions, states, states).

    ``prior_strength`` is the symmetric prior's pseudo-records per row (> 0; 1.0 spreads one record over
    the next states); ``pooling`` adds the cluster prior, None estimates each arm on its own.
    """
    if not (np.isfinite(prior_strength) and prior_strength > 0):
        raise InvalidInputError("prior_strength", f"expected a finite number > 0, got {prior_strength}")
    counts = _counts(log_or_counts, None)
    N, _, S, _ = counts.shape
    base = float(prior_strength) / S
    if pooling is None:
        return DynamicsPosterior(counts, np.full(counts.shape, base), float(prior_strength))
    pooling = pooling.resolved(N, counts)
    prior, tau = pooled_prior(counts, pooling, base)
    return DynamicsPosterior(counts, prior, float(prior_strength), pooling, tau)


def _counts(source: TransitionLog | np.ndarray, dims: tuple[int, int, int] | None) -> np.ndarray:
    """Float counts (arms, actions, states, states), padded with zeros to ``dims`` when given."""
    if isinstance(source, TransitionLog):
        if dims is not None:
            source = source.with_dims(dims[0], dims[2], dims[1])
        return source.counts().astype(np.float64)
    counts = np.asarray(source, dtype=np.float64)
    if counts.ndim != 4 or counts.shape[-1] != counts.shape[-2] or 0 in counts.shape:
        raise InvalidInputError("counts", f"expected shape (arms, actions, states, states), got {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise InvalidInputError("counts", "expected finite non-negative counts")
    if dims is not None and counts.shape[:3] != dims:
        raise InvalidInputError("counts", f"expected shape {(*dims, dims[2])}, got {counts.shape}")
    return counts


def _array(data: dict[str, Any], key: str, ndim: int) -> np.ndarray:
    try:
        out = np.asarray(data[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"posterior.{key}", f"expected a {ndim}-D numeric array: {exc}") from exc
    if out.ndim != ndim or not np.isfinite(out).all():
        raise InvalidInputError(f"posterior.{key}", f"expected a finite {ndim}-D array, got shape {out.shape}")
    return out
