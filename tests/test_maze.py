"""Maze with n binary actuators: instance data, dynamics (walls, teleports, goal), determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import InvalidInputError, list_scenarios, make
from scenarios.boxes.maze import MazeInstance


def test_generator_through_registry_and_spaces():
    assert "maze" in list_scenarios()
    env = make("maze", n_actuators=12, seed=3)
    assert env.action_space.n == 12 and env.observation_space.shape == (2,)
    assert env.instance == MazeInstance.generate(n_actuators=12, seed=3)
    assert env.action_model().n_actions == 12
    assert make("maze", n_actuators=8, teleport=True).instance.teleports


def test_json_round_trip_and_field_errors():
    inst = MazeInstance.generate(n_actuators=6, seed=1, teleport=True)
    assert make("maze", instance=inst.model_dump_json()).instance == inst
    with pytest.raises(InvalidInputError) as err:
        make("maze", instance=inst.model_dump() | {"walls": [[0.5, 0.5, 0.4, 0.6]]})
    assert "walls" in err.value.field
    with pytest.raises(InvalidInputError) as err:
        make("maze", instance=inst.model_dump() | {"start": [1.5, 0.2]})
    assert "start" in err.value.field
    with pytest.raises(InvalidInputError) as err:
        make("maze", n_actuators=1)
    assert err.value.field == "n_actuators"


def test_actuator_directions_and_step_length():
    inst = MazeInstance.generate(n_actuators=4)
    east, north = np.eye(4, dtype=int)[0], np.eye(4, dtype=int)[1]
    assert np.allclose(inst.displacement(east), [inst.step_size, 0.0])
    assert np.allclose(inst.displacement(north), [0.0, inst.step_size])
    assert np.allclose(inst.displacement(np.ones(4, int)), 0.0)  # opposite pushes cancel
    both = inst.displacement(east + north)
    assert np.linalg.norm(both) == pytest.approx(inst.step_size)  # capped at step_size


def test_walls_block_and_teleports_jump():
    inst = MazeInstance(
        n_actuators=4,
        start=[0.1, 0.1],
        goal=[0.9, 0.9],
        walls=[[0.0, 0.3, 1.0, 0.34]],
        teleports=[{"source": [0.4, 0.0, 0.6, 0.2], "target": [0.8, 0.8]}],
        noise=0.0,
        step_size=0.1,
    )
    stopped = inst.move(np.array([0.5, 0.25]), np.array([0.0, 0.1]))
    assert stopped[1] < 0.3  # cannot enter the wall
    assert inst.move(np.array([0.35, 0.1]), np.array([0.1, 0.0])).tolist() == [0.8, 0.8]


def test_goal_terminates_with_reward():
    inst = MazeInstance(n_actuators=4, start=[0.5, 0.5], goal=[0.58, 0.5], goal_radius=0.05, noise=0.0)
    env = inst.make_env()
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step([1, 0, 0, 0])
    assert terminated and not truncated and info["reached"]
    assert reward == pytest.approx(inst.step_reward + inst.goal_reward + inst.progress_reward * 0.08)


def test_malformed_actions_name_the_field():
    env = make("maze", n_actuators=5, seed=0)
    env.reset()
    for bad in ([1, 0, 1], [0, 2, 0, 0, 0], [[1, 0, 0, 0, 0]], ["a", "b", "c", "d", "e"]):
        with pytest.raises(InvalidInputError) as err:
            env.step(bad)
        assert err.value.field == "action"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), actions=st.lists(st.integers(0, 2**6 - 1), min_size=5, max_size=5))
def test_env_is_deterministic_given_seed(seed, actions):
    def run() -> list:
        env = make("maze", n_actuators=6, seed=0, teleport=True)
        env.reset(seed=seed)
        out = []
        for code in actions:
            a = (code >> np.arange(6)) & 1
            obs, r, term, _, _ = env.step(a)
            out.append((obs.tolist(), r, term))
            if term:
                break
        return out

    assert run() == run()
