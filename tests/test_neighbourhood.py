"""Neighbourhood search and the exact box MILP against full forward passes and brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.formulations.box_critic_milp import BoxCriticMILP
from solvers.formulations.separable_reward import SeparableReward
from solvers.search.neighbourhood import NeighbourhoodConfig, NeighbourhoodSearch, minmax_action


def _critic(seed: int, n: int, H: int = 16, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(H, n, generator=g) * scale
    w2 = torch.randn(H, generator=g)
    c = torch.randn(1, H, generator=g)
    return W, w2, 0.25, c


def _grid(amax: list[int]) -> torch.Tensor:
    return torch.tensor(list(itertools.product(*[range(m + 1) for m in amax])))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    amax=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    method=st.sampled_from(["sa", "hill"]),
    pairs=st.integers(0, 8),
    proxy=st.floats(-3.0, 3.0),
)
def test_search_never_leaves_the_box(seed, amax, method, pairs, proxy):
    n = len(amax)
    W, w2, b2, c = _critic(seed, n)
    box = torch.tensor(amax)
    cfg = NeighbourhoodConfig(max_step=3, pair_moves=pairs, steps=25, method=method, seed=seed)
    search = NeighbourhoodSearch(W, w2, b2, box, cfg)
    base = minmax_action(torch.full((2, n), proxy), box)
    assert torch.all((base >= 0) & (base <= box))
    result = search.search(c.expand(2, -1), base)
    assert torch.all((result.actions >= 0) & (result.actions <= box))
    assert torch.allclose(result.values, search.score(c.expand(2, -1), result.actions), atol=1e-4)
    assert torch.all(result.values >= search.score(c.expand(2, -1), base) - 1e-5)  # best seen, never worse


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 7), top=st.integers(1, 20), d=st.integers(1, 6))
def test_incremental_scores_equal_full_forward(seed, n, top, d):
    W, w2, b2, c = _critic(seed, n, scale=2.0)
    box = torch.full((n,), top)
    search = NeighbourhoodSearch(W, w2, b2, box, NeighbourhoodConfig(max_step=d))
    x = torch.randint(0, top + 1, (1, n), generator=torch.Generator().manual_seed(seed))
    scores, valid = search.single_move_scores(search.preactivation(c, x), x)
    steps = search.steps
    neighbours = x[:, :, None, None].repeat(1, 1, n, steps.numel()).permute(0, 2, 3, 1).clone()  # (1, n, 2d, n)
    for i in range(n):
        neighbours[0, i, :, i] += steps
    inside = ((neighbours >= 0) & (neighbours <= top)).all(-1)
    assert torch.equal(valid, inside)
    full = search.score(c.expand(n * steps.numel(), -1), neighbours.reshape(-1, n)).reshape(1, n, -1)
    assert torch.allclose(scores[valid], full[valid], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["sa", "hill"])
def test_search_equals_brute_force_on_tiny_boxes(method):
    """n = 2, max = 5: enough steps (and pair moves) find the exact argmax from the worst corner."""
    box = torch.tensor([5, 5])
    grid = _grid([5, 5])
    for seed in range(40):
        W, w2, b2, c = _critic(seed, 2, H=8, scale=2.0)
        cfg = NeighbourhoodConfig(max_step=5, pair_moves=24, steps=60, method=method, patience=20, seed=seed)
        search = NeighbourhoodSearch(W, w2, b2, box, cfg)
        best = search.score(c.expand(grid.shape[0], -1), grid).max()
        found = search.search(c, torch.zeros(1, 2, dtype=torch.long))
        assert found.values.item() == pytest.approx(best.item(), abs=1e-5)


def test_simulated_annealing_accepts_worse_moves():
    """A true SA: from a strict local maximum it still moves (and returns the best seen)."""
    W, w2, b2, c = _critic(3, 6, H=16)
    box = torch.full((6,), 8)
    hill = NeighbourhoodSearch(W, w2, b2, box, NeighbourhoodConfig(max_step=2, pair_moves=0, method="hill", steps=50))
    top = hill.search(c, torch.zeros(1, 6, dtype=torch.long))
    assert top.steps < 50  # hill climbing stops at the local maximum
    sa = NeighbourhoodSearch(
        W, w2, b2, box, NeighbourhoodConfig(max_step=2, pair_moves=0, steps=30, temperature=5.0, final_temperature=1.0)
    )
    h = sa.preactivation(c, top.actions)
    scores, valid = sa.single_move_scores(h, top.actions)
    assert scores[valid].max() <= top.values.item() + 1e-6  # no improving neighbour
    result = sa.search(c, top.actions)
    assert result.steps == 30 and result.worse_moves > 0
    assert result.values.item() >= top.values.item() - 1e-6
    assert hill.search(c, top.actions).worse_moves == 0


def test_time_limit_and_batch_consistency():
    W, w2, b2, c = _critic(5, 40, H=32, scale=0.3)
    box = torch.full((40,), 66)
    search = NeighbourhoodSearch(W, w2, b2, box, NeighbourhoodConfig(steps=10_000))
    x0 = torch.full((1, 40), 33)
    assert search.search(c, x0, time_limit=0.02).steps < 10_000
    fast = NeighbourhoodSearch(W, w2, b2, box, NeighbourhoodConfig(steps=8, method="hill", pair_moves=0))
    one = fast.search(c, x0)
    many = fast.search(c.expand(3, -1), x0.expand(3, -1))
    assert torch.equal(many.actions, one.actions.expand(3, -1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), amax=st.lists(st.integers(1, 5), min_size=1, max_size=3), H=st.integers(1, 10))
def test_box_milp_equals_enumeration(seed, amax, H):
    rng = np.random.default_rng(seed)
    n = len(amax)
    W, w2 = rng.normal(size=(H, n)) * rng.choice([0.3, 1.0, 3.0]), rng.normal(size=H)
    milp = BoxCriticMILP(W, w2, 0.1, np.array(amax))
    grid = _grid(amax).numpy()
    for _ in range(3):  # several states through one persistent model
        c = rng.normal(size=H) * rng.choice([0.3, 1.0, 3.0])
        found = milp.solve(c)
        best = milp.q(c, grid).max()
        assert found.value == pytest.approx(best, abs=1e-6)
        assert found.solution.status == "optimal"
        assert np.all((found.action >= 0) & (found.action <= amax))
    assert milp.solver.n_rebuilds == 1


def test_box_milp_scaling_matches_torch_critic_and_warm_start():
    W, w2, b2, c = _critic(11, 5, H=12)
    box = torch.tensor([66, 66, 30, 1, 7])
    search = NeighbourhoodSearch(W, w2, b2, box)
    milp = BoxCriticMILP(W.double().numpy(), w2.double().numpy(), b2, box.numpy())
    a = torch.tensor([[10, 66, 0, 1, 3]])
    assert milp.q(c[0].double().numpy(), a.numpy())[0] == pytest.approx(search.score(c, a).item(), abs=1e-5)
    found = milp.solve(c[0].double().numpy(), warm_start=a[0].numpy())
    assert found.value >= milp.q(c[0].double().numpy(), a.numpy())[0] - 1e-9
    heuristic = search.search(c, a)
    assert found.value >= heuristic.values.item() - 1e-4


def test_search_and_milp_stay_in_a_sub_box_and_find_its_argmax():
    """A trust region ``lower <= a <= upper``: both stay inside it and agree with enumeration of it."""
    box, lower, upper = torch.tensor([12, 12, 12]), torch.tensor([2, 5, 0]), torch.tensor([6, 8, 3])
    grid = _grid([4, 3, 3]) + lower
    for seed in range(15):
        W, w2, b2, c = _critic(seed, 3, H=8, scale=4.0)
        cfg = NeighbourhoodConfig(max_step=4, pair_moves=24, steps=60, seed=seed)
        search = NeighbourhoodSearch(W, w2, b2, box, cfg, lower=lower, upper=upper)
        best = search.score(c.expand(grid.shape[0], -1), grid).max().item()
        found = search.search(c, torch.tensor([[12, 0, 12]]))  # an outside start is projected into the region
        assert torch.all((found.actions >= lower) & (found.actions <= upper))
        assert found.values.item() == pytest.approx(best, abs=1e-5)
        milp = BoxCriticMILP(
            W.double().numpy(), w2.double().numpy(), b2, box.numpy(), lower=lower.numpy(), upper=upper.numpy()
        )
        exact = milp.solve(c[0].double().numpy())
        assert np.all((exact.action >= lower.numpy()) & (exact.action <= upper.numpy()))
        assert exact.value == pytest.approx(best, abs=1e-5)
    with pytest.raises(ValueError):
        NeighbourhoodSearch(W, w2, b2, box, lower=torch.tensor([5, 5, 5]), upper=torch.tensor([4, 9, 9]))


# ---------------------------------------------------------------------------- with a separable reward model
def _reward(seed: int, B: int, n: int, width: int, charge: float) -> SeparableReward:
    g = torch.Generator().manual_seed(seed + 1)
    tables = torch.randn(B, n, width, generator=g) * 2.0
    thresholds = torch.randint(-2, width + 1, (B, n), generator=g).float()
    return SeparableReward(tables, thresholds, torch.full((B,), charge))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    amax=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    charge=st.sampled_from([0.0, 0.5, 3.0]),
    pairs=st.integers(0, 6),
    method=st.sampled_from(["sa", "hill"]),
)
def test_search_with_reward_tracks_the_full_objective(seed, amax, charge, pairs, method):
    """Incremental reward and fixed-charge updates equal a full evaluation of critic + reward at every answer."""
    n, B = len(amax), 3
    W, w2, b2, c = _critic(seed, n)
    box = torch.tensor(amax)
    reward = _reward(seed, B, n, max(amax) + 1, charge)
    cfg = NeighbourhoodConfig(max_step=3, pair_moves=pairs, steps=20, method=method, seed=seed)
    search = NeighbourhoodSearch(W, w2, b2, box, cfg)
    base = torch.minimum(torch.randint(0, 10, (B, n), generator=torch.Generator().manual_seed(seed)), box)
    result = search.search(c.expand(B, -1), base, reward=reward)
    assert torch.all((result.actions >= 0) & (result.actions <= box))
    full = search.score(c.expand(B, -1), result.actions, reward)
    assert torch.allclose(result.values, full, atol=1e-4)
    assert torch.all(result.values >= search.score(c.expand(B, -1), base, reward) - 1e-5)


@pytest.mark.parametrize("charge", [0.0, 1.5])
def test_search_with_reward_equals_brute_force_on_tiny_boxes(charge):
    box = torch.tensor([4, 4, 3])
    grid = _grid([4, 4, 3])
    for seed in range(30):
        W, w2, b2, c = _critic(seed, 3, H=8, scale=2.0)
        reward = _reward(seed, 1, 3, 5, charge)
        cfg = NeighbourhoodConfig(max_step=4, pair_moves=24, steps=60, method="hill", patience=30, seed=seed)
        search = NeighbourhoodSearch(W, w2, b2, box, cfg)
        all_rewards = SeparableReward(
            reward.tables.expand(grid.shape[0], -1, -1), reward.thresholds.expand(grid.shape[0], -1), charge
        )
        best = search.score(c.expand(grid.shape[0], -1), grid, all_rewards).max()
        found = search.search(c, torch.zeros(1, 3, dtype=torch.long), reward=reward)
        assert found.values.item() == pytest.approx(best.item(), abs=1e-5)


def test_separable_reward_value_interpolation_and_errors():
    reward = SeparableReward(torch.tensor([[[0.0, 1.0, 4.0], [2.0, 0.0, -1.0]]]), torch.tensor([[0.0, 5.0]]), 3.0)
    assert reward.value(torch.tensor([[0, 2]])).item() == pytest.approx(-1.0)  # nothing active: no charge
    assert reward.value(torch.tensor([[1, 0]])).item() == pytest.approx(1.0 + 2.0 - 3.0)
    lattice = torch.tensor([[2.0, 1.0]])
    assert reward.interpolate(lattice).item() == pytest.approx(4.0 + 0.0)
    assert reward.interpolate(torch.tensor([[1.5, 0.5]])).item() == pytest.approx(2.5 + 1.0)
    with pytest.raises(ValueError, match="thresholds"):
        SeparableReward(torch.zeros(1, 2, 3), torch.zeros(1, 3), 0.0)
    with pytest.raises(ValueError, match="charge"):
        SeparableReward(torch.zeros(1, 2, 3), torch.zeros(1, 2), -1.0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    amax=st.lists(st.integers(1, 8), min_size=1, max_size=5),
    charge=st.sampled_from([0.0, 1.5]),
    method=st.sampled_from(["sa", "hill"]),
    data=st.data(),
)
def test_per_state_boxes_are_respected_and_tracked(seed, amax, charge, method, data):
    """Each state searches its own sub-box; values stay exact; a box equal to the searcher's changes nothing."""
    n, B = len(amax), 3
    W, w2, b2, c = _critic(seed, n)
    box = torch.tensor(amax)
    lower = torch.tensor([[data.draw(st.integers(0, m)) for m in amax] for _ in range(B)])
    upper = torch.stack(
        [torch.tensor([data.draw(st.integers(int(lo), m)) for lo, m in zip(row, amax, strict=True)]) for row in lower]
    )
    reward = _reward(seed, B, n, max(amax) + 1, charge)
    search = NeighbourhoodSearch(
        W, w2, b2, box, NeighbourhoodConfig(max_step=3, pair_moves=4, steps=15, method=method, seed=seed)
    )
    start = torch.randint(0, 9, (B, n), generator=torch.Generator().manual_seed(seed))
    found = search.search(c.expand(B, -1), start, reward=reward, lower=lower, upper=upper)
    assert torch.all((found.actions >= lower) & (found.actions <= upper))
    assert torch.allclose(found.values, search.score(c.expand(B, -1), found.actions, reward), atol=1e-4)
    same = search.search(c.expand(B, -1), start, reward=reward, lower=torch.zeros(B, n), upper=box.expand(B, -1))
    plain = search.search(c.expand(B, -1), start, reward=reward)
    assert torch.equal(same.actions, plain.actions)


def test_per_state_box_search_finds_the_argmax_of_each_box():
    box = torch.tensor([9, 9, 9])
    lower, upper = torch.tensor([[0, 3, 5], [6, 0, 9]]), torch.tensor([[3, 6, 8], [9, 2, 9]])
    for seed in range(10):
        W, w2, b2, c = _critic(seed, 3, H=8, scale=3.0)
        reward = _reward(seed, 2, 3, 10, 1.0)
        cfg = NeighbourhoodConfig(max_step=4, pair_moves=24, steps=60, method="hill", patience=30, seed=seed)
        found = NeighbourhoodSearch(W, w2, b2, box, cfg).search(
            c.expand(2, -1), torch.zeros(2, 3, dtype=torch.long), reward=reward, lower=lower, upper=upper
        )
        for b in range(2):
            grid = _grid((upper[b] - lower[b]).tolist()) + lower[b]
            one = SeparableReward(
                reward.tables[b : b + 1].expand(len(grid), -1, -1),
                reward.thresholds[b : b + 1].expand(len(grid), -1),
                1.0,
            )
            best = NeighbourhoodSearch(W, w2, b2, box).score(c.expand(len(grid), -1), grid, one).max()
            assert found.values[b].item() == pytest.approx(best.item(), abs=1e-5)
    with pytest.raises(ValueError, match="lower, upper"):
        NeighbourhoodSearch(W, w2, b2, box).search(
            c, torch.zeros(1, 3), lower=torch.tensor([[5, 5, 5]]), upper=torch.tensor([[4, 9, 9]])
        )
    with pytest.raises(ValueError, match="lower, upper"):  # wrong shape: a clear error, not a torch one
        NeighbourhoodSearch(W, w2, b2, box).search(c.expand(2, -1), torch.zeros(2, 3), lower=torch.zeros(3, 3))


def test_charge_off_start_drops_a_charge_that_single_and_pair_moves_cannot():
    """Flat critic and tables, a charge of 5: leaving the charged region needs all six coordinates to move."""
    n, box = 6, torch.full((6,), 9)
    W, w2 = torch.zeros(4, n), torch.zeros(4)
    reward = SeparableReward(torch.zeros(1, n, 10), torch.full((1, n), 3.5), torch.tensor([5.0]))
    start = torch.full((1, n), 7)
    for off, expected in ((False, -5.0), (True, 0.0)):
        cfg = NeighbourhoodConfig(max_step=3, pair_moves=16, steps=30, method="hill", charge_off_start=off)
        found = NeighbourhoodSearch(W, w2, 0.0, box, cfg).search(torch.zeros(1, 4), start, reward=reward)
        assert found.values.item() == pytest.approx(expected)
    assert torch.equal(found.actions, torch.full((1, n), 3))  # the nearest no-charge point


def test_charge_off_with_unreachable_thresholds():
    reward = SeparableReward(torch.zeros(1, 3, 6), torch.tensor([[float("inf"), -float("inf"), 2.5]]), 1.0)
    assert reward.charge_off(torch.tensor([[4, 4, 4]])).tolist() == [[4, -1, 2]]  # the box clamps -1 to its lower
