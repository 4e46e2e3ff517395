"""CUCB (Chen, Wang, Yuan 2013): optimistic per-arm means handed to the oracle.

Score of arm i after n_i observations: mean_i + (high - low) * sqrt(alpha * log(t) / (2 n_i)), with t the
number of completed rounds + 1; arms never observed score ``high + (high - low)`` so that each is tried.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.combinatorial.base import SemiBanditPolicy
from bandits.combinatorial.oracles import Oracle
from bandits.validation import check_positive
from scenarios.errors import InvalidInputError


class CUCB(SemiBanditPolicy):
    kind = "cucb"

    def __init__(
        self,
        oracle: Oracle,
        alpha: float = 1.5,
        reward_range: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
        epsilon: float = 0.0,
        propensity_samples: int = 32,
    ) -> None:
        super().__init__(oracle, seed, epsilon, propensity_samples)
        self.alpha = check_positive(alpha, "alpha", allow_zero=True)
        try:
            low, high = (float(v) for v in reward_range)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("reward_range", f"expected (low, high), got {reward_range!r}") from exc
        if not (np.isfinite(low) and np.isfinite(high) and high > low):
            raise InvalidInputError("reward_range", "expected finite (low, high) with high > low")
        self.low, self.high = low, high
        self.counts = np.zeros(self.n_arms)
        self.sums = np.zeros(self.n_arms)

    @property
    def means(self) -> np.ndarray:
        return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), self.high)

    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        span = self.high - self.low
        t = self.rounds + 1
        radius = span * np.sqrt(self.alpha * np.log(t) / (2.0 * np.maximum(self.counts, 1)))
        ucb = np.where(self.counts > 0, self.means + radius, self.high + span)
        return ucb if n is None else np.broadcast_to(ucb, (n, self.n_arms)).copy()

    def _update(self, mask: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        seen = rewards[mask.astype(bool)]
        if seen.size and (seen.min() < self.low - 1e-9 or seen.max() > self.high + 1e-9):
            # the confidence radius holds for rewards in the declared range only
            raise InvalidInputError(
                "rewards", f"chosen arms' rewards must lie in reward_range [{self.low}, {self.high}]"
            )
        self.counts += mask.sum(0)
        self.sums += rewards.sum(0)

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _get(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"alpha": self.alpha, "reward_range": [self.low, self.high]}, {"counts": self.counts, "sums": self.sums}

    def _set(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.alpha, (self.low, self.high) = meta["alpha"], meta["reward_range"]
        self.counts, self.sums = arrays["counts"].astype(float), arrays["sums"].astype(float)
