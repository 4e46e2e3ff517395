"""The Q-network as an exact affine function of the action at one state, when interval bounds prove every
hidden neuron stable over the feasible actions.

With pre-activation bounds ``[L, U]`` over the 0/1 action box (and the feasible set's cardinality bound), a
neuron with ``L >= 0`` is the identity and one with ``U <= 0`` is zero for every feasible action; when no
neuron is unstable the network is ``w @ a + c`` with ``w``, ``c`` obtained by composing the layers with those
masks. Selectors then maximise a linear objective over the feasible set (an exact combinatorial oracle).
"""

from __future__ import annotations

import numpy as np

from solvers.formulations.interval_bounds import interval_bounds
from solvers.formulations.relu_network import ReluNetwork


def affine_form(
    net: ReluNetwork,
    first_bias: np.ndarray,
    first_weights: np.ndarray | None = None,
    max_ones: int | None = None,
) -> tuple[np.ndarray, float] | None:
    """``(w, c)`` with ``net(a) = w @ a + c`` for every ``a`` in ``{0,1}^n`` with at most ``max_ones`` ones, or
    None when some hidden neuron is not proven stable. ``first_weights`` replace the first layer's weights
    (per-state action weights)."""
    if first_weights is not None:
        net = ReluNetwork(weights=[np.asarray(first_weights, dtype=float), *net.weights[1:]], biases=list(net.biases))
    n = net.n_inputs
    b0 = net.first_bias(first_bias)
    bounds = interval_bounds(net, b0, np.zeros(n), np.ones(n), max_ones=max_ones)
    M, v = net.weights[0], b0
    for layer, (L, U) in enumerate(bounds):
        on, off = L >= 0.0, U <= 0.0
        if not np.all(on | off):
            return None
        keep = on & ~off
        M, v = M * keep[:, None], v * keep
        M, v = net.weights[layer + 1] @ M, net.weights[layer + 1] @ v + net.biases[layer + 1]
    return M[0].copy(), float(v[0])
