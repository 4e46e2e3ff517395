"""Combinatorial Thompson sampling (Wang and Chen 2018): sample per-arm means, hand them to the oracle.

``likelihood="bernoulli"``: Beta(a0 + sum r, b0 + sum (1 - r)) per arm for rewards in [0, 1] (fractional
pseudo-counts for non-binary rewards). ``likelihood="gaussian"``: known noise ``sigma``, prior N(mu0,
sigma^2 / kappa0); the posterior of arm i is N((kappa0 mu0 + sum r) / (kappa0 + n), sigma^2 / (kappa0 + n)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.combinatorial.base import SemiBanditPolicy
from bandits.combinatorial.oracles import Oracle
from bandits.validation import check_positive
from scenarios.errors import InvalidInputError

LIKELIHOODS = ("bernoulli", "gaussian")


class CombinatorialThompson(SemiBanditPolicy):
    kind = "combinatorial_thompson"
    stochastic = True

    def __init__(
        self,
        oracle: Oracle,
        likelihood: str = "bernoulli",
        prior: tuple[float, float] = (1.0, 1.0),
        sigma: float = 1.0,
        seed: int = 0,
        epsilon: float = 0.0,
        propensity_samples: int = 32,
    ) -> None:
        super().__init__(oracle, seed, epsilon, propensity_samples)
        if likelihood not in LIKELIHOODS:
            raise InvalidInputError("likelihood", f"expected one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        a0, b0 = (float(v) for v in prior)
        if likelihood == "bernoulli":
            check_positive(a0, "prior"), check_positive(b0, "prior")
        else:
            check_positive(b0, "prior")  # (mu0, kappa0)
            if not np.isfinite(a0):
                raise InvalidInputError("prior", f"the prior mean mu0 must be finite, got {a0!r}")
        self.prior = (a0, b0)
        self.sigma = check_positive(sigma, "sigma")
        self.counts = np.zeros(self.n_arms)
        self.sums = np.zeros(self.n_arms)

    def posterior(self) -> dict[str, np.ndarray]:
        """Parameters of every arm's posterior."""
        a0, b0 = self.prior
        if self.likelihood == "bernoulli":
            return {"alpha": a0 + self.sums, "beta": b0 + self.counts - self.sums}
        k = b0 + self.counts
        return {"mean": (b0 * a0 + self.sums) / k, "std": self.sigma / np.sqrt(k)}

    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        post = self.posterior()
        size = (self.n_arms,) if n is None else (n, self.n_arms)
        if self.likelihood == "bernoulli":
            return self.rng.beta(np.maximum(post["alpha"], 1e-9), np.maximum(post["beta"], 1e-9), size=size)
        return post["mean"] + post["std"] * self.rng.standard_normal(size)

    def _update(self, mask: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        if self.likelihood == "bernoulli" and (np.any(rewards[mask] < 0) or np.any(rewards[mask] > 1)):
            raise InvalidInputError("rewards", "Bernoulli Thompson sampling needs rewards in [0, 1]")
        self.counts += mask.sum(0)
        self.sums += rewards.sum(0)

    def _params(self) -> dict[str, Any]:
        return {"likelihood": self.likelihood} | {k: v.tolist() for k, v in self.posterior().items()}

    def _get(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"likelihood": self.likelihood, "prior": list(self.prior), "sigma": self.sigma}
        return meta, {"counts": self.counts, "sums": self.sums}

    def _set(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.likelihood, self.prior, self.sigma = meta["likelihood"], tuple(meta["prior"]), meta["sigma"]
        self.counts, self.sums = arrays["counts"].astype(float), arrays["sums"].astype(float)
