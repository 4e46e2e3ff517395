"""The reward prior: Q = exact one-step reward (linear in the action) + the network's continuation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DQNConfig, Engine
from engine.sequoia.dqn import DQNTrainer
from engine.sequoia.q_network import QNetwork
from engine.sequoia.reward_prior import RewardPrior
from scenarios import make
from scenarios.cormab.instance import N_STATES
from solvers.backends.highs import HighsSolver

LINEAR_DOMAINS = ("capacity", "scheduling", "routing")
J = 8


def _env(domain: str, seed: int = 0):
    return make(domain, n_arms=J, budget=3, seed=seed)


@pytest.fixture(scope="module", params=LINEAR_DOMAINS)
def linear_env(request):
    return _env(request.param)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=st.lists(st.integers(0, N_STATES - 1), min_size=J, max_size=J), seed=st.integers(0, 2**31))
def test_prior_is_the_exact_expected_reward_on_arm_pull_domains(linear_env, states, seed):
    instance, rng = linear_env.instance, np.random.default_rng(seed)
    gains, base = RewardPrior(instance).coefficients(np.array(states))
    model = instance.action_model()
    for _ in range(10):
        a = model.sample(rng)
        assert base + gains @ a == pytest.approx(float(instance.expected_reward(np.array(states), a)), abs=1e-9)


def test_prior_is_exact_on_single_interventions_and_batches():
    instance = make("multi_intervention", n_arms=J, budget=2, seed=0).instance
    prior = RewardPrior(instance)
    states = np.random.default_rng(0).integers(0, N_STATES, (5, J))
    gains, base = prior.coefficients(states)
    assert gains.shape == (5, instance.n_actions) and base.shape == (5,)
    for b, s in enumerate(states):
        g1, b1 = prior.coefficients(s)
        assert np.allclose(g1, gains[b]) and b1 == pytest.approx(base[b])
        for i in range(instance.n_actions):
            e = np.eye(instance.n_actions, dtype=np.int64)[i]
            assert base[b] + gains[b, i] == pytest.approx(float(instance.expected_reward(s, e)))


def _silent_engine(env) -> Engine:
    """An engine whose network outputs 0 everywhere: Q is the prior alone."""
    enc_dim = env.instance.n_arms * N_STATES + 1
    net = QNetwork(env.instance.n_actions, enc_dim, (8, 8), context_dim=N_STATES + 1)
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.zero_()
    return Engine(env.scenario, env.instance, net, DQNConfig(hidden=(8, 8), prior="reward"))


@pytest.mark.parametrize("warm_started", [False, True])
@pytest.mark.parametrize("domain", LINEAR_DOMAINS)
def test_an_untrained_network_with_the_prior_acts_myopically(domain, warm_started):
    """A silent network, and a trainer's network after its warm start (the first training snapshot), give
    the myopic MILP's optimum."""
    env = _env(domain, seed=2)
    if warm_started:
        config = DQNConfig(hidden=(8, 8), episodes=0, warm_start_samples=256, warm_start_epochs=5, prior="reward")
        engine = Engine.train(env, config, seed=0, progress=False)
    else:
        engine = _silent_engine(env)
    rng = np.random.default_rng(1)
    for _ in range(6):
        states = rng.integers(0, N_STATES, J)
        myopic = HighsSolver(mip_rel_gap=1e-9).solve(env.instance.myopic_milp(states))
        for selector in ("mip", "enumerate"):
            decision = (
                engine.decide([*states, 5], selector=selector, mip_rel_gap=1e-6)
                if selector == "mip"
                else engine.decide([*states, 5], selector=selector)
            )
            assert engine.model.is_feasible(decision.action)
            assert decision.value == pytest.approx(myopic.objective, abs=1e-6)
            assert decision.value == pytest.approx(float(env.instance.expected_reward(states, decision.action)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=st.lists(st.integers(0, N_STATES - 1), min_size=10, max_size=10), ttg=st.integers(1, 20))
def test_mip_with_the_prior_equals_enumeration(small_engine, states, ttg):
    assert small_engine.prior is not None
    exact = small_engine.decide([*states, ttg], selector="enumerate")
    mip = small_engine.decide([*states, ttg], selector="mip", mip_rel_gap=1e-6)
    assert mip.value == pytest.approx(exact.value, rel=1e-5, abs=1e-6)
    assert mip.bound >= exact.value - 1e-5 * max(1.0, abs(exact.value))


@pytest.mark.parametrize("prior", ["reward", "whittle", "lagrangian"])
def test_training_and_deciding_see_the_same_q(prior):
    env = _env("routing", seed=3)
    trainer = DQNTrainer(env.instance, DQNConfig(hidden=(8, 8), episodes=1, warm_start_epochs=0, prior=prior), seed=0)
    with torch.no_grad():  # a network that is not silent, so its part of Q is checked too
        trainer.net.out.weight.normal_()
    rng = np.random.default_rng(0)
    states = rng.integers(0, N_STATES, (4, J))
    ttg = np.array([1, 3, 7, 20])
    actions = np.stack([trainer.model.sample(rng) for _ in range(4)])
    batch = trainer._q(trainer.net, actions, states, ttg).detach().numpy()
    for b in range(4):
        single = trainer.state_q(states[b], int(ttg[b])).score(actions[b])[0]
        assert batch[b] == pytest.approx(single, rel=1e-5, abs=1e-5)


def test_checkpoints_keep_the_prior_and_old_ones_load_without_it(small_engine, tmp_path):
    small_engine.save(tmp_path / "new")
    assert Engine.load(tmp_path / "new").prior is not None
    small_engine.save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["training"]["prior"]  # as written before the prior existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    old = Engine.load(tmp_path / "old")
    assert old.prior is None
    config["training"]["reward_prior"] = True  # as written with the reward prior, before the planner priors
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    assert Engine.load(tmp_path / "old").prior.name == "reward"
    state = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 9]
    q_new, q_old = small_engine.state_q(state), old.state_q(state)
    a = small_engine.model.enumerate()[:20]
    gains, base = small_engine.prior.coefficients(np.array(state[:-1]), state[-1])
    assert np.allclose(q_new.score(a) - q_old.score(a), a @ gains + base)


@pytest.mark.parametrize("prior", [True, False])
def test_exact_greedy_value_uses_the_enumeration_argmax(prior):
    """The batched greedy policy of the exact policy evaluation is the enumerate selector's answer, and its
    exact value lies between the null policy's and the optimum."""
    from engine.analysis.exact_dp import exact_optimum, policy_value
    from engine.analysis.exact_policy import greedy_actions, greedy_policy_value

    env = make("routing", n_arms=4, budget=2, seed=1, horizon=6)
    engine = Engine.train(
        env,
        DQNConfig(
            hidden=(8,),
            episodes=2,
            warm_start_samples=256,
            warm_start_epochs=10,
            prior="reward" if prior else "none",
            planner_candidates=(),  # the network's own argmax, not a planner kept by the final choice
        ),
        seed=0,
        progress=False,
    )
    assert (engine.prior is not None) == prior
    exact = exact_optimum(env.instance)
    states = np.random.default_rng(0).integers(0, N_STATES, (12, 4))
    for h in (1, 4, 6):
        batch = greedy_actions(engine, states, h, exact.actions)
        for s, a in zip(states, batch, strict=True):
            q = engine.state_q([*s, h])
            assert q.score(a)[0] == pytest.approx(engine.decide([*s, h], selector="enumerate").value, abs=1e-5)
    value = greedy_policy_value(engine, exact)
    null = policy_value(
        env.instance, lambda st, h: np.zeros((len(st), env.instance.n_actions), np.int64), exact.actions
    )
    assert null - 1e-9 <= value <= exact.value + 1e-9
