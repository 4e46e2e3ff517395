"""Q-actor-critic agent: selectors, exactness against the MILP and k-NN, checkpoints, a short training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import Decision, Engine
from engine.baselines.boxes import BaseStockPolicy, KNNPolicy, evaluate, tune_base_stock
from engine.dnc import ActorCriticAgent, ActorCriticConfig
from scenarios import InvalidInputError, make
from scenarios.boxes.inventory import InventoryInstance
from solvers.search.neighbourhood import NeighbourhoodConfig


@pytest.fixture(scope="module")
def tiny_agent() -> ActorCriticAgent:
    """Barely trained (random-ish weights): enough for selector, scaling and checkpoint tests."""
    env = make("inventory", n_items=3, seed=0, horizon=20)
    config = ActorCriticConfig(
        total_steps=256, num_envs=4, learning_starts=128, batch_size=64, search=NeighbourhoodConfig(steps=8)
    )
    return ActorCriticAgent.train(env, config, seed=0, progress=False)


@pytest.fixture(scope="module")
def trained_inventory() -> tuple[ActorCriticAgent, object]:
    env = make("inventory", n_items=2, seed=0, horizon=50)
    # a 2-item box is covered by a few d = 10 moves: a shorter training search keeps the data on-policy
    config = ActorCriticConfig(total_steps=6_000, learning_starts=1_000, train_search_steps=5)
    return ActorCriticAgent.train(env, config, seed=0, progress=False), env


def test_decide_returns_box_actions_and_info(tiny_agent):
    obs = np.array([25.0, 3.0, -4.0])
    for selector in ("minmax", "neighbourhood", "mip", "hybrid"):
        action, info = tiny_agent.act(obs, selector=selector)
        assert action.dtype == np.int64 and action.shape == (3,)
        assert np.all((action >= 0) & (action <= 66))
        assert {"value", "seconds", "status", "selector"} <= set(info)
        assert info["value"] == pytest.approx(tiny_agent.q_value(obs, action), rel=1e-5)
    assert tiny_agent.act(obs, "mip")[1]["status"] == "optimal"
    with pytest.raises(InvalidInputError) as err:
        tiny_agent.act(obs, selector="exhaustive")
    assert err.value.field == "selector"
    for bad in ([1.0, 2.0], [np.nan, 0.0, 0.0], "abc"):
        with pytest.raises(InvalidInputError) as err:
            tiny_agent.act(bad)
        assert err.value.field == "state"


def test_exact_selectors_dominate_heuristics(tiny_agent):
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs = rng.integers(-10, 60, 3).astype(float)
        v = {s: tiny_agent.act(obs, selector=s)[1]["value"] for s in ("minmax", "neighbourhood", "mip", "hybrid")}
        assert v["neighbourhood"] >= v["minmax"] - 1e-6
        assert v["mip"] >= v["neighbourhood"] - 1e-6 * max(1.0, abs(v["mip"]))
        assert v["hybrid"] == pytest.approx(v["mip"], rel=1e-6)


def test_milp_uses_the_critics_scaling(tiny_agent):
    """The MILP objective at an action equals the torch critic there (scaled a / amax in both)."""
    obs = np.array([10.0, 0.0, 30.0])
    obs_n = tiny_agent.normalise(obs)
    with torch.no_grad():
        c, v = tiny_agent.critic.state_terms(obs_n)
    milp = tiny_agent.box_milp()
    for a in ([0, 0, 0], [66, 33, 1], [5, 66, 60]):
        q_milp = milp.q(c[0].double().numpy(), np.array(a)) + float(v[0])
        assert q_milp / tiny_agent.reward_scale == pytest.approx(tiny_agent.q_value(obs, np.array(a)), rel=1e-5)


def test_knn_with_all_actions_is_the_exact_argmax():
    env = make("maze", n_actuators=6, seed=0)
    config = ActorCriticConfig(total_steps=128, num_envs=4, learning_starts=64, batch_size=32)
    agent = ActorCriticAgent.train(env, config, seed=1, progress=False)
    knn = KNNPolicy(agent, k=64)
    for obs in (np.array([0.1, 0.1]), np.array([0.5, 0.8])):
        assert agent.q_value(obs, knn(obs)) == pytest.approx(agent.act(obs, "mip")[1]["value"], rel=1e-5)
    with pytest.raises(InvalidInputError):
        KNNPolicy(agent, max_actions=10)


def _assert_same_decisions(agent: ActorCriticAgent, again: ActorCriticAgent, states: list[np.ndarray]) -> None:
    """A reloaded agent takes the same actions, with the same values, under every selector."""
    for obs in states:
        for selector in ("minmax", "neighbourhood", "mip"):
            a1, i1 = agent.act(obs, selector)
            a2, i2 = again.act(obs, selector)
            assert np.array_equal(a1, a2) and i1["value"] == pytest.approx(i2["value"], rel=1e-6)


def test_save_load_gives_identical_decisions(tiny_agent, tmp_path):
    path = tiny_agent.save(tmp_path / "agent")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.safetensors"]
    meta = json.loads((path / "config.json").read_text())
    assert meta["amax"] == [66, 66, 66] and meta["instance"]["demand_rates"] == [20.0, 10.0, 20.0]
    again = ActorCriticAgent.load(path)
    rng = np.random.default_rng(1)
    _assert_same_decisions(tiny_agent, again, [rng.integers(-5, 50, 3).astype(float) for _ in range(4)])
    tiny_agent.save(path)  # overwriting an existing checkpoint works
    with pytest.raises(InvalidInputError):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "config.json").write_text("{}")
        (tmp_path / "other" / "weights.safetensors").write_bytes(b"")
        ActorCriticAgent.load(tmp_path / "other")


def test_engine_facade_trains_loads_and_decides(tmp_path):
    env = make("inventory", n_items=3, seed=0, horizon=10)
    config = ActorCriticConfig(
        total_steps=128, num_envs=2, learning_starts=64, batch_size=32, search=NeighbourhoodConfig(steps=4)
    )
    agent = Engine.train(env, config, seed=0, progress=False)
    assert isinstance(agent, ActorCriticAgent)
    loaded = Engine.load(agent.save(tmp_path / "ac"))
    assert isinstance(loaded, ActorCriticAgent) and loaded.policy_version == agent.policy_version
    obs = np.array([10.0, 0.0, 5.0])
    for selector in ("neighbourhood", "mip"):
        decision = loaded.decide(obs, selector=selector, time_limit=5.0)
        assert isinstance(decision, Decision) and decision.selector == selector
        assert np.array_equal(decision.action, agent.decide(obs, selector=selector).action)
        assert decision.to_dict()["policy_version"] == agent.policy_version
    assert loaded.decide(obs, selector="mip").status == "optimal"
    with pytest.raises(InvalidInputError, match="time_limit"):
        loaded.decide(obs, time_limit=-1.0)


def test_decisions_are_deterministic(tiny_agent):
    obs = np.array([1.0, 2.0, 3.0])
    assert np.array_equal(tiny_agent.act(obs)[0], tiny_agent.act(obs)[0])


def test_short_training_beats_untrained_minmax(trained_inventory):
    agent, env = trained_inventory
    untrained = ActorCriticAgent.train(env, ActorCriticConfig(total_steps=8, num_envs=8), seed=0, progress=False)
    torch.manual_seed(0)
    trained = evaluate(env, agent.policy("neighbourhood"), episodes=4, seed=500)
    baseline = evaluate(env, untrained.policy("minmax"), episodes=4, seed=500)
    rng = np.random.default_rng(0)
    random_policy = evaluate(env, lambda obs: rng.integers(0, 67, 2), episodes=4, seed=500)
    assert trained.mean > baseline.mean
    assert trained.mean > random_policy.mean


# ---------------------------------------------------------------------------- residual prior and trust region
def _prior_config(**kw) -> ActorCriticConfig:
    return ActorCriticConfig(
        prior="base_stock",
        residual_radius=3.0,
        twin_critic=True,
        search_margin=0.003,
        exploration_noise=0.3,
        shaping=True,
        **kw,
    )


def test_zero_residual_agent_is_exactly_base_stock():
    """Before any update the residual is zero: MinMax is the tuned base-stock policy, episode for episode."""
    env = make("inventory", n_items=4, seed=0, horizon=30)
    agent = ActorCriticAgent.train(env, _prior_config(total_steps=8, num_envs=8), seed=0, progress=False)
    levels = tune_base_stock(env.unwrapped.instance).levels
    assert np.array_equal(agent.prior.center, levels)
    for obs in (np.array([25.0, 25.0, 25.0, 25.0]), np.array([-7.0, 60.0, 0.0, 14.0])):
        assert np.array_equal(agent.act(obs, "minmax")[0], levels)
    ours = evaluate(env, agent.policy("minmax"), episodes=2, seed=7).returns
    assert np.array_equal(ours, evaluate(env, BaseStockPolicy(levels), episodes=2, seed=7).returns)


@pytest.fixture(scope="module")
def prior_agent() -> tuple[ActorCriticAgent, object]:
    env = make("inventory", n_items=2, seed=0, horizon=50)
    config = _prior_config(total_steps=2_000, learning_starts=500, search=NeighbourhoodConfig(steps=8))
    return ActorCriticAgent.train(env, config, seed=0, progress=False), env


def test_trust_region_answers_stay_in_region_and_never_lose_to_minmax(prior_agent):
    agent, _ = prior_agent
    lower, upper = agent.prior.lower.numpy(), agent.prior.upper.numpy()
    assert np.array_equal(upper - lower, [6, 6])
    rng = np.random.default_rng(3)
    for _ in range(10):
        obs = rng.integers(-10, 50, 2).astype(float)
        v = {}
        for selector in ("minmax", "neighbourhood", "mip"):
            action, info = agent.act(obs, selector)
            assert np.all((action >= lower) & (action <= upper))
            assert info["value"] == pytest.approx(agent.q_value(obs, action), rel=1e-5)
            v[selector] = info["value"]
        assert v["neighbourhood"] >= v["minmax"] - 1e-6 * abs(v["minmax"])
        assert v["mip"] >= v["neighbourhood"] - 1e-6 * abs(v["mip"])


def test_prior_checkpoint_round_trips_and_is_reconstructible(prior_agent, tmp_path):
    agent, _ = prior_agent
    path = agent.save(tmp_path / "prior")
    assert isinstance(Engine.load(path), ActorCriticAgent)
    meta = json.loads((path / "config.json").read_text())
    instance = InventoryInstance.model_validate(meta["instance"])
    assert meta["prior"]["center"] == tune_base_stock(instance).levels.tolist()  # recomputable from the instance
    again = ActorCriticAgent.load(path)
    assert len(again.critics) == 2 and again.potential is not None
    _assert_same_decisions(agent, again, [np.array([3.0, 40.0]), np.array([25.0, 25.0])])


def test_short_residual_training_is_not_much_worse_than_base_stock(prior_agent):
    agent, env = prior_agent
    base = evaluate(env, BaseStockPolicy(agent.prior.center.astype(np.int64)), episodes=4, seed=900).returns
    for selector in ("minmax", "neighbourhood"):
        ours = evaluate(env, agent.policy(selector), episodes=4, seed=900).returns  # same demand (paired)
        assert ours.sum() >= base.sum() * 1.01  # returns are negative: at most 1% costlier


# ---------------------------------------------------------------------------- exact reward model
@pytest.fixture(scope="module")
def model_agent() -> tuple[ActorCriticAgent, object]:
    env = make("inventory", n_items=2, seed=0, horizon=50)
    config = _prior_config(
        total_steps=1_500, learning_starts=500, reward_model=True, search=NeighbourhoodConfig(steps=8), mip_rel_gap=1e-9
    )  # exact: compared with enumeration
    return ActorCriticAgent.train(env, config, seed=0, progress=False), env


def test_reward_model_q_is_exact_reward_plus_critic(model_agent):
    agent, env = model_agent
    instance = env.unwrapped.instance
    obs = np.array([25.0, 4.0])
    obs_n = agent.normalise(obs)
    for levels in ([27, 15], [25, 4], [24, 18]):
        a = torch.tensor([levels])
        critic = float(agent.critic(obs_n, agent.scale(a)).detach()[0])
        exact = instance.expected_reward(obs[None], a.numpy(), agent.potential.numpy(), agent.config.gamma)[0]
        assert float(agent.q(obs_n, a).detach()[0]) == pytest.approx(critic + exact * agent.reward_scale, rel=1e-5)


def test_reward_model_selectors_are_exact_and_ordered(model_agent):
    """Every selector's value is critic + exact reward; the MILP (which models the fixed cost) dominates."""
    agent, _ = model_agent
    lower, upper = agent.prior.lower.numpy(), agent.prior.upper.numpy()
    rng = np.random.default_rng(4)
    for _ in range(8):
        obs = rng.integers(-10, 50, 2).astype(float)
        v = {}
        for selector in ("minmax", "neighbourhood", "mip", "hybrid"):
            action, info = agent.act(obs, selector)
            assert np.all((action >= lower) & (action <= upper))
            assert info["value"] == pytest.approx(agent.q_value(obs, action), rel=1e-5)
            v[selector] = info["value"]
        grid = np.array(np.meshgrid(*[np.arange(lo, hi + 1) for lo, hi in zip(lower, upper, strict=True)]))
        every = [agent.q_value(obs, a) for a in grid.reshape(2, -1).T]
        assert v["mip"] == pytest.approx(max(every), rel=1e-6)  # the MILP is the enumerated argmax
        assert v["neighbourhood"] >= v["minmax"] - 1e-6 * abs(v["minmax"])
        assert v["hybrid"] == pytest.approx(v["mip"], rel=1e-6)


def test_reward_model_checkpoint_round_trips(model_agent, tmp_path):
    agent, _ = model_agent
    again = ActorCriticAgent.load(agent.save(tmp_path / "model"))
    assert again.reward_source is not None
    _assert_same_decisions(agent, again, [np.array([3.0, 40.0]), np.array([25.0, 25.0])])


def test_reward_model_needs_an_environment_that_has_one():
    env = make("maze", n_actuators=3, seed=0)
    with pytest.raises(InvalidInputError) as err:
        ActorCriticAgent.train(env, ActorCriticConfig(total_steps=8, reward_model=True), seed=0, progress=False)
    assert err.value.field == "reward_model"


# ---------------------------------------------------------------------------- post-decision continuation
@pytest.fixture(scope="module")
def post_agent() -> tuple[ActorCriticAgent, object]:
    env = make("inventory", n_items=2, seed=0, horizon=50)
    config = _prior_config(
        total_steps=1_500,
        learning_starts=500,
        reward_model=True,
        post_decision=True,
        search=NeighbourhoodConfig(steps=8),
        mip_rel_gap=1e-9,
    )
    return ActorCriticAgent.train(env, config, seed=0, progress=False), env


def test_post_decision_q_is_exact_reward_plus_a_function_of_the_post_order_levels(post_agent):
    """Q(s, a) = r(s, a) + W(max(a, inventory)): W ignores the state; levels below stock are no order."""
    agent, env = post_agent
    instance = env.unwrapped.instance
    gamma, w = agent.config.gamma, agent.potential.numpy()

    def continuation(obs, levels):
        a = torch.tensor([levels])
        exact = instance.expected_reward(obs[None], a.numpy(), w, gamma)[0] * agent.reward_scale
        return float(agent.q(agent.normalise(obs), a).detach()[0]) - exact

    y = [int(v) for v in agent.prior.upper]
    assert continuation(np.array([3.0, -5.0]), y) == pytest.approx(continuation(np.array([20.0, 1.0]), y), abs=1e-5)
    high = np.array([float(y[0] + 2), float(y[1] + 1)])  # stock above the trust region: nothing can be ordered
    lo = [int(v) for v in agent.prior.lower]
    assert continuation(high, lo) == pytest.approx(continuation(high, y), abs=1e-5)
    with torch.no_grad():
        q_lo = float(agent.q(agent.normalise(high), torch.tensor([lo]))[0])
        q_stock = float(agent.q(agent.normalise(high), torch.tensor([[y[0] + 2, y[1] + 1]]))[0])
    assert q_lo == pytest.approx(q_stock, abs=1e-5)


def test_post_decision_selectors_stay_in_the_state_box_and_the_milp_is_the_argmax(post_agent):
    agent, _ = post_agent
    lower, upper = agent.prior.lower.numpy(), agent.prior.upper.numpy()
    rng = np.random.default_rng(5)
    for obs in [np.array([30.0, 14.0]), np.array([-4.0, 40.0])] + [
        rng.integers(-10, 50, 2).astype(float) for _ in range(6)
    ]:
        lo, hi = np.maximum(lower, obs).astype(int), np.maximum(upper, obs).astype(int)
        v = {}
        for selector in ("minmax", "neighbourhood", "mip", "hybrid"):
            action, info = agent.act(obs, selector)
            assert np.all((action >= lo) & (action <= hi)), (selector, obs, action)
            assert info["value"] == pytest.approx(agent.q_value(obs, action), rel=1e-5)
            v[selector] = info["value"]
        grid = np.array(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)])).reshape(2, -1).T
        assert v["mip"] == pytest.approx(max(agent.q_value(obs, a) for a in grid), rel=1e-6)
        assert v["neighbourhood"] >= v["minmax"] - 1e-6 * abs(v["minmax"])
        assert v["hybrid"] == pytest.approx(v["mip"], rel=1e-6)


def test_post_decision_checkpoint_round_trips(post_agent, tmp_path):
    agent, _ = post_agent
    again = ActorCriticAgent.load(agent.save(tmp_path / "post"))
    assert again.config.post_decision
    _assert_same_decisions(agent, again, [np.array([3.0, 40.0]), np.array([25.0, 25.0])])


def test_post_decision_needs_the_reward_model():
    env = make("inventory", n_items=2, seed=0, horizon=10)
    with pytest.raises(InvalidInputError) as err:
        ActorCriticAgent.train(env, _prior_config(total_steps=8, post_decision=True), seed=0, progress=False)
    assert err.value.field == "post_decision"


def test_exact_milp_on_another_backend_finds_the_same_action(tiny_agent):
    """``mip_backend`` reaches the critic's MILP: SCIP's argmax has HiGHS's value."""
    from dataclasses import replace

    obs = np.array([20.0, 5.0, -2.0])
    highs_value = tiny_agent.act(obs, selector="mip")[1]["value"]
    tiny_agent.config = replace(tiny_agent.config, mip_backend="scip")
    tiny_agent._invalidate()
    try:
        _, info = tiny_agent.act(obs, selector="mip")
        assert info["value"] == pytest.approx(highs_value, rel=1e-6, abs=1e-6)
        assert tiny_agent.box_milp().solver.name != "highs"
    finally:
        tiny_agent.config = replace(tiny_agent.config, mip_backend="highs")
        tiny_agent._invalidate()


def test_milp_decisions_report_bound_and_gap_in_the_decisions_units(tiny_agent):
    """The MILP omits v(s) and the shaping potential: its bound is shifted into decision units, and so must its gap
    be; "optimal" only where that gap is within ``mip_rel_gap`` (a time-limited solve says so)."""
    from solvers.solution import relative_gap

    rng = np.random.default_rng(3)
    wide = ActorCriticAgent.train(
        make("inventory", n_items=12, seed=0, horizon=20),
        ActorCriticConfig(total_steps=16, num_envs=2, learning_starts=8, batch_size=8, action_hidden=64),
        seed=0,
        progress=False,
    )
    for agent, limit in ((tiny_agent, None), (wide, 0.05)):
        for _ in range(3):
            obs = rng.integers(-10, 60, agent.n_actions).astype(float)
            for selector in ("mip", "hybrid"):
                d = agent.decide(obs, selector, time_limit=limit)
                assert d.bound >= d.value and d.gap == pytest.approx(relative_gap(d.value, d.bound))
                assert d.status != "optimal" or d.gap <= agent.config.mip_rel_gap + 1e-6


def test_one_decision_takes_one_state(tiny_agent):
    obs = np.array([25.0, 3.0, -4.0])
    with pytest.raises(InvalidInputError) as err:
        tiny_agent.decide(np.stack([obs, obs + 1]), "minmax")
    assert err.value.field == "state" and "decide_batch" in err.value.reason
    assert len(tiny_agent.decide_batch(np.stack([obs, obs + 1]), "minmax")) == 2
    for bad in ([1, 2], [-1, 0, 0], [0, 0, 67]):
        with pytest.raises(InvalidInputError) as err:
            tiny_agent.q_value(obs, np.array(bad))
        assert err.value.field == "action"


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_envs", 0),
        ("policy_frequency", 0),
        ("buffer_size", 0),
        ("reward_scale", 0.0),
        ("train_selector", "neighborhood"),
        ("train_selector", "mip"),
        ("mip_backend", "cpsat"),
        ("prior", "base-stock"),
        ("gamma", 1.5),
    ],
)
def test_a_bad_config_value_is_refused_naming_its_field(field, value):
    with pytest.raises(InvalidInputError) as err:
        ActorCriticConfig(**{field: value})
    assert err.value.field == field


def test_a_state_outside_the_reward_models_range_is_refused_naming_the_state():
    env = make("inventory", n_items=2, seed=0, horizon=10)
    agent = ActorCriticAgent.train(
        env,
        ActorCriticConfig(total_steps=8, num_envs=2, learning_starts=4, batch_size=4, reward_model=True),
        seed=0,
        progress=False,
    )
    top = env.unwrapped.instance.max_level
    for selector in ("mip", "neighbourhood"):
        with pytest.raises(InvalidInputError) as err:
            agent.decide(np.array([top + 5.0, 0.0]), selector)
        assert err.value.field == "state"
