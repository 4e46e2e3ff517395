"""The actor-critic's networks: a deterministic actor and a critic in which the scaled action enters ONE
hidden layer linearly (so that the neighbourhood search scores neighbours incrementally and the box MILP is
small)."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Deterministic proxy ``tanh(mlp(s))`` in [-1, 1]^n."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.body = _mlp([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1] if hidden else obs_dim, n_actions)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """The proxy before tanh (penalised in training so that tanh does not saturate)."""
        return self.head(self.body(obs))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(obs))


class Critic(nn.Module):
    """``Q(s, a) = v(s) + w2 . relu(c(s) + W a_scaled) + b2`` with ``a_scaled = a / amax``.

    ``c(s) = U enc(s) + b1`` and the state value ``v(s) = u . enc(s)`` share the encoder ``enc``; ``v(s)``
    is a per-state constant (it lets the 32 action units model the action's effect, not the state's value).
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        state_hidden: tuple[int, ...],
        action_hidden: int,
        value_head: bool = True,
    ) -> None:
        super().__init__()
        enc_dim = state_hidden[-1] if state_hidden else obs_dim
        self.state_net = _mlp([obs_dim, *state_hidden])
        self.state_in = nn.Linear(enc_dim, action_hidden)
        self.action_in = nn.Linear(n_actions, action_hidden, bias=False)
        self.out = nn.Linear(action_hidden, 1)
        self.value = nn.Linear(enc_dim, 1, bias=False) if value_head else None
        with torch.no_grad():  # put each unit's kink through a random point of the box, not near a = 0
            anchor = torch.rand(action_hidden, n_actions)
            self.state_in.bias.copy_(-(self.action_in.weight * anchor).sum(1))

    def state_terms(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c(s), v(s))``: the state's constant in the action layer (B, H) and its value offset (B,)."""
        enc = self.state_net(obs)
        v = self.value(enc).squeeze(-1) if self.value is not None else torch.zeros(enc.shape[0])
        return self.state_in(enc), v

    def forward(self, obs: torch.Tensor, a_scaled: torch.Tensor) -> torch.Tensor:
        c, v = self.state_terms(obs)
        return v + self.out(torch.relu(c + self.action_in(a_scaled))).squeeze(-1)

    def action_layer(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(W, w2, b2)``: W (H, n) on the scaled action, output weights (H,), output bias."""
        return self.action_in.weight.detach(), self.out.weight.detach()[0], float(self.out.bias.detach()[0])
