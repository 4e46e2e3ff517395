"""LP-based bound tightening: sound (contains every reachable pre-activation), never looser, same optimum."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.cormab.capacity import CapacityInstance
from solvers.backends.highs import HighsSolver
from solvers.formulations.network_milp import NetworkMILP
from solvers.formulations.relu_network import ReluNetwork


@lru_cache(maxsize=8)
def capacity(n_arms: int, budget: int, seed: int):
    model = CapacityInstance.generate(n_arms=n_arms, budget=budget, seed=seed).action_model()
    return model, model.milp(np.zeros(n_arms)), model.enumerate()


def preactivations(net: ReluNetwork, actions: np.ndarray, b0: np.ndarray) -> list[np.ndarray]:
    h, out = actions.astype(float), []
    for layer, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
        z = h @ w.T + (b0 if layer == 0 else b)
        out.append(z)
        h = np.maximum(z, 0.0)
    return out


def case(seed: int, hidden: list[int]):
    rng = np.random.default_rng(seed)
    _, feasible, actions = capacity(10, 4, seed % 3)
    net = ReluNetwork.random(10, hidden, rng)
    return net, feasible, actions, rng.normal(0, 1, hidden[0]) * rng.choice([1.0, 5.0])


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 10_000), hidden=st.lists(st.integers(2, 8), min_size=1, max_size=3))
def test_lp_bounds_are_sound_and_never_looser(seed, hidden):
    net, feasible, actions, b0 = case(seed, hidden)
    plain = NetworkMILP(net, feasible)
    plain.build(b0)
    tight = NetworkMILP(net, feasible, tightening="lp", tightening_budget=10.0)
    tight.build(b0)
    report = tight.tightening_report
    assert report.complete
    assert report.stable_before == tuple(plain.stable_counts)
    assert report.stable_after == tuple(tight.stable_counts)
    assert tight.stable_counts.unstable <= plain.stable_counts.unstable
    for z, (L, U), (L0, U0) in zip(preactivations(net, actions, b0), tight.bounds, plain.bounds, strict=True):
        assert np.all(L >= L0 - 1e-9) and np.all(U <= U0 + 1e-9)
        assert np.all(z >= L - 1e-6) and np.all(z <= U + 1e-6)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 3))
def test_lp_tightened_milp_has_the_same_optimum(seed, depth):
    net, feasible, actions, b0 = case(seed, [6] * depth)
    best = float(net.forward(actions, b0).max())
    for mode in ("interval", "lp"):
        compiled = NetworkMILP(net, feasible, tightening=mode)
        sol = HighsSolver(mip_rel_gap=1e-9, mip_allow_restart=False).solve(compiled.build(b0, tightening_budget=10.0))
        # the argmax is exact; the MILP objective itself carries HiGHS's feasibility tolerance on h
        value = float(net.forward(compiled.decode(sol.x)[None], b0)[0])
        assert abs(value - best) <= 1e-6 * max(1.0, abs(best)), mode
        assert abs(sol.objective - best) <= 1e-5 * max(1.0, abs(best)), mode


def test_zero_budget_keeps_the_interval_bounds():
    net, feasible, _, b0 = case(1, [8, 8])
    plain = NetworkMILP(net, feasible)
    plain.build(b0)
    tight = NetworkMILP(net, feasible)
    tight.build(b0, tightening="lp", tightening_budget=0.0)
    assert not tight.tightening_report.complete
    for (L, U), (L0, U0) in zip(tight.bounds, plain.bounds, strict=True):
        np.testing.assert_allclose(L, L0)
        np.testing.assert_allclose(U, U0)


def test_tightening_stabilises_neurons_on_a_deep_network():
    """Interval arithmetic compounds over layers; the LP sees the correlations and stabilises neurons."""
    rng = np.random.default_rng(0)
    _, feasible, _ = capacity(10, 4, 0)
    newly = 0
    for s in range(5):
        net = ReluNetwork.random(10, [8, 8, 8], np.random.default_rng(s))
        compiled = NetworkMILP(net, feasible, tightening="lp", tightening_budget=10.0)
        compiled.build(rng.normal(0, 1, 8))
        newly += compiled.tightening_report.newly_stable
    assert newly > 0


def test_unknown_tightening_mode_is_rejected():
    net, feasible, _, _ = case(0, [4])
    with pytest.raises(ValueError, match="tightening"):
        NetworkMILP(net, feasible, tightening="magic")
