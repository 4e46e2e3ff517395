"""An arm-wise Q-network whose size does not depend on the number of arms.

    Q(s, a) = scale * ( V(s) + sum_i a_i g(x_i) ),   V(s) = head( mean_i phi(x_i) )

``x_i`` is action entry i's input row (its arms' state one-hot, time to go, static arm descriptors and the
prior's gain for it: :mod:`engine.sequoia.arm_features`). One encoder ``g`` is shared by every action entry,
so the weights are the same at J = 20 and J = 100,000 and a policy trained on one programme reads another's
arms. The action enters linearly, entry by entry: at a fixed state Q is ``gains . a + V(s)``, so the exact
argmax over the feasible set is the domain's own combinatorial problem with weights prior + gains (the
oracles of :mod:`solvers.oracles`, or the MILP), whatever J is. The coupling head reads pooled features of the
whole state: a state value that carries the TD targets' cross-arm part (a dueling decomposition) without
entering the argmax.
"""

from __future__ import annotations

import itertools
import uuid

import numpy as np
import torch
from torch import nn

from solvers.formulations.relu_network import ReluNetwork


def _mlp(widths: list[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))


def _relu_stack(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = torch.relu(layer(x))
    return x


class ArmwiseQNetwork(nn.Module):
    """``ArmwiseQNetwork(n_actions, context_dim)``; inputs are the action (..., n) and the rows (..., n, c)."""

    kind = "armwise"
    _output_scale: torch.Tensor

    def __init__(
        self,
        n_actions: int,
        context_dim: int,
        hidden: tuple[int, ...] = (32, 32),
        pooled_dim: int = 16,
        head_hidden: tuple[int, ...] = (16,),
    ) -> None:
        super().__init__()
        if context_dim < 1:
            raise ValueError(f"context_dim: an arm-wise network needs per-action input rows, got {context_dim}")
        if not hidden or not head_hidden:
            raise ValueError("hidden, head_hidden: at least one layer each")
        self.n_actions, self.context_dim = int(n_actions), int(context_dim)
        self.hidden, self.pooled_dim, self.head_hidden = tuple(hidden), int(pooled_dim), tuple(head_hidden)
        self.state_dim = 0  # reads no flat state vector (checkpoint shape compatibility)
        self.encoder = _mlp([self.context_dim, *self.hidden])
        self.gain = nn.Linear(self.hidden[-1], 1)
        self.pool = nn.Linear(self.context_dim, self.pooled_dim)
        self.head = _mlp([self.pooled_dim, *self.head_hidden])
        self.out = nn.Linear(self.head_hidden[-1], 1)
        self.register_buffer("_output_scale", torch.tensor(1.0, dtype=torch.float64))
        self.uid = uuid.uuid4().int  # identity for selector caches (with the trainer's weight version)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.uid = uuid.uuid4().int  # a copy (deepcopy, pickle) is another network for every cache

    # ------------------------------------------------------------------------------------ scale / output
    @property
    def output_scale(self) -> float:
        return float(self._output_scale)

    def set_output_scale(self, scale: float) -> None:
        self._output_scale.fill_(float(scale))

    def zero_output(self) -> None:
        """Q = 0 everywhere (the prior alone): the value head's and the gains' last layers are zeroed."""
        with torch.no_grad():
            for layer in (self.out, self.gain):
                layer.weight.zero_()
                layer.bias.zero_()

    def reset_output(self) -> None:
        self.out.reset_parameters()
        self.gain.reset_parameters()

    # ------------------------------------------------------------------------------------------ torch
    def gains(self, context: torch.Tensor) -> torch.Tensor:
        """Per-action gains (..., n) on the unit scale."""
        return self.gain(_relu_stack(self.encoder, context)).squeeze(-1)

    def value(self, context: torch.Tensor) -> torch.Tensor:
        """The state value V(s) (...,) on the unit scale."""
        pooled = torch.relu(self.pool(context)).mean(dim=-2)
        return self.out(_relu_stack(self.head, pooled)).squeeze(-1)

    def forward(
        self, actions: torch.Tensor, features: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Q of one action per state: actions (b, n), context (b, n, c) -> (b,). ``features`` is unused."""
        if context is None:
            raise ValueError("context: the arm-wise network reads per-action input rows")
        q = self.value(context) + (actions * self.gains(context)).sum(-1)
        return q * self._output_scale.to(q.dtype)

    def candidate_values(
        self, candidates: torch.Tensor, features: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Q of k candidates for each of b states: (b, k, n) -> (b, k)."""
        if context is None:
            raise ValueError("context: the arm-wise network reads per-action input rows")
        q = self.value(context)[:, None] + torch.einsum("bkn,bn->bk", candidates, self.gains(context))
        return q * self._output_scale.to(q.dtype)

    # ------------------------------------------------------------------------------------------ numpy
    @torch.no_grad()
    def action_gains(self, context: np.ndarray) -> np.ndarray:
        """The gains of one state in real units (n,): Q(s, a) = gains . a + V(s)."""
        c = torch.as_tensor(np.asarray(context, dtype=np.float32))
        return self.gains(c).double().numpy() * self.output_scale

    @torch.no_grad()
    def score(self, actions: np.ndarray, features: np.ndarray | None, context: np.ndarray | None) -> np.ndarray:
        """Q of each action row for one state (real units)."""
        if context is None:
            raise ValueError("context: the arm-wise network reads per-action input rows")
        c = torch.as_tensor(np.asarray(context, dtype=np.float32))
        value = float(self.value(c)) * self.output_scale
        return np.atleast_2d(np.asarray(actions, dtype=np.float64)) @ self.action_gains(context) + value

    @torch.no_grad()
    def first_layer(self, features: np.ndarray | None, context: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The value head as a ReLU network of the action: first-layer action weights are zero (V does not depend
        on the action), the bias carries the pooled state; the gains are the linear part (:meth:`action_gains`)."""
        if context is None:
            raise ValueError("context: the arm-wise network reads per-action input rows")
        c = torch.as_tensor(np.asarray(context, dtype=np.float32))
        pooled = torch.relu(self.pool(c)).mean(dim=-2).double()
        first = self.head[0]
        assert isinstance(first, nn.Linear)
        bias = first.weight.double() @ pooled + first.bias.double()
        return np.zeros((first.out_features, self.n_actions)), bias.numpy()

    @torch.no_grad()
    def relu_network(self) -> ReluNetwork:
        """The value head in numpy; its first layer is replaced per state by :meth:`first_layer`."""
        layers = [layer for layer in self.head if isinstance(layer, nn.Linear)]
        weights = [np.zeros((layers[0].out_features, self.n_actions))]
        biases = [layers[0].bias.double().numpy().copy()]
        for layer in layers[1:]:
            weights.append(layer.weight.double().numpy().copy())
            biases.append(layer.bias.double().numpy().copy())
        weights.append(self.out.weight.double().numpy() * self.output_scale)
        biases.append(self.out.bias.double().numpy() * self.output_scale)
        return ReluNetwork(weights=weights, biases=biases)

    def shape(self) -> dict:
        """What a checkpoint needs to rebuild this network."""
        return {
            "kind": self.kind,
            "n_actions": self.n_actions,
            "context_dim": self.context_dim,
            "hidden": list(self.hidden),
            "pooled_dim": self.pooled_dim,
            "head_hidden": list(self.head_hidden),
            "state_dim": 0,
        }
