"""One interval-bound implementation: the numpy one is sound (and exact for one affine layer over a box), bound
tightening's propagation and the box critic reuse it, and the torch stability-loss bounds are its twin."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engine.sequoia.milp_friendly import interval_bounds_torch
from engine.sequoia.q_network import QNetwork
from solvers.formulations.box_critic_milp import BoxCriticMILP
from solvers.formulations.interval_bounds import interval_bounds, propagate
from solvers.formulations.relu_network import ReluNetwork


def _box_points(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return np.array(list(itertools.product(*[range(lo, hi + 1) for lo, hi in zip(lower, upper, strict=True)])))


@pytest.mark.parametrize("seed", range(6))
def test_bounds_contain_every_preactivation_and_are_exact_on_the_first_layer(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    net = ReluNetwork.random(n, [int(w) for w in rng.integers(1, 7, int(rng.integers(1, 4)))], rng)
    lower = rng.integers(0, 3, n)
    upper = lower + rng.integers(0, 3, n)
    bias = rng.normal(size=net.biases[0].size)
    bounds = interval_bounds(net, bias, lower, upper)
    points = _box_points(lower, upper)
    acts = [net.hidden_activations(p, bias) for p in points]
    for layer, (L, U) in enumerate(bounds):
        z = np.stack([a[layer][0] for a in acts])
        assert np.all(z >= L - 1e-9) and np.all(z <= U + 1e-9)
        if layer == 0:  # one affine layer over a box: the bounds are attained at its vertices
            np.testing.assert_allclose(z.min(0), L, atol=1e-9)
            np.testing.assert_allclose(z.max(0), U, atol=1e-9)


def test_propagate_only_tightens_and_stays_sound():
    rng = np.random.default_rng(4)
    net = ReluNetwork.random(5, [6, 5, 4], rng)
    fresh = interval_bounds(net, None, np.zeros(5), np.ones(5))
    # tighten the first layer to what the actions can reach with at most one pulled arm, then propagate
    ones = np.vstack([np.zeros(5), np.eye(5)])
    z0 = ones @ net.weights[0].T + net.biases[0]
    bounds = [(z0.min(0), z0.max(0)), *fresh[1:]]
    propagate(net.weights, net.biases, bounds, 0)
    for (L, U), (L0, U0) in zip(bounds, fresh, strict=True):
        assert np.all(L >= L0 - 1e-12) and np.all(U <= U0 + 1e-12)
    assert any(np.any(L > L0 + 1e-9) or np.any(U < U0 - 1e-9) for (L, U), (L0, U0) in zip(bounds, fresh, strict=True))
    for a in ones:
        for (z, _), (L, U) in zip(net.hidden_activations(a), bounds, strict=True):
            assert np.all(z >= L - 1e-9) and np.all(z <= U + 1e-9)


@pytest.mark.parametrize(
    ("seed", "hidden", "context_dim", "max_ones"),
    [
        (0, (8,), 0, None),
        (1, (6, 5), 0, 2),
        (2, (7, 4, 3), 2, 3),
        (3, (5, 9), 1, None),
        (4, (12, 6), 0, 1),
        (5, (4,), 3, 5),
    ],
)
def test_torch_twin_agrees_with_the_numpy_bounds_on_random_networks(seed, hidden, context_dim, max_ones):
    torch.manual_seed(seed)
    n, state_dim, batch = 6, 4, 5
    net = QNetwork(n, state_dim, hidden, context_dim)
    with torch.no_grad():  # spread the weights so that some neurons come out stable and some not
        for layer in net.hidden_layers:
            layer.bias.normal_(0.0, 1.0)
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, state_dim, generator=g)
    context = torch.randn(batch, n, context_dim, generator=g) if context_dim else None
    twin = interval_bounds_torch(net, features, context, max_ones)
    relu = net.relu_network()
    for i in range(batch):
        W0, b0 = net.first_layer(features[i].numpy(), None if context is None else context[i].numpy())
        state_net = ReluNetwork([W0, *relu.weights[1:]], [b0, *relu.biases[1:]])
        ref = interval_bounds(state_net, b0, np.zeros(n), np.ones(n), max_ones=max_ones)
        assert len(ref) == len(twin)
        for (L, U), (L0, U0) in zip(twin, ref, strict=True):
            np.testing.assert_allclose(L[i].detach().numpy(), L0, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(U[i].detach().numpy(), U0, rtol=1e-5, atol=1e-5)


def test_box_critic_bounds_are_the_shared_ones_and_exact():
    rng = np.random.default_rng(7)
    W, w2, amax = rng.normal(size=(9, 3)), rng.normal(size=9), np.array([4, 2, 5])
    milp = BoxCriticMILP(W, w2, 0.3, amax, lower=np.array([1, 0, 2]), upper=np.array([3, 2, 5]))
    c = rng.normal(size=9)
    L, U = milp.bounds(c)
    ((L0, U0),) = interval_bounds(ReluNetwork([W / amax, w2[None]], [c, [0.3]]), c, [1, 0, 2], [3, 2, 5])
    np.testing.assert_array_equal(L, L0)
    np.testing.assert_array_equal(U, U0)
    pre = c + _box_points(np.array([1, 0, 2]), np.array([3, 2, 5])) @ (W / amax).T
    np.testing.assert_allclose(pre.min(0), L, atol=1e-12)
    np.testing.assert_allclose(pre.max(0), U, atol=1e-12)
