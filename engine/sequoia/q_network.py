"""The Q-network Q(s, a): an MLP over [action ; action x context ; state features] with ReLU layers.

The first layer reads the action twice: as is, and multiplied entry-wise by a per-action context built
from the state (see :mod:`engine.sequoia.state_encoder`). For a fixed state both are linear in the action, so the
network is a ReLU MLP of the action alone whose first-layer weights and bias depend on the state:
exactly what the MILP embedding needs.
"""

from __future__ import annotations

import itertools
import uuid

import numpy as np
import torch
from torch import nn

from solvers.formulations.relu_network import ReluNetwork


class QNetwork(nn.Module):
    """Hidden widths default to the reference's (16, 32); Q = output_scale * raw output."""

    _output_scale: torch.Tensor  # a registered buffer (saved with the weights)

    def __init__(
        self, n_actions: int, state_dim: int, hidden: tuple[int, ...] = (16, 32), context_dim: int = 0
    ) -> None:
        super().__init__()
        self.n_actions, self.state_dim, self.hidden = n_actions, state_dim, tuple(hidden)
        self.context_dim = context_dim
        widths = [n_actions * (1 + context_dim) + state_dim, *self.hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.out = nn.Linear(widths[-1], 1)
        self.register_buffer("_output_scale", torch.tensor(1.0, dtype=torch.float64))
        self.uid = uuid.uuid4().int  # identity for selector caches (with the trainer's weight version)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.uid = uuid.uuid4().int  # a copy (deepcopy, pickle) is another network for every cache

    @property
    def hidden_layers(self) -> list[nn.Linear]:
        """The hidden layers, typed (``layers`` is the ``nn.ModuleList`` holding them; the first reads the state)."""
        return [layer for layer in self.layers if isinstance(layer, nn.Linear)]

    @property
    def output_scale(self) -> float:
        """Training works on a unit scale; every caller sees real values."""
        return float(self._output_scale)

    def set_output_scale(self, scale: float) -> None:
        self._output_scale.fill_(float(scale))

    def zero_output(self) -> None:
        """Output 0 everywhere (Q is the prior alone)."""
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def reset_output(self) -> None:
        self.out.reset_parameters()

    def forward(self, actions: torch.Tensor, features: torch.Tensor, context: torch.Tensor | None = None):
        parts = [actions]
        if self.context_dim:
            if context is None:
                raise ValueError(f"context: required by a network with context_dim = {self.context_dim}")
            parts.append((actions.unsqueeze(-1) * context).flatten(-2))
        x = torch.cat([*parts, features], dim=-1)
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x).squeeze(-1) * self._output_scale.to(x.dtype)

    def candidate_values(
        self, candidates: torch.Tensor, features: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Q of k candidate actions for each of b states: (b, k, n) -> (b, k).

        Each state's first layer is formed once (weights (b, h, n), bias (b, h)) and applied to all of its
        candidates, instead of re-reading the state features for every candidate.
        """
        first, *rest = self.hidden_layers
        W = first.weight
        n, c = self.n_actions, self.context_dim
        weights = W[:, :n].unsqueeze(0)
        if c:
            if context is None:
                raise ValueError(f"context: required by a network with context_dim = {self.context_dim}")
            weights = weights + torch.einsum("hic,bic->bhi", W[:, n : n + n * c].reshape(-1, n, c), context)
        bias = first.bias + features @ W[:, n * (1 + c) :].T
        x = torch.relu(torch.einsum("bhn,bkn->bkh", weights, candidates) + bias.unsqueeze(1))
        for layer in rest:
            x = torch.relu(layer(x))
        return self.out(x).squeeze(-1) * self._output_scale.to(x.dtype)

    @torch.no_grad()
    def score(self, actions: np.ndarray, features: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Q of each action row for one state (features and context broadcast over the rows)."""
        a = torch.as_tensor(np.asarray(actions, dtype=np.float32))
        f = torch.as_tensor(np.asarray(features, dtype=np.float32)).expand(a.shape[0], -1)
        c = None
        if self.context_dim:
            c = torch.as_tensor(np.asarray(context, dtype=np.float32)).expand(a.shape[0], -1, -1)
        return self.forward(a, f, c).numpy().astype(np.float64)

    @torch.no_grad()
    def first_layer(self, features: np.ndarray, context: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """First-layer action weights (h, n) and bias (h,) of one state: the state is a constant."""
        first = self.hidden_layers[0]
        W = first.weight.double().numpy()
        n, c = self.n_actions, self.context_dim
        weights = W[:, :n].copy()
        if c:
            W_ctx = W[:, n : n + n * c].reshape(-1, n, c)
            weights += np.einsum("hic,ic->hi", W_ctx, np.asarray(context, dtype=np.float64))
        bias = first.bias.double().numpy() + W[:, n * (1 + c) :] @ np.asarray(features, np.float64)
        return weights, bias

    @torch.no_grad()
    def relu_network(self) -> ReluNetwork:
        """The network as plain numpy; its first layer is the state-free part (use :meth:`first_layer`)."""
        first, *rest = self.hidden_layers
        weights = [first.weight[:, : self.n_actions].double().numpy().copy()]
        biases = [first.bias.double().numpy().copy()]
        for layer in rest:
            weights.append(layer.weight.double().numpy().copy())
            biases.append(layer.bias.double().numpy().copy())
        weights.append(self.out.weight.double().numpy() * self.output_scale)
        biases.append(self.out.bias.double().numpy() * self.output_scale)
        return ReluNetwork(weights=weights, biases=biases)
