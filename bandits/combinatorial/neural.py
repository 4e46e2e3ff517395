"""Combinatorial neural bandits (Hwang, Chai, Oh 2023): CN-UCB and CN-TS.

A one-hidden-layer ReLU network f(x; theta) scores every arm from its features; it starts at f = 0 (the
output weights of the two halves of the hidden layer are opposite). Gradient features
g(x) = grad_theta f(x; theta) / sqrt(hidden) (per-arm, by ``torch.func``) give the confidence width
||g(x)||_{Z^-1} with Z = reg I + sum of g g^T over observed (round, arm) pairs (Woodbury updates).
``NeuralUCB`` scores f + scale * width; ``NeuralThompson`` draws N(f, (scale * width)^2) per arm, taking the
max of ``n_draws`` draws (CN-TS's optimistic sampling). The network is retrained every ``train_every``
rounds by ``train_steps`` full-batch Adam steps on squared error + reg/n ||theta - theta_0||^2 over the last
``buffer_size`` observations (a fresh optimiser each time, so the state is the weights alone).
Initial weights come from the policy's numpy Generator; computations run in float64 on ``threads`` torch
threads (1 by default: on a busy machine, multi-threaded kernels on such small tensors are far slower).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from bandits.combinatorial.base import SemiBanditPolicy
from bandits.combinatorial.oracles import Oracle
from bandits.validation import check_positive
from scenarios.errors import InvalidInputError

PARAMS = ("W1", "b1", "w2")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads (tiny networks are much faster on one), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x @ params["W1"].T + params["b1"]) @ params["w2"]


class _NeuralSemiBandit(SemiBanditPolicy):
    contextual = True

    def __init__(
        self,
        oracle: Oracle,
        dim: int,
        hidden: int = 32,
        reg: float = 1.0,
        scale: float = 1.0,
        lr: float = 0.01,
        train_steps: int = 30,
        train_every: int = 1,
        buffer_size: int = 4096,
        n_draws: int = 1,
        threads: int = 1,
        seed: int = 0,
        epsilon: float = 0.0,
        propensity_samples: int = 32,
    ) -> None:
        super().__init__(oracle, seed, epsilon, propensity_samples)
        for name, v in (
            ("dim", dim),
            ("hidden", hidden),
            ("train_every", train_every),
            ("buffer_size", buffer_size),
            ("n_draws", n_draws),
            ("threads", threads),
        ):
            if int(v) != v or v < 1:
                raise InvalidInputError(name, f"expected a positive integer, got {v!r}")
        if int(train_steps) != train_steps or train_steps < 0:
            raise InvalidInputError("train_steps", "expected a non-negative integer")
        if hidden % 2:
            raise InvalidInputError("hidden", "must be even (two mirrored halves)")
        self.dim, self.hidden = int(dim), int(hidden)
        self.reg = check_positive(reg, "reg")
        self.scale = check_positive(scale, "scale", allow_zero=True)
        self.lr = check_positive(lr, "lr")
        self.train_steps, self.train_every = int(train_steps), int(train_every)
        self.buffer_size, self.n_draws = int(buffer_size), int(n_draws)
        self.threads = int(threads)
        half = self.hidden // 2
        W = self.rng.standard_normal((half, self.dim)) * np.sqrt(2.0 / self.dim)
        v = self.rng.standard_normal(half) * np.sqrt(1.0 / self.hidden)
        init = {"W1": np.vstack([W, W]), "b1": np.zeros(self.hidden), "w2": np.concatenate([v, -v])}
        self.params = {k: torch.tensor(a, dtype=torch.float64) for k, a in init.items()}
        self.params0 = {k: t.clone() for k, t in self.params.items()}
        self.n_params = sum(t.numel() for t in self.params.values())
        self.Zinv = np.eye(self.n_params) / self.reg
        self.X = np.zeros((0, self.dim))
        self.y = np.zeros(0)

    # --------------------------------------------------------------------------------- network
    def predict(self, contexts: np.ndarray) -> np.ndarray:
        with torch.no_grad(), torch_threads(self.threads):
            return _forward(self.params, torch.as_tensor(contexts, dtype=torch.float64)).numpy()

    def gradient_features(self, contexts: np.ndarray) -> np.ndarray:
        """g(x) / sqrt(hidden) for each row of ``contexts``: (rows, n_params), in the order W1, b1, w2.

        Closed form of the per-sample gradient of w2 . relu(W1 x + b1) (tests check it against
        ``torch.func``): d/dW1 = (w2 * active) outer x, d/db1 = w2 * active, d/dw2 = relu(W1 x + b1).
        """
        W1, b1, w2 = (self.params[k].numpy() for k in PARAMS)
        pre = contexts @ W1.T + b1
        gate = (pre > 0) * w2
        n = contexts.shape[0]
        flat = np.concatenate(
            [(gate[:, :, None] * contexts[:, None, :]).reshape(n, -1), gate, np.maximum(pre, 0.0)], axis=1
        )
        return flat / np.sqrt(self.hidden)

    def _mean_width(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        G = self.gradient_features(contexts)
        width = np.sqrt(np.maximum(np.einsum("ip,pq,iq->i", G, self.Zinv, G), 0.0))
        return self.predict(contexts), width

    def _train(self) -> None:
        if self.train_steps == 0 or self.y.size == 0:
            return
        with torch_threads(self.threads):
            self._fit()

    def _fit(self) -> None:
        params = {k: t.clone().requires_grad_(True) for k, t in self.params.items()}
        opt = torch.optim.Adam(params.values(), lr=self.lr)
        X, y = torch.as_tensor(self.X), torch.as_tensor(self.y)
        penalty = self.reg / y.numel()
        for _ in range(self.train_steps):
            opt.zero_grad()
            pred = _forward(params, X)
            loss = torch.mean((pred - y) ** 2)
            loss = loss + penalty * sum(((params[k] - self.params0[k]) ** 2).sum() for k in PARAMS)
            loss.backward()
            opt.step()
        self.params = {k: t.detach().clone() for k, t in params.items()}

    # ------------------------------------------------------------------------------- bandit API
    def _update(self, mask: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        X = self._given(contexts)[mask]
        G = self.gradient_features(X)
        ZG = self.Zinv @ G.T
        self.Zinv -= ZG @ np.linalg.solve(np.eye(G.shape[0]) + G @ ZG, ZG.T)
        self.X = np.vstack([self.X, X])[-self.buffer_size :]
        self.y = np.concatenate([self.y, rewards[mask]])[-self.buffer_size :]
        before, after = self.rounds, self.rounds + mask.shape[0]
        if after // self.train_every > before // self.train_every:
            self._train()

    def _params(self) -> dict[str, Any]:
        return {"scale": self.scale, "n_draws": self.n_draws}

    def _get(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "dim": self.dim,
            "hidden": self.hidden,
            "reg": self.reg,
            "scale": self.scale,
            "lr": self.lr,
            "train_steps": self.train_steps,
            "train_every": self.train_every,
            "buffer_size": self.buffer_size,
            "n_draws": self.n_draws,
            "threads": self.threads,
        }
        arrays = {f"param_{k}": t.numpy() for k, t in self.params.items()}
        arrays |= {f"param0_{k}": t.numpy() for k, t in self.params0.items()}
        return meta, arrays | {"Zinv": self.Zinv, "X": self.X, "y": self.y}

    def _set(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for k in ("dim", "hidden", "train_steps", "train_every", "buffer_size", "n_draws", "threads"):
            setattr(self, k, int(meta[k]))
        self.reg, self.scale, self.lr = meta["reg"], meta["scale"], meta["lr"]
        self.params = {k: torch.tensor(arrays[f"param_{k}"], dtype=torch.float64) for k in PARAMS}
        self.params0 = {k: torch.tensor(arrays[f"param0_{k}"], dtype=torch.float64) for k in PARAMS}
        self.n_params = sum(t.numel() for t in self.params.values())
        self.Zinv, self.X, self.y = arrays["Zinv"].astype(float), arrays["X"].astype(float), arrays["y"].astype(float)


class NeuralUCB(_NeuralSemiBandit):
    """CN-UCB."""

    kind = "neural_ucb"

    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        mean, width = self._mean_width(self._given(contexts))
        s = mean + self.scale * width
        return s if n is None else np.broadcast_to(s, (n, self.n_arms)).copy()


class NeuralThompson(_NeuralSemiBandit):
    """CN-TS."""

    kind = "neural_thompson"
    stochastic = True

    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        mean, width = self._mean_width(self._given(contexts))
        draws = self.rng.standard_normal((1 if n is None else n, self.n_draws, self.n_arms))
        s = (mean + self.scale * width * draws).max(axis=1)
        return s[0] if n is None else s
