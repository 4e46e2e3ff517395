"""Contextual linear semi-bandits: arm i's mean reward is x_i . theta with per-arm features x_i.

Ridge statistics A = reg I + sum x x^T, b = sum r x over every observed (round, arm). ``LinUCB`` scores
x . theta_hat + scale * ||x||_{A^-1} (Qin, Chen, Zhu 2014's C2UCB form); ``LinearThompson`` draws
theta ~ N(theta_hat, scale^2 A^-1) and scores x . theta (Agrawal and Goyal 2013).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.combinatorial.base import SemiBanditPolicy
from bandits.combinatorial.oracles import Oracle
from bandits.validation import check_positive
from scenarios.errors import InvalidInputError


class _LinearSemiBandit(SemiBanditPolicy):
    contextual = True

    def __init__(
        self,
        oracle: Oracle,
        dim: int,
        reg: float = 1.0,
        scale: float = 1.0,
        seed: int = 0,
        epsilon: float = 0.0,
        propensity_samples: int = 32,
    ) -> None:
        super().__init__(oracle, seed, epsilon, propensity_samples)
        if int(dim) != dim or dim < 1:
            raise InvalidInputError("dim", f"expected a positive integer, got {dim!r}")
        self.dim = int(dim)
        self.reg = check_positive(reg, "reg")
        self.scale = check_positive(scale, "scale", allow_zero=True)
        self.A = self.reg * np.eye(self.dim)
        self.b = np.zeros(self.dim)

    @property
    def theta(self) -> np.ndarray:
        return np.linalg.solve(self.A, self.b)

    def _update(self, mask: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        X = self._given(contexts)[mask]
        self.A += X.T @ X
        self.b += X.T @ rewards[mask]

    def _params(self) -> dict[str, Any]:
        return {"theta": self.theta.tolist(), "scale": self.scale}

    def _get(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"dim": self.dim, "reg": self.reg, "scale": self.scale}, {"A": self.A, "b": self.b}

    def _set(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.dim, self.reg, self.scale = int(meta["dim"]), meta["reg"], meta["scale"]
        self.A, self.b = arrays["A"].astype(float), arrays["b"].astype(float)


class LinUCB(_LinearSemiBandit):
    kind = "lin_ucb"

    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        x = self._given(contexts)
        Ainv_x = np.linalg.solve(self.A, x.T).T  # (arms, d)
        width = np.sqrt(np.maximum(np.einsum("id,id->i", x, Ainv_x), 0.0))
        s = x @ self.theta + self.scale * width
        return s if n is None else np.broadcast_to(s, (n, self.n_arms)).copy()


class LinearThompson(_LinearSemiBandit):
    kind = "linear_thompson"
    stochastic = True

    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        L = np.linalg.cholesky(np.linalg.inv(self.A))
        z = self.rng.standard_normal((1 if n is None else n, self.dim))
        thetas = self.theta[None] + self.scale * z @ L.T
        s = thetas @ self._given(contexts).T  # (n, arms)
        return s[0] if n is None else s
