"""A learned state value V(s, h): the expected return-to-go of a base policy from arm states s with h steps left.

The first layer is a sum of per-arm state embeddings (the same as a linear layer on the one-hot states, at J
gathers instead of a J x S product; summed by ``embedding_bag`` without materialising the J embeddings, 3.5x
faster on 70,000 states of 21 arms), plus the time to go as a fraction of the horizon; two ReLU layers follow.
The network predicts a reward *rate*: V = (h / H) x (its output), so V is 0 with no step left and an error in
the rate shrinks with the time to go. The output is scaled by the rates' mean and spread recorded at fitting
time, so the weights train on unit-scale targets. :func:`fit_values` regresses it on Monte-Carlo returns-to-go
(mean squared error, Adam, minibatches); :func:`refine_values` on expected one-step targets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional


class ValueNetwork(nn.Module):
    """V(s, h) for J arms with ``counts[j]`` states each, over a horizon of ``horizon`` steps."""

    offsets: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor

    def __init__(self, counts: np.ndarray | list[int], horizon: int, hidden: int = 64) -> None:
        super().__init__()
        counts = np.asarray(counts, dtype=np.int64)
        self.horizon, self.hidden = int(horizon), int(hidden)
        self.register_buffer("offsets", torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]])))
        self.counts = counts
        self.embed = nn.Embedding(int(counts.sum()), hidden)
        self.time = nn.Linear(1, hidden)
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("center", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, states: torch.Tensor, time_to_go: torch.Tensor) -> torch.Tensor:
        """V for arm states (..., J) and times to go (...); 0 where no step is left."""
        frac = time_to_go.to(torch.float32) / self.horizon
        idx = (states + self.offsets).reshape(-1, states.shape[-1])
        summed = functional.embedding_bag(idx, self.embed.weight, mode="sum").reshape(*states.shape[:-1], self.hidden)
        x = summed + self.time(frac.unsqueeze(-1))
        return frac * (self.body(x).squeeze(-1) * self.scale + self.center)

    @torch.no_grad()
    def values(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        """V as a float64 array for integer arm states (..., J) and times to go (broadcast over the leading axes)."""
        s = torch.as_tensor(np.asarray(states, dtype=np.int64))
        h = torch.as_tensor(np.broadcast_to(np.asarray(time_to_go), s.shape[:-1]).copy())
        return self(s, h).double().numpy()


def fit_values(
    net: ValueNetwork,
    states: np.ndarray,
    time_to_go: np.ndarray,
    returns: np.ndarray,
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
    rescale: bool = True,
) -> float:
    """Regress ``net`` on (states (n, J), time to go (n,), returns-to-go (n,)); returns the final training RMSE.
    ``rescale`` sets the output's centre and scale from the targets (else they are kept: a refinement)."""
    gen = torch.Generator().manual_seed(seed)
    s = torch.as_tensor(np.asarray(states, dtype=np.int64))
    h = torch.as_tensor(np.asarray(time_to_go, dtype=np.int64))
    y = torch.as_tensor(np.asarray(returns, dtype=np.float32))
    if rescale:
        rate = y / torch.clamp(h.to(torch.float32) / net.horizon, min=1.0 / net.horizon)
        spread = float(rate.std()) if len(rate) > 1 else 1.0  # one record has no spread: unit scale
        net.center.fill_(float(rate.mean()))
        net.scale.fill_(max(spread, 1e-6) if np.isfinite(spread) else 1.0)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    n = len(y)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = torch.mean(((net(s[idx], h[idx]) - y[idx]) / net.scale) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((net(s, h) - y) ** 2)))


def refine_values(
    net: ValueNetwork,
    instance,
    states: np.ndarray,
    time_to_go: np.ndarray,
    actions: np.ndarray,
    uniforms: np.ndarray,
    sweeps: int,
    epochs: int = 20,
    seed: int = 0,
) -> float:
    """Fitted policy evaluation: ``sweeps`` times, regress ``net`` on the expected one-step targets
    E[r(s, a)] + mean_m V(s'_m, h - 1) of the recorded base actions (next states drawn with ``uniforms`` (M, J)
    from the instance's transition model; V frozen during a sweep). Less noisy than single Monte-Carlo returns.
    Returns the last sweep's training RMSE against its targets."""
    s = np.asarray(states, dtype=np.int64)
    a = np.asarray(actions, dtype=np.int64)
    h = np.asarray(time_to_go, dtype=np.int64)
    reward = instance.expected_reward(s, a)
    later = np.flatnonzero(h > 1)  # records with a step after this one
    rmse = float("nan")
    for sweep in range(sweeps):
        targets = reward.copy()
        for lo in range(0, len(later), 4096):
            idx = later[lo : lo + 4096]
            nxt = instance.transition(s[idx, None, :], a[idx, None, :], uniforms[None])
            targets[idx] += net.values(nxt, (h[idx] - 1)[:, None]).mean(-1)
        rmse = fit_values(net, s, h, targets, epochs, seed=seed + sweep + 1, rescale=False)
    return rmse
