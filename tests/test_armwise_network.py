"""The arm-wise Q-network: linear in the action per entry, J-independent weights, exact argmax through the
corrected planner, silent network = the planner, save / load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import DQNConfig, Engine
from engine.planners import make_planner
from engine.planners.corrected import CorrectedPlanner
from engine.planners.policy import PlannerPolicy
from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.dqn import DQNTrainer, make_encoder, make_state_q, network_inputs
from engine.sequoia.selectors.enumerate import EnumerateSelector
from scenarios import make
from scenarios.errors import InvalidInputError


def _randomised(net: ArmwiseQNetwork, seed: int, scale: float = 1.0) -> ArmwiseQNetwork:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, scale)
    net.set_output_scale(5.0)
    return net


@pytest.mark.parametrize("domain", ["capacity", "scheduling", "budgeted"])
def test_corrected_planner_decides_the_exact_argmax_of_q(domain: str) -> None:
    """With random weights, the engine's decision is Q's maximum over every feasible action (enumeration)."""
    env = make(domain, n_arms=6, budget=2, seed=1)
    instance = env.instance
    encoder = make_encoder(instance)
    net = _randomised(ArmwiseQNetwork(instance.n_actions, encoder.armwise_dim), seed=3)
    engine = Engine(domain, instance, net, DQNConfig(network="armwise", prior="whittle"))
    model = engine.model
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, _ = env.reset(seed=int(rng.integers(1000)))
        decision = engine.decide(obs)
        q = engine.state_q(obs)
        best = EnumerateSelector().select(q)
        assert model.is_feasible(decision.action)
        assert float(q.score(decision.action)[0]) == pytest.approx(best.value, abs=1e-6 * (1 + abs(best.value)))


def test_state_q_scores_equal_the_network_forward_plus_prior() -> None:
    env = make("capacity", n_arms=8, budget=3, seed=0)
    trainer = DQNTrainer(env.instance, DQNConfig(network="armwise", prior="whittle"), seed=0)
    _randomised(trainer.net, seed=1)
    obs, _ = env.reset(seed=2)
    states, ttg = obs[:-1], int(obs[-1])
    actions = np.stack([trainer.model.sample(np.random.default_rng(k)) for k in range(6)])
    q = make_state_q(trainer.model, trainer.net, trainer.encoder, trainer.prior, states, ttg)
    feats, rows = network_inputs(trainer.net, trainer.encoder, trainer.prior, states[None, :].repeat(6, 0), ttg)
    with torch.no_grad():
        direct = trainer.net(torch.as_tensor(actions, dtype=torch.float32), feats, rows).double().numpy()
    direct += trainer.prior.values(states[None, :].repeat(6, 0), np.full(6, ttg), actions).double().numpy()
    assert np.allclose(q.score(actions), direct, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("domain", ["capacity", "scheduling"])
def test_silent_network_is_the_planner(domain: str) -> None:
    env = make(domain, n_arms=20, budget=5, seed=0)
    trainer = DQNTrainer(env.instance, DQNConfig(network="armwise", prior="whittle"), seed=0)
    engine = Engine(domain, env.instance, trainer.net, trainer.config)
    planner = PlannerPolicy(domain, env.instance, make_planner("whittle", env.instance))
    rng = np.random.default_rng(1)
    for _ in range(5):
        obs, _ = env.reset(seed=int(rng.integers(1000)))
        assert np.array_equal(engine.decide(obs).action, planner.decide(obs).action)


def test_weights_do_not_depend_on_the_number_of_arms(tmp_path) -> None:
    """A network trained at J = 10 decides at J = 40 with the same weights, and round-trips a checkpoint."""
    small = make("capacity", n_arms=10, budget=3, seed=0)
    engine = Engine.train(
        small,
        DQNConfig(network="armwise", episodes=3, warm_start_samples=128, warm_start_epochs=2, snapshots=0),
        seed=0,
        progress=False,
    )
    big = make("capacity", n_arms=40, budget=8, seed=0)
    encoder = make_encoder(big.instance)
    net = ArmwiseQNetwork(big.instance.n_actions, encoder.armwise_dim, engine.network.hidden)
    net.load_state_dict(engine.network.state_dict())
    transferred = Engine("capacity", big.instance, net, engine.config)
    obs, _ = big.reset(seed=0)
    assert transferred.model.is_feasible(transferred.decide(obs).action)
    engine.save(tmp_path / "ck")
    again = Engine.load(tmp_path / "ck")
    obs, _ = small.reset(seed=3)
    assert isinstance(again.network, ArmwiseQNetwork)
    assert np.array_equal(again.decide(obs).action, engine.decide(obs).action)


def test_network_kind_is_checked() -> None:
    env = make("capacity", n_arms=6, budget=2, seed=0)
    with pytest.raises(InvalidInputError, match="network"):
        DQNTrainer(env.instance, DQNConfig(network="graph"), seed=0)


def test_corrected_planner_needs_an_arm_pull_domain() -> None:
    env = make("multi_intervention", n_arms=6, budget=2, seed=0)
    encoder = make_encoder(env.instance)
    net = ArmwiseQNetwork(env.instance.n_actions, encoder.armwise_dim)
    with pytest.raises(InvalidInputError, match="network"):
        CorrectedPlanner(make_planner("lagrangian", env.instance), net, encoder)


def test_gains_enter_linearly() -> None:
    net = _randomised(ArmwiseQNetwork(5, 4), seed=0)
    rows = torch.randn(1, 5, 4)
    a = torch.tensor([[1.0, 0, 1, 0, 0]])
    b = torch.tensor([[0.0, 1, 0, 0, 1]])
    zero = torch.zeros(1, 5)
    lhs = net(a + b, None, rows) - net(zero, None, rows)
    rhs = (net(a, None, rows) - net(zero, None, rows)) + (net(b, None, rows) - net(zero, None, rows))
    assert torch.allclose(lhs, rhs, atol=1e-5)
    assert net.shape()["hidden"] == [32, 32]
