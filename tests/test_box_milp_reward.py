"""The exact box MILP with a separable reward plus fixed charge, against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.formulations.box_critic_milp import BoxCriticMILP
from solvers.formulations.separable_reward import SeparableReward


def _critic(seed: int, n: int, H: int = 16, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(H, n, generator=g) * scale
    w2 = torch.randn(H, generator=g)
    c = torch.randn(1, H, generator=g)
    return W.double().numpy(), w2.double().numpy(), 0.25, c[0].double().numpy()


def _grid(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return np.array(list(itertools.product(*[range(lo, hi + 1) for lo, hi in zip(lower, upper, strict=True)])))


def _direct(W, w2, b2, amax, c, reward: SeparableReward | None, actions: np.ndarray) -> np.ndarray:
    """Critic and reward by their definitions, in float64."""
    q = np.maximum(c + (actions / amax) @ W.T, 0.0) @ w2 + b2
    if reward is None:
        return q
    tables, thr = reward.tables[0].double().numpy(), reward.thresholds[0].double().numpy()
    separable = np.array([sum(tables[i, v] for i, v in enumerate(a)) for a in actions])
    fired = np.array([any(v > thr[i] for i, v in enumerate(a)) for a in actions])
    r = separable - float(reward.charge[0]) * fired
    # the reference torch implementation (float32) agrees
    ref = reward.expand(len(actions)).value(torch.as_tensor(actions)).double().numpy()
    assert np.allclose(r, ref, rtol=1e-5, atol=1e-4)
    return q + r


def _reward(rng: np.random.Generator, amax: np.ndarray, lower: np.ndarray, upper: np.ndarray, charge: float):
    """Random tables (huge outside the box, so using them would show), thresholds in [-2, amax + 1]."""
    n = amax.size
    L = int(amax.max()) + 1 + int(rng.integers(0, 3))
    tables = rng.normal(size=(n, L)) * rng.choice([0.3, 1.0, 3.0])
    for i in range(n):
        tables[i, : lower[i]] = 1e3
        tables[i, upper[i] + 1 :] = 1e3
    thresholds = rng.uniform(-2.0, amax + 1.0)
    integral = rng.random(n) < 0.4  # exactly on a lattice point: a_i > thr_i is strict
    thresholds[integral] = np.round(thresholds[integral])
    return SeparableReward(tables[None], thresholds[None], torch.tensor([charge]))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    amax=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    H=st.integers(1, 10),
    scale=st.sampled_from([0.3, 1.0, 3.0]),
    charges=st.lists(st.sampled_from([0.0, 0.0, 0.2, 1.0, 2.5, 6.0]), min_size=3, max_size=3),
    data=st.data(),
)
def test_box_milp_with_reward_equals_enumeration(seed, amax, H, scale, charges, data):
    rng = np.random.default_rng(seed)
    n = len(amax)
    box = np.array(amax)
    lower = np.array([data.draw(st.integers(0, m)) for m in amax])
    upper = np.array([data.draw(st.integers(lo, m)) for lo, m in zip(lower, amax, strict=True)])
    W, w2, b2, c = _critic(seed, n, H, scale)
    milp = BoxCriticMILP(W, w2, b2, box, lower=lower, upper=upper)
    grid = _grid(lower, upper)
    for charge in charges:  # several states (thresholds, tables, c) through one persistent solver
        c = rng.normal(size=H) * rng.choice([0.3, 1.0, 3.0])
        reward = _reward(rng, box, lower, upper, charge)
        values = _direct(W, w2, b2, box, c, reward, grid)
        assert np.allclose(milp.q(c, grid, reward), values, rtol=1e-12, atol=1e-12)
        found = milp.solve(c, reward=reward)
        assert found.solution.status == "optimal"
        assert np.all((found.action >= lower) & (found.action <= upper))
        assert found.value == pytest.approx(values.max(), rel=1e-6)
        assert found.value == pytest.approx(_direct(W, w2, b2, box, c, reward, found.action[None])[0], abs=1e-12)
        # the warm-start vector of any box action is feasible and its objective is that action's value
        a = grid[rng.integers(len(grid))]
        model, x = milp.milp(c, reward), milp.incumbent(c, a, reward)
        assert model.is_feasible(x), model.violations(x)
        assert model.objective(x) == pytest.approx(milp.q(c, a, reward), abs=1e-9)


def test_warm_start_with_reward():
    W, w2, b2, c = _critic(7, 4, H=12, scale=2.0)
    box, lower, upper = np.array([6, 6, 5, 6]), np.array([0, 1, 0, 2]), np.array([6, 5, 5, 6])
    milp = BoxCriticMILP(W, w2, b2, box, lower=lower, upper=upper)
    rng = np.random.default_rng(3)
    grid = _grid(lower, upper)
    for charge in (0.0, 1.5, 4.0):
        reward = _reward(rng, box, lower, upper, charge)
        values = _direct(W, w2, b2, box, c, reward, grid)
        for start in (grid[values.argmin()], grid[values.argmax()], lower):
            found = milp.solve(c, warm_start=start, reward=reward)
            assert found.solution.status == "optimal"
            assert found.value >= milp.q(c, start, reward) - 1e-12
            assert found.value == pytest.approx(values.max(), rel=1e-6)
            assert np.all((found.action >= lower) & (found.action <= upper))


def test_reward_none_is_unchanged_and_models_alternate():
    W, w2, b2, c = _critic(5, 3, H=8, scale=2.0)
    box = np.array([5, 4, 6])
    milp = BoxCriticMILP(W, w2, b2, box)
    grid = _grid(np.zeros(3, np.int64), box)
    P = int((w2 > 0).sum())
    plain = milp.milp(c)
    assert plain.n_cols == 3 + 8 + P and plain.n_rows == 8 + 2 * P
    assert np.array_equal(milp.milp(c, None).A.toarray(), plain.A.toarray())
    assert np.allclose(milp.q(c, grid), _direct(W, w2, b2, box, c, None, grid), rtol=1e-12, atol=1e-12)
    assert np.array_equal(milp.incumbent(c, grid[7]), milp.incumbent(c, grid[7], None))
    best = milp.q(c, grid).max()
    reward = _reward(np.random.default_rng(0), box, np.zeros(3, np.int64), box, 2.0)
    best_r = _direct(W, w2, b2, box, c, reward, grid).max()
    for _ in range(2):  # switching between the two models reloads HiGHS and keeps both exact
        assert milp.solve(c).value == pytest.approx(best, abs=1e-6)
        assert milp.solve(c, reward=reward).value == pytest.approx(best_r, rel=1e-6)
    assert milp.solve(c).value == pytest.approx(best, abs=1e-6)
    assert milp.solver.n_rebuilds == 5


def test_reward_must_be_one_state_covering_the_box():
    W, w2, b2, c = _critic(1, 2, H=4)
    milp = BoxCriticMILP(W, w2, b2, np.array([3, 3]))
    with pytest.raises(ValueError):
        milp.solve(c, reward=SeparableReward(torch.zeros(2, 2, 4), torch.zeros(2, 2), torch.zeros(2)))
    with pytest.raises(ValueError):
        milp.solve(c, reward=SeparableReward(torch.zeros(1, 2, 3), torch.zeros(1, 2), torch.zeros(1)))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), amax=st.lists(st.integers(1, 5), min_size=1, max_size=3), data=st.data())
def test_per_solve_boxes_equal_enumeration_over_that_box(seed, amax, data):
    """One persistent MILP, a different sub-box per solve (the post-decision box of each state)."""
    rng = np.random.default_rng(seed)
    n, box = len(amax), np.array(amax)
    W, w2, b2, _ = _critic(seed, n, 8, 1.0)
    milp = BoxCriticMILP(W, w2, b2, box)
    for _ in range(3):
        lower = np.array([data.draw(st.integers(0, m)) for m in amax])
        upper = np.array([data.draw(st.integers(lo, m)) for lo, m in zip(lower, amax, strict=True)])
        c = rng.normal(size=8)
        reward = _reward(rng, box, lower, upper, float(rng.choice([0.0, 1.0, 3.0])))
        grid = _grid(lower, upper)
        values = _direct(W, w2, b2, box, c, reward, grid)
        found = milp.solve(c, warm_start=grid[0], reward=reward, lower=lower, upper=upper)
        assert found.solution.status == "optimal"
        assert np.all((found.action >= lower) & (found.action <= upper))
        assert found.value == pytest.approx(values.max(), rel=1e-6)
    with pytest.raises(ValueError, match="lower, upper"):
        milp.solve(c, lower=box + 1, upper=box + 1)


def test_warm_start_outside_the_solve_box_is_refused():
    W, w2, b2, c = _critic(2, 2, H=6)
    milp = BoxCriticMILP(W, w2, b2, np.array([5, 5]))
    with pytest.raises(ValueError, match="warm_start"):
        milp.solve(c, warm_start=np.array([5, 5]), lower=np.array([0, 0]), upper=np.array([2, 2]))
    found = milp.solve(c, warm_start=np.array([2, 1]), lower=np.array([0, 0]), upper=np.array([2, 2]))
    assert np.all(found.action <= 2)
    # a reward whose tables cover only the per-solve box is enough
    reward = SeparableReward(torch.zeros(1, 2, 3), torch.full((1, 2), 1.5), torch.tensor([1.0]))
    found = milp.solve(c, reward=reward, lower=np.array([0, 0]), upper=np.array([2, 2]))
    assert found.value == pytest.approx(milp.q(c, found.action, reward, np.array([0, 0]), np.array([2, 2])))
