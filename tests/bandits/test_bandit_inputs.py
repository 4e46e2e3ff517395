"""Bandit inputs and budgets (review of session 22): each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandits.combinatorial.cucb import CUCB
from bandits.combinatorial.off_policy import marginal_ips
from bandits.combinatorial.oracles import TopKOracle
from bandits.combinatorial.thompson import CombinatorialThompson
from bandits.restless.allocation import allocate
from bandits.restless.learning import LearningWhittlePolicy
from scenarios.errors import InvalidInputError


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(2, 4),
    st.floats(0.0, 1.0),
    st.floats(0.0, 6.0),
    st.integers(0, 2**16),
)
def test_allocations_spend_the_passive_cost_too(n_arms, n_levels, passive, extra, seed):
    """Every arm pays its level-0 cost whatever it does; upgrades get only what is left of the budget (the
    simulator and the exact value count the full cost, so this was over budget whenever passive costs were > 0)."""
    rng = np.random.default_rng(seed)
    steps = rng.uniform(0.1, 2.0, (n_arms, n_levels - 1))
    costs = np.concatenate([np.full((n_arms, 1), passive), passive + np.cumsum(steps, axis=1)], axis=1)
    budget = n_arms * passive + extra
    scores = rng.normal(size=(n_arms, n_levels - 1))
    for fill in (False, True):
        action = allocate(scores, costs, budget, fill=fill)
        assert costs[np.arange(n_arms), action].sum() <= budget + 1e-9
    with pytest.raises(InvalidInputError) as err:
        allocate(scores, costs + 1.0, float(n_arms) * passive)  # below the passive cost of every arm
    assert err.value.field == "budget"


def test_cucb_refuses_rewards_outside_its_range():
    bandit = CUCB(TopKOracle(3, 1))
    with pytest.raises(InvalidInputError) as err:
        bandit.update([1, 0, 0], [100.0, np.nan, np.nan])
    assert err.value.field == "rewards"
    for bad in ((0.0, np.inf), (0.0, 1.0, 2.0), (1.0, 0.0)):
        with pytest.raises(InvalidInputError) as err:
            CUCB(TopKOracle(3, 1), reward_range=bad)
        assert err.value.field == "reward_range"


def test_learning_whittle_refuses_a_time_to_go_outside_the_horizon_and_bad_costs():
    rewards = np.tile([0.0, 0.5, 1.0], (3, 1))
    policy = LearningWhittlePolicy(rewards, 1, horizon=3)
    for ttg in (0, 99, 1.5):
        with pytest.raises(InvalidInputError) as err:
            policy.select([0, 1, 0], time_to_go=ttg)
        assert err.value.field == "time_to_go"
    assert policy.select([0, 1, 0], time_to_go=2).shape == (3,)
    with pytest.raises(InvalidInputError) as err:
        LearningWhittlePolicy(rewards, 1, costs=[0, 1, 2])
    assert err.value.field == "costs"


def test_marginal_ips_refuses_missing_rewards_of_chosen_arms():
    for bad, field in (([[np.nan, 1.0]], "arm_rewards"), ([["a", 1.0]], "arm_rewards")):
        with pytest.raises(InvalidInputError) as err:
            marginal_ips(bad, [[1, 0]], [[0.5, 0.5]], [[0.5, 0.5]])
        assert err.value.field == field
    assert marginal_ips([[2.0, np.nan]], [[1, 0]], [[0.5, 0.5]], [[0.5, 0.5]]).value == pytest.approx(2.0)


def test_gaussian_thompson_refuses_a_non_finite_prior_mean():
    with pytest.raises(InvalidInputError) as err:
        CombinatorialThompson(TopKOracle(3, 1), "gaussian", prior=(np.nan, 1.0))
    assert err.value.field == "prior"
