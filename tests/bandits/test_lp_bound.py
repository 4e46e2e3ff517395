import numpy as np
import pytest

from bandits.restless import (
    LagrangianPolicy,
    LPBound,
    WhittlePolicy,
    from_cormab,
    joint_optimal_value,
    joint_policy_value,
    simulate,
)
from bandits.restless.planning import finite_values, solve_discounted
from scenarios.cormab.instance import generate_arms


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lp_bound_dominates_exact_optimum_and_policies_on_three_arms(seed):
    arms = from_cormab(generate_arms(3, 1, seed))
    H = 6
    bound = LPBound(arms, budget=1, horizon=H).fit().value
    optimum = joint_optimal_value(arms, budget=1, horizon=H)
    whittle = joint_policy_value(arms, WhittlePolicy(arms, 1, discount=1.0, horizon=H), H)
    lagrange = joint_policy_value(arms, LagrangianPolicy(arms, 1, horizon=H), H)
    assert bound >= optimum - 1e-9
    assert optimum >= whittle - 1e-9 and optimum >= lagrange - 1e-9
    sim = simulate(arms, WhittlePolicy(arms, 1, discount=1.0, horizon=H), 1, H, n_episodes=2000, seed=seed)
    assert abs(sim["mean"] - whittle) < 4 * sim["stderr"]  # simulator agrees with exact evaluation


def test_strong_duality_with_per_period_prices():
    arms = from_cormab(generate_arms(15, 3, 4))
    H = 8
    lp = LPBound(arms, budget=3, horizon=H).fit()
    P, R, C, init = arms.arrays()
    Q = finite_values(P, R, C, np.broadcast_to(lp.charges(), (15, H)), H)
    dual = 3 * lp.multipliers.sum() + (init * Q[:, -1].max(-1)).sum()
    assert dual == pytest.approx(lp.value, rel=1e-7)
    assert np.allclose((lp.occupancy[..., 1]).sum(axis=(0, 2)) <= 3 + 1e-7, True)


def test_discounted_bound_duality_and_dominance():
    arms = from_cormab(generate_arms(10, 2, 1))
    lp = LPBound(arms, budget=2, horizon=None, discount=0.9).fit()
    P, R, C, init = arms.arrays()
    lam = np.full(10, lp.multipliers[0])
    _, Qa, Qb = solve_discounted(P, R, C, lam, 0.9)
    dual = lp.multipliers[0] * 2 / 0.1 + (init * (Qa - lam[:, None, None] * Qb).max(-1)).sum()
    assert dual == pytest.approx(lp.value, rel=1e-7)
    sim = simulate(arms, WhittlePolicy(arms, 2, discount=0.9), 2, 150, n_episodes=200, seed=0, discount=0.9)
    assert sim["mean"] <= lp.value + 3 * sim["stderr"]


def test_whittle_close_to_lp_bound_with_many_arms():
    arms = from_cormab(generate_arms(40, 4, 0))
    H = 20
    lp = LPBound(arms, budget=4, horizon=H).fit().value
    sim = simulate(arms, WhittlePolicy(arms, 4, discount=1.0, horizon=H), 4, H, n_episodes=200, seed=0)
    assert sim["mean"] <= lp
    assert sim["mean"] >= 0.9 * lp
