"""Semi-bandit environments: per-arm reward laws, optional per-arm contexts, and an oracle (feasible set).

Each round ``draw(rng)`` returns (contexts or None, mean rewards (arms,), realised rewards (arms,)); the
realised reward of every arm is drawn whether chosen or not, so policies run with one seed see common
random numbers.
"""

from __future__ import annotations

import numpy as np

from bandits.combinatorial.oracles import Oracle
from bandits.validation import as_float_array, check_positive
from scenarios.errors import InvalidInputError


class SemiBanditEnvironment:
    oracle: Oracle
    dim: int | None = None

    @property
    def n_arms(self) -> int:
        return self.oracle.n_arms

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        raise NotImplementedError


class BernoulliSemiBandit(SemiBanditEnvironment):
    """Arm i pays 1 with probability means[i], else 0."""

    def __init__(self, means: object, oracle: Oracle) -> None:
        self.means = as_float_array(means, "means", (oracle.n_arms,))
        if np.any((self.means < 0) | (self.means > 1)):
            raise InvalidInputError("means", "Bernoulli means must lie in [0, 1]")
        self.oracle = oracle

    def draw(self, rng: np.random.Generator):
        return None, self.means, (rng.uniform(size=self.n_arms) < self.means).astype(float)


class GaussianSemiBandit(SemiBanditEnvironment):
    """Arm i pays means[i] + sigma * N(0, 1)."""

    def __init__(self, means: object, oracle: Oracle, sigma: float = 0.5) -> None:
        self.means = as_float_array(means, "means", (oracle.n_arms,))
        self.sigma = check_positive(sigma, "sigma")
        self.oracle = oracle

    def draw(self, rng: np.random.Generator):
        return None, self.means, self.means + self.sigma * rng.standard_normal(self.n_arms)


REWARD_FUNCTIONS = ("linear", "quadratic", "cosine")


class ContextualSemiBandit(SemiBanditEnvironment):
    """Fresh unit-norm features per arm and round; mean h(x) with h linear (x . theta, mapped to [0, 1]),
    quadratic ((x . theta)^2) or cosine (cos(3 x . theta)^2 ...); Gaussian noise ``noise``."""

    def __init__(
        self, oracle: Oracle, dim: int = 8, reward: str = "quadratic", noise: float = 0.1, seed: int = 0
    ) -> None:
        if reward not in REWARD_FUNCTIONS:
            raise InvalidInputError("reward", f"expected one of {REWARD_FUNCTIONS}, got {reward!r}")
        if int(dim) != dim or dim < 1:
            raise InvalidInputError("dim", "expected a positive integer")
        self.oracle, self.dim, self.reward, self.noise = oracle, int(dim), reward, float(noise)
        theta = np.random.default_rng(seed).standard_normal(self.dim)
        self.theta = theta / np.linalg.norm(theta)

    def mean(self, contexts: np.ndarray) -> np.ndarray:
        z = contexts @ self.theta
        if self.reward == "linear":
            return 0.5 + 0.5 * z
        if self.reward == "quadratic":
            return z**2
        return np.cos(3.0 * z) ** 2

    def draw(self, rng: np.random.Generator):
        x = rng.standard_normal((self.n_arms, self.theta.size))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        mu = self.mean(x)
        return x, mu, mu + self.noise * rng.standard_normal(self.n_arms)
