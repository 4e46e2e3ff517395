"""MILP-friendly regularisers: torch bounds match the compiler's, the penalties do their job, the hook works."""

from __future__ import annotations

import numpy as np
import torch

from engine.sequoia.dqn import DQNConfig, DQNTrainer, make_encoder
from engine.sequoia.milp_friendly import (
    MilpFriendlyRegulariser,
    interval_bounds_torch,
    l1_penalty,
    prune_small_weights,
    stability_loss,
    stable_fraction,
)
from engine.sequoia.q_network import QNetwork
from scenarios import make
from solvers.formulations.interval_bounds import interval_bounds
from solvers.formulations.network_milp import max_cardinality


def setup(seed: int = 0):
    env = make("capacity", n_arms=8, budget=3, seed=0)
    enc = make_encoder(env.instance)
    torch.manual_seed(seed)
    net = QNetwork(env.instance.n_actions, enc.dim, (8, 6), enc.context_dim)
    rng = np.random.default_rng(seed)
    states = rng.integers(0, 2, (16, env.instance.n_arms))
    ttg = rng.integers(1, env.instance.horizon + 1, 16)
    return env, enc, net, states, ttg


def test_torch_bounds_match_the_compiler_bounds():
    _, enc, net, states, ttg = setup()
    f, c = enc.encode(states, ttg), enc.context(states, ttg)
    bounds = interval_bounds_torch(net, torch.as_tensor(f), torch.as_tensor(c), max_ones=3)
    relu = net.relu_network()
    for i in range(len(states)):
        W0, b0 = net.first_layer(f[i], c[i])
        state_net = type(relu)([W0, *relu.weights[1:]], [b0, *relu.biases[1:]])
        ref = interval_bounds(state_net, b0, np.zeros(8), np.ones(8), max_ones=3)
        for (L, U), (L0, U0) in zip(bounds, ref, strict=True):
            np.testing.assert_allclose(L[i].detach().numpy(), L0, atol=1e-4)
            np.testing.assert_allclose(U[i].detach().numpy(), U0, atol=1e-4)


def test_stability_penalty_makes_neurons_stable():
    _, enc, net, states, ttg = setup()
    f, c = torch.as_tensor(enc.encode(states, ttg)), torch.as_tensor(enc.context(states, ttg))
    before = stable_fraction(net, f.numpy(), c.numpy(), 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(100):
        loss = stability_loss(interval_bounds_torch(net, f, c, 3))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert stable_fraction(net, f.numpy(), c.numpy(), 3) > before


def test_l1_and_pruning():
    _, _, net, _, _ = setup()
    assert float(l1_penalty(net).detach()) > 0
    small = sum(int((layer.weight.abs() < 0.05).sum()) for layer in net.layers)
    assert prune_small_weights(net, 0.05) == small
    assert all(not ((layer.weight.abs() < 0.05) & (layer.weight != 0)).any() for layer in net.layers)


def test_config_hook_regularises_and_prunes():
    env, _, _, states, ttg = setup()
    cfg = DQNConfig(
        hidden=(8, 6),
        episodes=1,
        warm_start_samples=64,
        warm_start_epochs=2,
        act_selector="greedy",
        batch_size=16,
        stability_weight=1e-3,
        l1_weight=1e-4,
        prune_threshold=1e-2,
    )
    trainer = DQNTrainer(env.instance, cfg, seed=0)
    assert isinstance(trainer.regulariser, MilpFriendlyRegulariser)
    model = env.action_model()
    assert trainer.regulariser.max_ones == max_cardinality(model.milp(np.zeros(8)), 8)
    assert float(trainer.regulariser.penalty(trainer.net, states, ttg).detach()) != 0.0
    net = trainer.train(progress=False)
    assert trainer.regulariser.n_pruned > 0
    assert all(not ((layer.weight.abs() < 1e-2) & (layer.weight != 0)).any() for layer in net.layers)
    assert isinstance(
        DQNTrainer(env.instance, DQNConfig(hidden=(8, 6)), seed=0).regulariser, MilpFriendlyRegulariser
    )  # on by default
    off = DQNConfig(hidden=(8, 6), stability_weight=0.0, l1_weight=0.0, prune_threshold=0.0)
    assert DQNTrainer(env.instance, off, seed=0).regulariser is None
    assert DQNConfig.from_dict(cfg.to_dict()).stability_weight == 1e-3
