"""The occupancy LP with the joint action law: a certified bound between the DP optimum and the occupancy bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.analysis.action_law_bound import action_law_upper_bound, tightest_upper_bound
from engine.analysis.exact_dp import exact_optimum
from engine.analysis.occupancy_bound import occupancy_upper_bound
from scenarios import make
from scenarios.cormab.overlapping_reach import OverlappingReachInstance

TOL = 1e-6


def _check_between(instance) -> tuple[float, float, float]:
    optimum = exact_optimum(instance).value
    occupancy = occupancy_upper_bound(instance).bound
    law = action_law_upper_bound(instance)
    assert law.converged
    assert law.bound == pytest.approx(law.lp_value, rel=1e-6, abs=1e-6)
    assert optimum <= law.bound + TOL * (1 + abs(optimum))
    assert law.bound <= occupancy + TOL * (1 + abs(occupancy))
    return optimum, law.bound, occupancy


@pytest.mark.parametrize("family", ["capacity", "scheduling", "routing", "coverage", "switching", "patrol"])
def test_bound_lies_between_the_optimum_and_the_occupancy_bound(family: str) -> None:
    _check_between(make(family, n_arms=5, seed=2).instance)


def test_overlapping_reach_bound_is_much_tighter() -> None:
    """J = 6 seed 2: the occupancy LP is 129.5% of the optimum (it keeps only E[x_j]); the action law 102.1%."""
    optimum, law, occupancy = _check_between(OverlappingReachInstance.generate(n_arms=6, budget=4, seed=2))
    assert occupancy > 1.25 * optimum
    assert law < 1.03 * optimum


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_arms=st.integers(2, 4),
    budget=st.integers(1, 3),
    reach=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    horizon=st.integers(1, 6),
)
def test_bound_is_valid_on_random_overlapping_reach(
    n_arms: int, budget: int, reach: int, seed: int, horizon: int
) -> None:
    instance = OverlappingReachInstance.generate(
        n_arms=n_arms, budget=budget, seed=seed, horizon=horizon, arms_per_intervention=min(reach, n_arms)
    )
    _check_between(instance)


@pytest.mark.parametrize("rounds", [1, 2])
def test_stopped_early_the_bound_is_looser_but_still_certified(rounds: int) -> None:
    """Stopped after its first rounds (elastic columns still active), the Lagrangian certificate is finite, above
    the optimum and above the converged value; with no time at all, no LP is solved and the bound is infinite."""
    instance = OverlappingReachInstance.generate(n_arms=6, budget=4, seed=0)
    optimum = exact_optimum(instance).value
    converged = action_law_upper_bound(instance)
    law = action_law_upper_bound(instance, max_rounds=rounds)
    assert not law.converged and law.status == "max_rounds" and law.rounds == rounds
    assert np.isfinite(law.bound)
    assert law.bound >= converged.bound - TOL * converged.bound >= optimum - TOL * optimum
    none = action_law_upper_bound(instance, time_limit=1e-9)
    assert not none.converged and none.status == "time_limit" and none.bound == np.inf


def test_too_many_actions_is_refused_by_name() -> None:
    instance = OverlappingReachInstance.generate(n_arms=6, budget=4, seed=0)  # 70 feasible actions
    with pytest.raises(ValueError, match="max_actions"):
        action_law_upper_bound(instance, max_actions=10)
    with pytest.raises(ValueError, match="max_actions"):
        action_law_upper_bound(instance, max_actions=0)


def test_tightest_bound_uses_the_action_law_when_the_set_is_small_and_falls_back_otherwise() -> None:
    instance = OverlappingReachInstance.generate(n_arms=6, budget=4, seed=2)
    occupancy = occupancy_upper_bound(instance)
    tight = tightest_upper_bound(instance)
    assert tight.method.startswith("action_law")
    assert tight.bound < occupancy.bound
    assert tight.action_marginals.shape == occupancy.action_marginals.shape
    assert np.allclose(tight.action_marginals.sum(axis=1), 4.0, atol=1e-6)  # exactly B interventions a step
    fallback = tightest_upper_bound(instance, max_actions=10)
    assert fallback.bound == pytest.approx(occupancy.bound)
    assert fallback.method == occupancy.method
    assert tightest_upper_bound(instance, time_limit=1e-9).bound >= occupancy.bound - 1e-6  # no time: not tighter
