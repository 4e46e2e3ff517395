"""The Q-network Q(s, a): an MLP over [action ; state features] with ReLU hidden layers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from solvers.relu_network import ReluNetwork


class QNetwork(nn.Module):
    """MLP [action ; state features] -> hidden widths (ReLU) -> scalar Q. Default widths as the reference."""

    def __init__(self, n_actions: int, state_dim: int, hidden: tuple[int, ...] = (16, 32)) -> None:
        super().__init__()
        self.n_actions, self.state_dim, self.hidden = n_actions, state_dim, tuple(hidden)
        widths = [n_actions + state_dim, *self.hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Linear(widths[-1], 1)
        self.register_buffer("_output_scale", torch.tensor(1.0, dtype=torch.float64))

    @property
    def output_scale(self) -> float:
        """Q = scale * raw output: training works on a unit scale, every caller sees real values."""
        return float(self._output_scale)

    def set_output_scale(self, scale: float) -> None:
        self._output_scale.fill_(float(scale))

    def forward(self, actions: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = torch.cat([actions, features], dim=-1)
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x).squeeze(-1) * self._output_scale.to(x.dtype)

    @torch.no_grad()
    def score(self, actions: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Q of each action row for one state's features (broadcast), as numpy."""
        a = torch.as_tensor(np.asarray(actions, dtype=np.float32))
        f = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if f.dim() == 1:
            f = f.expand(a.shape[0], -1)
        return self.forward(a, f).numpy().astype(np.float64)

    @torch.no_grad()
    def relu_network(self) -> ReluNetwork:
        """The action part of the network in plain numpy; the state enters through :meth:`first_bias`."""
        first = self.layers[0]
        weights = [first.weight[:, : self.n_actions].double().numpy().copy()]
        biases = [first.bias.double().numpy().copy()]
        for layer in self.layers[1:]:
            weights.append(layer.weight.double().numpy().copy())
            biases.append(layer.bias.double().numpy().copy())
        weights.append(self.out.weight.double().numpy() * self.output_scale)
        biases.append(self.out.bias.double().numpy() * self.output_scale)
        return ReluNetwork(weights=weights, biases=biases)

    @torch.no_grad()
    def first_bias(self, features: np.ndarray) -> np.ndarray:
        """First-layer bias with the state's contribution folded in (the state is a constant in the MILP)."""
        first = self.layers[0]
        w_state = first.weight[:, self.n_actions :].double().numpy()
        return first.bias.double().numpy() + w_state @ np.asarray(features, dtype=np.float64)
