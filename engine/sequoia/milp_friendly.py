"""MILP-friendly training: regularisers that make a trained Q-network cheaper to embed in a MILP.

Two levers, both from the verification literature (Xiao et al. 2019, "Training for faster adversarial
robustness verification via inducing ReLU stability"):

* **ReLU stability** on the per-state interval bounds the compiler uses: for every hidden neuron with
  pre-activation bounds ``[L, U]`` over the feasible actions (the 0/1 box with at most ``max_ones`` ones),
  the penalty ``-tanh(1 + L U)`` is lowest when ``L`` and ``U`` have the same sign, i.e. the neuron is
  stable and needs no binary. Bounds are computed in torch, per state of the batch, by the differentiable twin
  of :mod:`solvers.formulations.interval_bounds` (cardinality-aware first layer, interval arithmetic after).
* **Sparsity**: an L1 penalty on the hidden weights during training and, at the end, pruning of the
  weights below ``prune_threshold`` (fewer nonzeros, tighter interval bounds, smaller MILP).

Hook: :class:`~engine.sequoia.dqn.DQNConfig` has ``stability_weight``, ``l1_weight``, ``prune_threshold``;
:class:`~engine.sequoia.dqn.DQNTrainer` adds :meth:`MilpFriendlyRegulariser.penalty` to its losses and calls
:meth:`MilpFriendlyRegulariser.finish` after training.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from engine.sequoia.q_network import QNetwork
from engine.sequoia.state_encoder import StateEncoder


def first_layer_torch(
    net: QNetwork, features: torch.Tensor, context: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-state first-layer action weights ``(b, h, n)`` and bias ``(b, h)`` (differentiable)."""
    first = net.hidden_layers[0]
    W = first.weight
    n, c = net.n_actions, net.context_dim
    weights = W[:, :n].unsqueeze(0).expand(features.shape[0], -1, -1)
    if c:
        if context is None:
            raise ValueError(f"context: required by a network with context_dim = {c}")
        weights = weights + torch.einsum("hic,bic->bhi", W[:, n : n + n * c].reshape(-1, n, c), context)
    bias = first.bias + features @ W[:, n * (1 + c) :].T
    return weights, bias


def interval_bounds_torch(
    net: QNetwork, features: torch.Tensor, context: torch.Tensor | None, max_ones: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(L, U)`` of every hidden layer's pre-activations, shape ``(b, w)``, over actions in {0,1}^n with at
    most ``max_ones`` ones (None: the whole box).

    The differentiable twin of :func:`solvers.formulations.interval_bounds.interval_bounds` (the one numpy
    implementation, which the MILP compiler uses) on that box, batched over states for the stability loss:
    ``tests/test_interval_bounds.py`` checks that the two agree on random networks."""
    weights, bias = first_layer_torch(net, features, context)
    pos, neg = weights.clamp(min=0.0), weights.clamp(max=0.0)
    k = weights.shape[-1] if max_ones is None else int(min(max_ones, weights.shape[-1]))
    if k < weights.shape[-1]:
        U = bias + torch.topk(pos, k, dim=-1).values.sum(-1)
        L = bias - torch.topk(-neg, k, dim=-1).values.sum(-1)
    else:
        U, L = bias + pos.sum(-1), bias + neg.sum(-1)
    out = [(L, U)]
    for layer in net.hidden_layers[1:]:
        lo, hi = L.clamp(min=0.0), U.clamp(min=0.0)
        wp, wn = layer.weight.clamp(min=0.0), layer.weight.clamp(max=0.0)
        L = lo @ wp.T + hi @ wn.T + layer.bias
        U = hi @ wp.T + lo @ wn.T + layer.bias
        out.append((L, U))
    return out


def stability_loss(bounds: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean over states and neurons of ``-tanh(1 + L U)`` (low when every neuron is stable)."""
    return torch.cat([-torch.tanh(1.0 + L * U) for L, U in bounds], dim=-1).mean()


def l1_penalty(net: QNetwork) -> torch.Tensor:
    """Mean absolute hidden-layer weight (the output layer is left alone)."""
    ws = [layer.weight for layer in net.hidden_layers]
    total = torch.zeros(())
    for w in ws:
        total = total + w.abs().sum()
    return total / sum(w.numel() for w in ws)


@torch.no_grad()
def prune_small_weights(net: QNetwork, threshold: float) -> int:
    """Zero hidden-layer weights with ``|w| < threshold``; returns how many were zeroed."""
    zeroed = 0
    for layer in net.hidden_layers:
        mask = layer.weight.abs() < threshold
        zeroed += int(mask.sum())
        layer.weight[mask] = 0.0
    return zeroed


@torch.no_grad()
def stable_fraction(
    net: QNetwork, features: np.ndarray, context: np.ndarray | None, max_ones: int | None = None
) -> float:
    """Fraction of hidden neurons the interval bounds prove stable, averaged over the given states."""
    f = torch.as_tensor(np.asarray(features, dtype=np.float32))
    c = None if context is None else torch.as_tensor(np.asarray(context, dtype=np.float32))
    bounds = interval_bounds_torch(net, f, c, max_ones)
    stable = torch.cat([(L >= 0) | (U <= 0) for L, U in bounds], dim=-1)
    return float(stable.float().mean())


class MilpFriendlyRegulariser:
    """``stability_weight * stability_loss + l1_weight * l1_penalty`` on a batch of states; prune at the end."""

    def __init__(
        self,
        encoder: StateEncoder,
        stability_weight: float = 0.0,
        l1_weight: float = 0.0,
        prune_threshold: float = 0.0,
        max_ones: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.stability_weight, self.l1_weight = stability_weight, l1_weight
        self.prune_threshold, self.max_ones = prune_threshold, max_ones
        self.n_pruned = 0

    @classmethod
    def from_config(cls, config, encoder: StateEncoder, model) -> MilpFriendlyRegulariser | None:
        """None when the config asks for no regularisation (``model`` gives the cardinality bound)."""
        sw, lw, pt = (float(getattr(config, k, 0.0)) for k in ("stability_weight", "l1_weight", "prune_threshold"))
        if sw <= 0 and lw <= 0 and pt <= 0:
            return None
        max_ones = None
        if sw > 0:
            from solvers.formulations.network_milp import max_cardinality

            max_ones = max_cardinality(model.milp(np.zeros(model.n_actions)), model.n_actions)
        return cls(encoder, sw, lw, pt, max_ones)

    def penalty(self, net: QNetwork, states: np.ndarray, ttg: np.ndarray) -> torch.Tensor:
        """The regularisation term for a batch of (arm states, time to go)."""
        total = torch.zeros(())
        if self.stability_weight > 0:
            f = torch.as_tensor(self.encoder.encode(states, ttg))
            c = torch.as_tensor(self.encoder.context(states, ttg)) if net.context_dim else None
            total = total + self.stability_weight * stability_loss(interval_bounds_torch(net, f, c, self.max_ones))
        if self.l1_weight > 0:
            total = total + self.l1_weight * l1_penalty(net)
        return total

    def finish(self, net: QNetwork) -> None:
        """End of training: prune tiny weights."""
        if self.prune_threshold > 0:
            self.n_pruned = prune_small_weights(net, self.prune_threshold)

    def pruned_copy(self, net: QNetwork) -> QNetwork:
        """A copy of ``net`` as :meth:`finish` would leave it (for scoring training snapshots)."""
        out = copy.deepcopy(net)
        if self.prune_threshold > 0:
            prune_small_weights(out, self.prune_threshold)
        return out
