"""Issue 17, item 4: the bridge from estimated dynamics to arms (scenarios/estimation/to_arms.py), so planners
and training run on the posterior mean or on posterior draws."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Engine
from scenarios import make
from scenarios.arms import Arms
from scenarios.errors import InvalidInputError
from scenarios.estimation import (
    Pooling,
    PosteriorArms,
    estimate_dynamics,
    mean_arms,
    sample_arms,
    simulate_log,
    synthetic_programme,
)

PROGRAMME = synthetic_programme(n_arms=12, n_states=3, n_actions=2, n_clusters=3, seed=2)
REWARDS = [0.0, 0.5, 1.0]


def _posterior(n_records: int = 2000):
    log = simulate_log(
        PROGRAMME.transitions,
        n_records,
        np.random.default_rng(0),
        initial=PROGRAMME.initial,
        arm_weights=PROGRAMME.arm_weights,
    )
    return estimate_dynamics(log, pooling=Pooling(clusters=PROGRAMME.clusters))


def test_mean_arms_equal_the_posterior_mean() -> None:
    posterior = _posterior()
    bridge = PosteriorArms(posterior, arrival_rewards=REWARDS, initial=PROGRAMME.initial, horizon=7)
    arms = bridge.mean_arms()
    P, R, C, init = arms.arrays()
    np.testing.assert_allclose(P, posterior.mean(), rtol=0, atol=1e-15)
    assert arms.on_arrival and arms.horizon == 7
    np.testing.assert_allclose(arms.arrival_rewards, np.tile(REWARDS, (12, 1)))
    np.testing.assert_allclose(init, np.tile(PROGRAMME.initial, (12, 1)))
    np.testing.assert_allclose(C, np.tile([0.0, 1.0], (12, 1)))  # default costs 0, 1
    # expected reward r(s, a) = P(s, a) . r from the mean
    np.testing.assert_allclose(R, np.swapaxes(posterior.mean() @ np.asarray(REWARDS), 1, 2))
    assert mean_arms(posterior, arrival_rewards=REWARDS, initial=PROGRAMME.initial, horizon=7) == arms


def test_sampled_arms_are_valid_draws() -> None:
    posterior = _posterior(300)
    rewards = np.random.default_rng(1).uniform(0, 1, (12, 3, 2))
    bridge = PosteriorArms(posterior, rewards=rewards, costs=[0.0, 2.0])
    draws = [bridge.sample_arms(np.random.default_rng(s)) for s in range(3)]
    for arms in draws:
        assert isinstance(arms, Arms) and not arms.on_arrival
        P = arms.arrays()[0]
        assert P.shape == (12, 2, 3, 3) and (P >= 0).all()
        np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-9)
        np.testing.assert_allclose(arms.arrays()[1], rewards)
        np.testing.assert_allclose(arms.arrays()[2], np.tile([0.0, 2.0], (12, 1)))
        assert Arms.parse(arms.model_dump_json()) == arms
    assert not np.allclose(draws[0].arrays()[0], draws[1].arrays()[0])  # different draws
    same = sample_arms(posterior, np.random.default_rng(0), rewards=rewards, costs=[0.0, 2.0])
    assert same == draws[0]  # the same generator state gives the same draw
    # the draws scatter around the mean: averaged over many, close to it
    many = np.mean([bridge.sample_arms(np.random.default_rng(s)).arrays()[0] for s in range(200)], axis=0)
    assert np.abs(many - posterior.mean()).max() < 0.08


def test_planning_through_the_bridge_equals_planning_on_the_true_arms() -> None:
    truth = Arms(
        transitions=PROGRAMME.transitions.tolist(),
        arrival_rewards=np.tile(REWARDS, (12, 1)).tolist(),
        initial=np.tile(PROGRAMME.initial, (12, 1)).tolist(),
        horizon=10,
    )
    bridged = PosteriorArms(_posterior(), arrival_rewards=REWARDS, initial=PROGRAMME.initial, horizon=10).arms(
        PROGRAMME.transitions
    )
    assert bridged == truth
    states = np.random.default_rng(3).integers(0, 3, (6, 12))
    for planner in ("whittle", "lagrangian"):
        direct = Engine.plan(make("budgeted", instance={"arms": truth.model_dump(), "budget": 3}), planner)
        via = Engine.plan(make("budgeted", instance={"arms": bridged.model_dump(), "budget": 3}), planner)
        for row in states:
            obs = np.r_[row, 10]
            np.testing.assert_array_equal(direct.decide(obs).action, via.decide(obs).action)
        assert direct.policy_version == via.policy_version


def test_posterior_arms_update_and_bad_input() -> None:
    posterior = _posterior(500)
    bridge = PosteriorArms(posterior, arrival_rewards=REWARDS)
    more = simulate_log(PROGRAMME.transitions, 500, np.random.default_rng(9))
    updated = bridge.updated(more)
    np.testing.assert_allclose(updated.posterior.counts, posterior.counts + more.counts())
    np.testing.assert_allclose(updated.mean_arms().arrays()[0], posterior.update(more).mean())
    with pytest.raises(InvalidInputError) as err:
        PosteriorArms(posterior)
    assert err.value.field == "rewards"
    with pytest.raises(InvalidInputError) as err:
        PosteriorArms(posterior, arrival_rewards=[0.0, 1.0])
    assert err.value.field == "arrival_rewards"
    with pytest.raises(InvalidInputError) as err:
        PosteriorArms(posterior, arrival_rewards=REWARDS, initial=[[1.0, 0.0, 0.0]] * 5)
    assert err.value.field == "initial"
    with pytest.raises(InvalidInputError) as err:
        bridge.arms(np.ones((12, 2, 3, 2)))
    assert err.value.field == "transitions"
    with pytest.raises(InvalidInputError) as err:  # arms validation names the bad row
        bridge.arms(np.ones((12, 2, 3, 3)))
    assert "transitions" in err.value.field


def test_known_availability_reaches_the_estimated_arms_and_the_planner() -> None:
    """Hard limits the programme knows (no pull in state 2 for the first four arms) ride on every bridged arm set:
    the mean, a draw and the updated posterior; a planner on them never pulls a closed arm; bad tables are refused,
    naming the field."""
    closed = np.ones((12, 3, 2), dtype=bool)
    closed[:4, 2, 1] = False
    bridge = PosteriorArms(_posterior(500), arrival_rewards=REWARDS, initial=PROGRAMME.initial, available=closed)
    for arms in (
        bridge.mean_arms(),
        bridge.sample_arms(np.random.default_rng(0)),
        bridge.updated(np.zeros((12, 2, 3, 3))).mean_arms(),
    ):
        assert arms.restricted and np.array_equal(np.asarray(arms.available, dtype=bool), closed)
    env = make("budgeted", instance={"arms": bridge.mean_arms().model_dump(), "budget": 3})
    engine = Engine.plan(env, "whittle")
    states = np.array([2] * 12)
    action = engine.decide([*states.tolist(), 5]).action
    assert not action[:4].any() and action.sum() == 3
    shared = PosteriorArms(
        _posterior(500), arrival_rewards=REWARDS, available=[[True, True], [True, True], [True, False]]
    )
    assert np.asarray(shared.mean_arms().available, dtype=bool)[:, 2, 1].tolist() == [False] * 12
    with pytest.raises(InvalidInputError) as err:
        PosteriorArms(_posterior(500), arrival_rewards=REWARDS, available=np.ones((12, 3)))
    assert err.value.field == "available"
    with pytest.raises(InvalidInputError) as err:
        PosteriorArms(_posterior(500), arrival_rewards=REWARDS, available=[[1, 1], [1, 1], [1, 0]])
    assert err.value.field == "available" and "true/false" in err.value.reason
    passive_closed = closed.copy()
    passive_closed[0, 0, 0] = False
    with pytest.raises(InvalidInputError) as err:
        PosteriorArms(_posterior(500), arrival_rewards=REWARDS, available=passive_closed)
    assert err.value.field == "available[0][0][0]" and "passive" in err.value.reason
