"""Vectorised planner batches (engine/planners/batch.py) decide exactly what single decisions decide."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Engine
from scenarios import make
from scenarios.errors import InvalidInputError


def _states(env, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts, H = env.instance.arms.state_counts, env.instance.horizon
    return np.stack([np.concatenate([rng.integers(0, counts), [rng.integers(1, H + 1)]]) for _ in range(n)])


@pytest.mark.parametrize(
    ("scenario", "planner"),
    [
        ("budgeted", "whittle"),
        ("capacity", "whittle"),
        ("capacity", "lagrangian"),
        ("scheduling", "whittle"),
        ("scheduling", "lagrangian"),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_equals_single_decisions(scenario, planner, seed):
    env = make(scenario, n_arms=12, budget=4, seed=seed)
    policy = Engine.plan(env, planner)
    states = _states(env, 60, seed)
    batch = policy.decide_batch(states)
    vectorised = ["vectorised batch" in d.reason for d in batch]
    assert sum(vectorised) >= 0.9 * len(batch)  # the others: near ties, left to the single call
    for state, d, fast in zip(states, batch, vectorised, strict=True):
        single = policy.decide(state)
        if scenario == "scheduling":
            assert d.action.tolist() == single.action.tolist()
        if fast:
            assert d.status == "optimal" and d.gap == 0.0
        assert d.value == pytest.approx(single.value, abs=1e-9)
        assert env.action_model().is_feasible(d.action)
        assert d.value == pytest.approx(policy.planner.score(state[:-1], int(state[-1]), d.action[None])[0], abs=1e-9)
        assert d.assignment == env.action_model().assignment(d.action)
        assert d.policy_version == policy.policy_version


def test_lists_and_arm_states_alone_are_accepted_and_bad_rows_named():
    env = make("budgeted", n_arms=5, budget=2, seed=0)
    policy = Engine.plan(env, "whittle")
    as_list = policy.decide_batch([[0, 1, 2, 0, 1, 20], [2, 2, 2, 2, 2, 3]])
    alone = policy.decide_batch(np.array([[0, 1, 2, 0, 1], [2, 2, 2, 2, 2]]))
    assert as_list[0].action.tolist() == alone[0].action.tolist()  # time to go defaults to H = 20
    with pytest.raises(InvalidInputError) as err:
        policy.decide_batch([[0, 1, 2, 0, 1, 20], [0, 1, 9, 0, 1, 20]])
    assert err.value.field == "state" and "9" in str(err.value)
    with pytest.raises(InvalidInputError, match="time_limit"):
        policy.decide_batch([[0, 1, 2, 0, 1, 20]] * 2, time_limit=-1)


@pytest.mark.parametrize(("scenario", "planner"), [("routing", "whittle"), ("scheduling", "lp_update")])
def test_structures_without_a_batch_oracle_and_per_state_lp_planners_decide_state_by_state(scenario, planner):
    env = make(scenario, n_arms=8, budget=3, seed=0)
    policy = Engine.plan(env, planner)
    states = _states(env, 4, 0)
    batch = policy.decide_batch(states)
    assert not any("vectorised" in (d.reason or "") for d in batch)
    assert [d.action.tolist() for d in batch] == [policy.decide(s).action.tolist() for s in states]
