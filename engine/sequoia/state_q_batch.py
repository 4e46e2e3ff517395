"""Q(s, .) of many states at once: one Q-network forward scores candidate actions of every state.

Selectors that can decide a batch (``select_batch``) score (owner state, action) pairs in one call instead of one
call per state. A row's single :class:`~engine.sequoia.state_q.StateQ` (exactly as a single decision builds it)
stays available for rows a batch selector must settle one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from engine.planners.prior import Prior
from engine.sequoia.dqn import make_state_q
from engine.sequoia.q_network import QNetwork
from engine.sequoia.state_encoder import StateEncoder
from engine.sequoia.state_q import StateQ
from scenarios.action_model import ActionModel


@dataclass
class StateQBatch:
    """Q of B states over one feasible set: Q_b(a) = network(a; state b) + linear[b] . a + offset[b].

    ``states`` (B, J) and ``time_to_go`` (B,) are the rows; ``features`` (B, d), ``context`` (B, n, c) or None,
    ``linear`` (B, n) or None (no prior) and ``offset`` (B,) their encodings."""

    model: ActionModel
    network: QNetwork
    encoder: StateEncoder
    prior: Prior | None
    states: np.ndarray
    time_to_go: np.ndarray
    features: np.ndarray
    context: np.ndarray | None
    linear: np.ndarray | None
    offset: np.ndarray
    closed: np.ndarray | None = None  # (B, n) entries unavailable at each row's state

    @classmethod
    def of(
        cls,
        model: ActionModel,
        network: QNetwork,
        encoder: StateEncoder,
        prior: Prior | None,
        states: np.ndarray,
        time_to_go: np.ndarray,
        closed: np.ndarray | None = None,
    ) -> StateQBatch:
        """Encode every row at once (the encoder's and the prior's batch forms); ``closed`` (B, n): the entries
        unavailable at each state (rows are then settled one by one, each with its own mask)."""
        states = np.asarray(states, dtype=np.int64)
        ttg = np.asarray(time_to_go, dtype=np.int64).reshape(-1)
        if states.ndim != 2 or ttg.shape != (states.shape[0],):
            raise ValueError(f"states must be (B, J) with one time to go each; got {states.shape} and {ttg.shape}")
        linear, offset = None, np.zeros(len(states))
        if prior is not None:
            gains, base = prior.coefficients(states, ttg)
            linear, offset = np.asarray(gains, dtype=float), np.asarray(base, dtype=float).reshape(-1)
        context = encoder.context(states, ttg) if getattr(network, "context_dim", 0) else None
        closed = None if closed is None or not np.any(closed) else np.asarray(closed, dtype=bool)
        return cls(
            model, network, encoder, prior, states, ttg, encoder.encode(states, ttg), context, linear, offset, closed
        )

    def __len__(self) -> int:
        return int(self.states.shape[0])

    @cached_property
    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and context as float32 tensors, once (rows are gathered from them per call)."""
        features = torch.as_tensor(np.asarray(self.features, dtype=np.float32))
        context = None if self.context is None else torch.as_tensor(np.asarray(self.context, dtype=np.float32))
        return features, context

    @property
    def vectorised(self) -> bool:
        """Whether :meth:`score` and :meth:`network_bound` apply (a :class:`QNetwork`); other network kinds are
        scored row by row through :meth:`row`, as are rows with unavailable entries."""
        return isinstance(self.network, QNetwork) and self.closed is None

    @torch.no_grad()
    def score(self, owner: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Q of each action row (m, n) under the state of its ``owner`` row (m,): one network forward (float32,
        as a single state's; the prior's linear part in float64)."""
        owner = np.asarray(owner, dtype=np.int64)
        a = np.asarray(actions)
        rows = torch.as_tensor(owner)
        features, context = self._tensors
        f = features.index_select(0, rows)
        c = None if context is None else context.index_select(0, rows)
        values = self.network.forward(torch.as_tensor(a.astype(np.float32)), f, c).numpy().astype(np.float64)
        if self.linear is not None:
            values = values + np.einsum("mn,mn->m", a, self.linear[owner]) + self.offset[owner]
        return values

    @torch.no_grad()
    def network_bound(self) -> tuple[np.ndarray, np.ndarray]:
        """(const (B,), per_entry (B, n)): for a 0/1 action ``a`` of row b, ``const[b] + per_entry[b] @ a`` bounds the
        magnitude of every partial sum the network forms for it (the forward with absolute weights and inputs and
        no ReLU, which is affine in ``a``; output scale included). Float32 rounding in the forward, and so its
        difference between two batch compositions, is a small multiple of eps times this bound."""
        net = self.network
        n, c = net.n_actions, net.context_dim
        first, *rest = net.hidden_layers
        W = np.abs(first.weight.double().numpy())
        u = np.ones((1, 1))  # |later layers| as one linear map (1, h1) and offset k, built from the output back
        k = np.zeros(1)
        for layer in [*rest, net.out][::-1]:
            k = k + u @ np.abs(layer.bias.double().numpy())
            u = u @ np.abs(layer.weight.double().numpy())
        u = u[0]
        const = u @ np.abs(first.bias.double().numpy()) + k[0] + np.abs(self.features) @ (u @ W[:, n * (1 + c) :])
        per_entry = np.broadcast_to(u @ W[:, :n], (len(self), n)).copy()
        if self.context is not None:
            per_entry += np.einsum("bjc,jc->bj", np.abs(self.context), (u @ W[:, n : n * (1 + c)]).reshape(n, c))
        scale = abs(net.output_scale)
        return const * scale, per_entry * scale

    def row(self, i: int) -> StateQ:
        """Row ``i``'s Q exactly as a single decision builds it."""
        closed = None if self.closed is None else self.closed[i]
        return make_state_q(
            self.model, self.network, self.encoder, self.prior, self.states[i], int(self.time_to_go[i]), closed=closed
        )
