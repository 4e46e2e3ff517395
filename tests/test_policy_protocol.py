"""One Policy contract (issue 19 items 1 and 3): every policy kind decides through ``decide`` / ``decide_batch``
with the selectors it lists, saves, and comes back from ``Engine.load`` by its kind; ``Engine.train`` picks the
trainer by config type (and the config by the scenario's family); the registries satisfy the extension-point
protocols; the command line trains an integer-box scenario with the actor-critic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import ActorCriticAgent, ActorCriticConfig, DQNConfig, Engine
from engine.bandit_policy import BanditPolicy
from engine.planners.policy import PlannerPolicy
from engine.protocols import (
    BanditOracle,
    IntegerBoxEnvironment,
    MilpBackend,
    Policy,
    ScenarioInstance,
    Selector,
)
from engine.sequoia.dqn import make_encoder
from engine.sequoia.q_network import QNetwork
from scenarios import InvalidInputError, list_scenarios, make

TINY_AC = ActorCriticConfig(total_steps=32, num_envs=4, learning_starts=8, batch_size=8)


def _dqn() -> tuple[Engine, np.ndarray]:
    env = make("capacity", n_arms=5, budget=2, seed=0)
    enc = make_encoder(env.instance)
    torch.manual_seed(0)
    net = QNetwork(env.instance.n_actions, enc.dim, (8,), enc.context_dim)
    return Engine(env.scenario, env.instance, net), env.reset(seed=0)[0]


def _actor_critic() -> tuple[ActorCriticAgent, np.ndarray]:
    env = make("inventory", n_items=3, horizon=10)
    return Engine.train(env, TINY_AC, seed=0, progress=False), env.reset(seed=0)[0]


def _planner() -> tuple[PlannerPolicy, np.ndarray]:
    env = make("capacity", n_arms=5, budget=2, seed=0)
    return Engine.plan(env, "whittle"), env.reset(seed=0)[0]


def _bandit() -> tuple[BanditPolicy, np.ndarray]:
    from bandits import RestlessArms, WhittlePolicy

    n = 4
    P = np.zeros((n, 2, 2, 2))
    for j in range(n):
        up = 0.2 + 0.15 * j
        P[j, 0] = [[0.9, 0.1], [0.4, 0.6]]
        P[j, 1] = [[1 - up, up], [0.1, 0.9]]
    R = np.zeros((n, 2, 2))
    R[:, :, 1] = 1.0
    arms = RestlessArms.from_arrays(P, R, np.tile([0.0, 1.0], (n, 1)), np.tile([1.0, 0.0], (n, 1)))
    return BanditPolicy(WhittlePolicy(arms, budget=2, horizon=5)), np.array([0, 1, 0, 1, 3])


def _lookahead():
    from engine.lookahead import LookaheadConfig, train_lookahead

    env = make("capacity", n_arms=5, budget=2, seed=0)
    config = LookaheadConfig(rollout_episodes=8, epochs=2, sweeps=1, samples=4, validation_episodes=0)
    return train_lookahead(env.scenario, env.instance, config, seed=0, progress=False), env.reset(seed=0)[0]


KINDS = {
    "dqn": _dqn,
    "actor_critic": _actor_critic,
    "planner": _planner,
    "bandit": _bandit,
    "lookahead": _lookahead,
}


@pytest.fixture(scope="module", params=list(KINDS))
def policy_and_state(request):
    return KINDS[request.param]()


def test_every_policy_kind_conforms(policy_and_state):
    policy, _ = policy_and_state
    assert isinstance(policy, Policy)
    assert policy.kind in KINDS and policy.selectors and len(set(policy.selectors)) == len(policy.selectors)
    assert isinstance(policy.policy_version, str) and len(policy.policy_version) == 12


def test_every_listed_selector_decides_and_batches_agree(policy_and_state):
    policy, state = policy_and_state
    for selector in policy.selectors:
        if selector == "enumerate" and policy.kind != "dqn":
            continue
        one = policy.decide(state, selector=selector, time_limit=5.0)
        batch = policy.decide_batch([state, state], selector=selector, time_limit=5.0)
        assert len(batch) == 2 and all(np.array_equal(d.action, one.action) for d in batch), selector
        assert one.policy_version == policy.policy_version
    with pytest.raises(InvalidInputError) as err:
        policy.decide(state, selector="no_such_selector")
    assert err.value.field == "selector"
    with pytest.raises(InvalidInputError) as err:
        policy.decide_batch("not states")
    assert err.value.field == "states"


def test_load_dispatches_on_the_checkpoint_kind(policy_and_state, tmp_path):
    policy, state = policy_and_state
    loaded = Engine.load(policy.save(tmp_path / policy.kind))
    assert type(loaded) is type(policy) and loaded.kind == policy.kind
    assert loaded.policy_version == policy.policy_version
    selector = policy.selectors[0]
    assert np.array_equal(loaded.decide(state, selector).action, policy.decide(state, selector).action)
    assert json.loads((tmp_path / policy.kind / "config.json").read_text())["kind"] == policy.kind


def test_unknown_kind_and_unknown_config_are_refused(tmp_path):
    engine, _ = _dqn()
    path = engine.save(tmp_path / "p")
    meta = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**meta, "kind": "mystery"}))
    with pytest.raises(InvalidInputError) as err:
        Engine.load(path)
    assert err.value.field == "kind" and "mystery" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        Engine.train(make("capacity", n_arms=3, budget=1), config={"episodes": 1}, progress=False)
    assert err.value.field == "config"


def test_the_family_picks_the_trainer():
    from engine import trainers

    assert trainers.family(make("inventory")) == trainers.family(make("maze")) == "box"
    assert trainers.family(make("capacity", n_arms=3, budget=1)) == "allocation"
    assert trainers.config_class(make("maze")) is ActorCriticConfig
    assert trainers.config_class(make("routing", n_arms=4, budget=2)) is DQNConfig
    env = make("inventory", n_items=2, horizon=5)
    agent = Engine.train(env, TINY_AC, seed=3, progress=False)
    assert isinstance(agent, ActorCriticAgent) and agent.config.seed == 3


def test_registries_hold_what_the_extension_points_promise():
    from bandits import TopKOracle
    from bandits.registry import BANDITS, bandit_class
    from engine.sequoia.selectors import SELECTORS
    from scenarios import instance_class
    from solvers.backends.registry import make_backend

    for name in list_scenarios():
        cls = instance_class(name)
        instance = cls.generate()
        assert isinstance(instance, ScenarioInstance), name
        env = instance.make_env()
        assert isinstance(env, IntegerBoxEnvironment) == (name in ("inventory", "maze")), name
    for name, cls in SELECTORS.items():
        assert isinstance(cls(), Selector), name
    assert isinstance(make_backend("highs"), MilpBackend)
    assert isinstance(TopKOracle(4, 2), BanditOracle)
    assert all(bandit_class(kind).kind == kind for kind in BANDITS)


def test_selector_choices_come_from_every_policy_kind():
    from engine.policy_kinds import selector_names

    names = selector_names()
    for maker in KINDS.values():
        if maker is _actor_critic:
            assert {"minmax", "neighbourhood", "mip", "hybrid"} <= set(names)
            continue
        policy, _ = maker()
        assert set(policy.selectors) <= set(names)


def test_cli_trains_an_integer_box_scenario_with_the_actor_critic(tmp_path, capsys):
    from api.cli import main

    out = tmp_path / "inventory"
    argv = ["train", "inventory", "--scenario-option", "n_items=2", "horizon=8", "--out", str(out), "--quiet"]
    code = main([*argv, "--ac-option", "total_steps=32", "num_envs=4", "learning_starts=8", "batch_size=8"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(printed.out.splitlines()[-1])
    assert result["kind"] == "actor_critic" and result["checkpoint"] == str(out)
    agent = Engine.load(out)
    assert isinstance(agent, ActorCriticAgent) and agent.policy_version == result["policy_version"]
    assert agent.config.total_steps == 32 and agent.n_actions == 2
    assert main([*argv, "--episodes", "3"]) == 2
    assert "--episodes: only meaningful with allocation scenarios" in capsys.readouterr().err
