"""Capacity scenario: instance data, environment, ActionModel and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import InfeasibleActionError, InvalidInputError, list_scenarios, make
from scenarios.cormab.capacity import CapacityInstance


def test_registry_lists_capacity():
    assert "capacity" in list_scenarios()
    with pytest.raises(InvalidInputError) as err:
        make("no-such-scenario")
    assert err.value.field == "scenario"


def test_generator_reproduces_reference_distributions():
    inst = CapacityInstance.generate(n_arms=40, budget=10, seed=3)
    p0, p1, r = inst.arms.birth_death()
    assert np.all((p0 >= 0) & (p0 <= 0.2)) and np.all((p1 >= 0.7) & (p1 <= 0.9))
    assert np.all(np.isin(r[:10, 3], [4, 5, 6])) and np.all(np.isin(r[10:, 3], [1, 2, 3]))
    assert np.allclose(r[:10, :3], [0.2, 0.15, 0.1]) and np.allclose(r[10:, :3], [0.1, 0.15, 0.2])
    assert len(inst.capacities) == 10 and set(inst.capacities) <= set(range(2, 8))
    assert set(inst.costs) <= set(range(2, 7))
    assert CapacityInstance.generate(n_arms=40, budget=10, seed=3) == inst


def test_instance_json_round_trip():
    inst = CapacityInstance.generate(n_arms=12, budget=4, seed=5)
    text = inst.model_dump_json()
    again = make("capacity", instance=text).instance
    assert again == inst
    assert make("capacity", instance=json.loads(text)).instance == inst


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"capacities": [-1, 3]}, "capacities"),
        ({"costs": [1, 2]}, "costs"),
        ({"costs": [0] * 6}, "costs"),
    ],
)
def test_bad_instance_names_the_field(change, field):
    data = CapacityInstance.generate(n_arms=6, budget=2, seed=0).model_dump()
    data.update(change)
    with pytest.raises(InvalidInputError) as err:
        make("capacity", instance=data)
    assert field in err.value.field or field in str(err.value)


def test_bad_arm_probabilities_and_generator_params():
    data = CapacityInstance.generate(n_arms=6, budget=2, seed=0).model_dump()
    p0, p1, r = CapacityInstance.generate(n_arms=6, budget=2, seed=0).arms.birth_death()
    data["arms"] = {"p_passive": p0.tolist(), "p_active": p1.tolist(), "rewards": r.tolist()}  # the birth-death form
    data["arms"]["p_active"][0] = 1.5
    with pytest.raises(InvalidInputError, match="p_active"):
        make("capacity", instance=data)
    data["arms"]["p_active"][0] = float("nan")
    with pytest.raises(InvalidInputError, match="p_active"):
        make("capacity", instance=data)
    with pytest.raises(InvalidInputError) as err:
        make("capacity", n_arms=6, budget=-1)
    assert err.value.field == "budget"


def test_env_is_a_real_gymnasium_env():
    import gymnasium as gym

    env = make("capacity", n_arms=8, budget=3, seed=0)
    assert isinstance(env, gym.Env)
    assert isinstance(env.action_space, gym.spaces.MultiBinary)
    obs, _ = env.reset(seed=4)
    assert env.observation_space.contains(obs)
    assert np.array_equal(env.reset(seed=4)[0], obs)
    action = env.action_model().sample(np.random.default_rng(0))
    assert env.action_space.contains(action.astype(np.int8))
    obs, *_ = env.step(action)
    assert env.observation_space.contains(obs)


def test_env_step_reports_expected_reward_and_time_to_go():
    env = make("capacity", n_arms=8, budget=3, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs[-1] == env.instance.horizon
    action = env.action_model().sample(np.random.default_rng(0))
    expected = env.instance.expected_reward(obs[:-1], action)
    obs2, reward, done, truncated, info = env.step(action)
    assert info["expected_reward"] == pytest.approx(expected)
    assert info["time_to_go"] == env.instance.horizon - 1 == obs2[-1]
    assert reward == pytest.approx(env.instance.realised_reward(obs2[:-1]))
    assert not done and not truncated
    for _ in range(env.instance.horizon - 1):
        obs2, _, done, _, _ = env.step(np.zeros(8, dtype=int))
    assert done
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(8, dtype=int))


def test_same_seed_same_trajectory_whatever_the_action():
    """Common random numbers: one uniform per arm per step regardless of the action."""
    env = make("capacity", n_arms=8, budget=3, seed=0)
    a = env.action_model().sample(np.random.default_rng(1))
    runs = []
    for action in (a, np.zeros(8, dtype=int)):
        env.reset(seed=11)
        draws = [env.np_random.bit_generator.state["state"]["state"]]
        env.step(action)
        draws.append(env.np_random.bit_generator.state["state"]["state"])
        runs.append(draws)
    assert runs[0] == runs[1]


def test_infeasible_action_is_rejected_naming_the_constraint():
    env = make("capacity", n_arms=8, budget=3, seed=0)
    env.reset(seed=0)
    with pytest.raises(InfeasibleActionError) as err:
        env.step(np.ones(8, dtype=int))
    assert any("worker_capacity" in v or "pull_needs_worker" in v for v in err.value.violations)


@pytest.mark.parametrize(
    ("action", "reason"),
    [([0, 1], "shape"), ([0.5] * 8, "integers"), ([2] + [0] * 7, "outside"), ([float("nan")] * 8, "NaN")],
)
def test_malformed_action_names_the_field(action, reason):
    env = make("capacity", n_arms=8, budget=3, seed=0)
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match=reason) as err:
        env.step(action)
    assert err.value.field == "action"


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.05, 0.6), bits=st.integers(0, 2**12 - 1))
def test_oracle_agrees_with_the_rows(seed, density, bits):
    inst = CapacityInstance.generate(n_arms=12, budget=4, seed=seed % 50)
    model = inst.action_model()
    rng = np.random.default_rng(bits)
    a = (rng.uniform(size=12) < density).astype(np.int64)
    by_rows = model._solve_fixed(a, lower_only=False) is not None
    assert model.oracle.is_feasible(a) == by_rows
    cert = model.certificate(a)
    if by_rows:
        assert model.milp(np.zeros(12)).is_feasible(np.concatenate([a, cert]))
        assert model.violations(a) == []
    else:
        assert cert is None and model.violations(a)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_samples_are_feasible_and_enumeration_is_downward_closed(seed):
    inst = CapacityInstance.generate(n_arms=9, budget=3, seed=seed % 20)
    model = inst.action_model()
    rng = np.random.default_rng(seed)
    for _ in range(10):
        assert model.is_feasible(model.sample(rng))
    every = model.enumerate()
    brute = np.array([[(k >> j) & 1 for j in range(9)] for k in range(2**9)])
    feasible = brute[[model.oracle.is_feasible(a) for a in brute]]
    assert {tuple(r) for r in every} == {tuple(r) for r in feasible}
