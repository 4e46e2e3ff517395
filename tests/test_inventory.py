"""Joint inventory replenishment: instance data, dynamics, environment, errors and OR yardsticks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.baselines.boxes import (
    BaseStockPolicy,
    JointSSPolicy,
    evaluate,
    newsvendor_levels,
    simulate_inventory,
    tune_base_stock,
)
from scenarios import InvalidInputError, list_scenarios, make
from scenarios.boxes.inventory import InventoryInstance


def test_reference_instance_through_registry():
    assert "inventory" in list_scenarios()
    env = make("inventory", n_items=5, seed=0)
    inst = env.instance
    assert inst.demand_rates == [20.0, 10.0, 20.0, 10.0, 20.0]
    assert inst.initial_inventory == [25] * 5 and inst.max_level == 66 and inst.horizon == 100
    assert (inst.order_cost, inst.fixed_cost, inst.holding_cost, inst.backorder_cost) == (10, 75, 1, 19)
    assert list(env.action_space.nvec) == [67] * 5
    assert InventoryInstance.generate(n_items=40).n_actions_log10 == pytest.approx(73.04, abs=0.01)


def test_json_round_trip_and_field_errors():
    inst = InventoryInstance.generate(n_items=4, seed=2)
    assert make("inventory", instance=inst.model_dump_json()).instance == inst
    assert make("inventory", instance=json.loads(inst.model_dump_json())).instance == inst
    bad = inst.model_dump() | {"initial_inventory": [1, 2]}
    with pytest.raises(InvalidInputError) as err:
        make("inventory", instance=bad)
    assert "initial_inventory" in err.value.field
    with pytest.raises(InvalidInputError) as err:
        make("inventory", instance=inst.model_dump() | {"max_level": 0})
    assert err.value.field == "instance.max_level"
    with pytest.raises(InvalidInputError) as err:
        make("inventory", n_items=0)
    assert err.value.field == "n_items"


def test_transition_matches_hand_computation():
    inst = InventoryInstance(demand_rates=[5.0, 5.0, 5.0], initial_inventory=[0, 0, 0])
    inv, levels, demand = np.array([3, 10, -2]), np.array([8, 4, 0]), np.array([6, 2, 1])
    after, cost = inst.transition(inv, levels, demand)
    # orders 5, 0, 2; inventory 8-6=2, 10-2=8, 0-1=-1
    assert after.tolist() == [2, 8, -1]
    assert cost == 10 * 7 + 75 + 1 * (2 + 8) + 19 * 1
    _, no_order = inst.transition(np.array([9, 9, 9]), np.zeros(3, int), np.zeros(3, int))
    assert no_order == 27  # holding only, no fixed cost


def test_step_rejects_malformed_actions():
    env = make("inventory", n_items=3, seed=0)
    env.reset()
    for bad, msg in (([1, 2], "shape"), ([0, 67, 0], "outside"), ([0.5, 1, 1], "integers"), ([np.nan, 1, 1], "NaN")):
        with pytest.raises(InvalidInputError) as err:
            env.step(bad)
        assert err.value.field == "action" and msg in err.value.reason


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.lists(st.integers(0, 66), min_size=3, max_size=3))
def test_env_is_deterministic_given_seed(seed, levels):
    def run() -> list[float]:
        env = make("inventory", n_items=3, seed=0)
        env.reset(seed=seed)
        return [env.step(levels)[1] for _ in range(10)]

    assert run() == run()


def test_reward_is_negative_cost_and_episode_truncates():
    env = make("inventory", n_items=2, seed=0, horizon=7)
    obs, _ = env.reset(seed=1)
    assert obs.tolist() == [25.0, 25.0]
    for t in range(7):
        obs, reward, terminated, truncated, info = env.step([30, 12])
        assert reward == -info["cost"] and not terminated and truncated == (t == 6)
    with pytest.raises(RuntimeError):
        env.step([0, 0])


def test_vectorised_simulator_agrees_with_env():
    inst = InventoryInstance.generate(n_items=3, horizon=20)
    policy = JointSSPolicy(np.array([15, 8, 15]), np.array([40, 20, 40]))
    env = inst.make_env()
    obs, _ = env.reset(seed=4)
    total, demand = 0.0, []
    for _ in range(inst.horizon):
        obs, r, _, _, info = env.step(policy(obs))
        total += r
        demand.append(info["demand"])
    sim = simulate_inventory(inst, policy, episodes=1, demand=np.asarray(demand)[:, None, :])
    assert sim[0] == pytest.approx(total)


def test_tuned_base_stock_is_near_newsvendor_and_beats_bad_levels():
    inst = InventoryInstance.generate(n_items=2, horizon=50)
    assert newsvendor_levels(inst).tolist() == [28, 15]  # Poisson quantiles at 19 / 20
    tuned = tune_base_stock(inst, episodes=16)
    assert np.all(np.abs(tuned.levels - [28, 15]) <= 4)
    env = inst.make_env()
    assert evaluate(env, tuned, 3).mean > evaluate(env, BaseStockPolicy(np.array([50, 40])), 3).mean


def test_shaping_potential_telescopes():
    """``sum_t gamma^t (r_t + gamma phi(s_t+1) - phi(s_t)) = sum_t gamma^t r_t + gamma^T phi(s_T) - phi(s_0)``."""
    env = make("inventory", n_items=3, seed=0, horizon=12)
    w = env.unwrapped.potential_weights()
    assert w.tolist() == [10.0, 10.0, 10.0]
    gamma, obs = 0.9, env.reset(seed=4)[0]
    start, plain, shaped = obs, 0.0, 0.0
    for t in range(12):
        nxt, r, *_ = env.step(np.array([30, 5, 18]))
        plain += gamma**t * r
        shaped += gamma**t * (r + gamma * w @ nxt - w @ obs)
        obs = nxt
    assert shaped == pytest.approx(plain + gamma**12 * w @ obs - w @ start)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000))
def test_reward_model_is_the_expected_step_reward(seed):
    """The exact expected (shaped) step reward agrees with a 40,000-draw simulation of the same step."""
    instance = InventoryInstance.generate(3, seed=0)
    rng = np.random.default_rng(seed)
    inventory = rng.integers(-15, 50, 3)
    levels = rng.integers(0, 67, 3)
    demand = instance.sample_demand(rng, (40_000,))
    after, cost = instance.transition(
        np.broadcast_to(inventory, (40_000, 3)), np.broadcast_to(levels, (40_000, 3)), demand
    )
    w = np.full(3, 10.0)
    shaped = -cost + 0.9 * after @ w - inventory @ w
    exact = instance.expected_reward(inventory[None], levels[None])[0]
    exact_shaped = instance.expected_reward(inventory[None], levels[None], w, 0.9)[0]
    assert exact == pytest.approx(-cost.mean(), abs=4 * cost.std() / 200 + 1e-6)
    assert exact_shaped == pytest.approx(shaped.mean(), abs=4 * shaped.std() / 200 + 1e-6)
    model = instance.reward_model(inventory[None], w, 0.9)
    assert float(model.value(torch.as_tensor(levels[None]))[0]) == pytest.approx(exact_shaped, rel=1e-5, abs=1e-3)
    ordering = bool(np.any(levels > inventory))
    assert bool(model.active(torch.as_tensor(levels[None])).any()) == ordering  # the fixed cost's trigger
