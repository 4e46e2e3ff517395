"""What a Q-network reads and how one state's Q is formed: the state encoder of an instance (with the static
per-action descriptors an arm-wise network reads), the network a :class:`DQNConfig` names, the network inputs of
a batch of states and the :class:`StateQ` of one state (network + the prior's linear part)."""

from __future__ import annotations

import numpy as np
import torch

from engine.planners.prior import Prior
from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.dqn_config import DQNConfig
from engine.sequoia.q_network import QNetwork
from engine.sequoia.state_encoder import StateEncoder
from engine.sequoia.state_q import StateQ
from scenarios.cormab.instance import CoRMABInstance
from scenarios.errors import InvalidInputError

AnyQNetwork = QNetwork | ArmwiseQNetwork


def make_state_q(
    model,
    net: AnyQNetwork,
    encoder: StateEncoder,
    prior: Prior | None,
    states: np.ndarray,
    ttg: int,
    version: int = 0,
    closed: np.ndarray | None = None,
) -> StateQ:
    """Q(s, .) of one state: the network, plus the prior's linear part when ``prior`` is given (and an arm-wise
    network's own per-action gains, which are linear in the action too). ``closed``: the entries unavailable at
    the state (``instance.unavailable_entries``), kept at 0 by every selector."""
    closed = None if closed is None or not np.any(closed) else np.asarray(closed, dtype=bool)
    linear, offset = None, 0.0
    if prior is not None:
        linear, base = prior.coefficients(states, ttg)
        offset = float(base)
    if isinstance(net, ArmwiseQNetwork):
        rows = encoder.armwise_rows(states, ttg, linear)
        gains = net.action_gains(rows)
        linear = gains if linear is None else np.asarray(linear, dtype=float) + gains
        return StateQ(
            model, net, np.zeros(0, np.float32), rows, version, linear, offset, network_linear=gains, closed=closed
        )
    return StateQ(
        model, net, encoder.encode(states, ttg), encoder.context(states, ttg), version, linear, offset, closed=closed
    )


def network_inputs(
    net: AnyQNetwork, encoder: StateEncoder, prior: Prior | None, states: np.ndarray, ttg
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's inputs for a batch of states: (state features, per-action rows)."""
    if isinstance(net, ArmwiseQNetwork):
        gains = None if prior is None else prior.coefficients(states, ttg)[0]
        rows = encoder.armwise_rows(states, ttg, gains)
        return torch.zeros((*rows.shape[:-2], 0)), torch.as_tensor(rows)
    return torch.as_tensor(encoder.encode(states, ttg)), torch.as_tensor(encoder.context(states, ttg))


def make_network(config: DQNConfig, instance: CoRMABInstance, encoder: StateEncoder) -> AnyQNetwork:
    """The network ``config.network`` names: ``joint`` (:class:`QNetwork`) or ``armwise``."""
    if config.network == "armwise":
        return ArmwiseQNetwork(instance.n_actions, encoder.armwise_dim, config.hidden)
    if config.network != "joint":
        raise InvalidInputError("network", f"expected 'joint' or 'armwise', got {config.network!r}")
    return QNetwork(instance.n_actions, encoder.dim, config.hidden, encoder.context_dim)


def make_encoder(instance: CoRMABInstance) -> StateEncoder:
    """The state encoder of an instance (actions linked to the arms they reach, their static descriptors)."""
    links = instance.action_arm_links() if instance.n_actions != instance.n_arms else None
    features, scale = action_descriptors(instance)
    return StateEncoder(instance.n_arms, instance.arms.n_states, instance.horizon, links, features, scale)


def action_descriptors(instance: CoRMABInstance) -> tuple[np.ndarray, float]:
    """Static per-action descriptors (n_actions, 2 S A + 1): the expected reward and the expected next state of
    every (state, level) of the arms the action reaches (link-averaged), and the action's resource use; plus a
    typical Q magnitude (horizon x mean |reward|) that scales the prior's gains."""
    P, R, _, _ = instance.arms.arrays()
    N, A, S, _ = P.shape
    r_scale = max(float(np.abs(R).max()), 1e-9)
    expected_next = (P * np.arange(S)).sum(-1) / max(S - 1, 1)  # (N, A, S)
    per_arm = np.concatenate([R.reshape(N, S * A) / r_scale, expected_next.reshape(N, A * S)], axis=1)
    links = instance.action_arm_links() if instance.n_actions != instance.n_arms else np.eye(N)
    weights = links / np.maximum(links.sum(axis=1, keepdims=True), 1e-12)
    costs = np.asarray(instance.action_costs(), dtype=float)
    costs = costs / max(float(np.abs(costs).max()), 1e-9)
    features = np.concatenate([weights @ per_arm, costs[:, None]], axis=1).astype(np.float32)
    return features, float(instance.horizon * max(float(np.abs(R).mean()), 1e-9))
