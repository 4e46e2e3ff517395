"""Interval bounds on the pre-activations of a :class:`ReluNetwork` over a box of actions: the one numpy
implementation (the network compiler, LP bound tightening, the affine-network test of the selectors and the
integer-box critic MILP all call it).

For ``z = W x + b`` with ``x`` in ``[lo, hi]``: ``L = W+ lo + W- hi + b``, ``U = W+ hi + W- lo + b`` where
``W+ = max(W, 0)`` and ``W- = min(W, 0)``; the next layer's input box is ``[max(L, 0), max(U, 0)]``.

With ``max_ones = K`` (the feasible set is known to pull at most K actions) and a 0/1 box, the first layer
is bounded exactly over the box intersected with ``sum x <= K``: the K largest positive (smallest negative)
weights of the free entries, on top of the entries fixed at 1.

:func:`engine.sequoia.milp_friendly.interval_bounds_torch` is its differentiable twin (torch, batched over
states, the 0/1 box with at most ``max_ones`` ones) for the training stability loss; a test checks that the two
agree on random networks.
"""

from __future__ import annotations

import numpy as np

from solvers.formulations.relu_network import ReluNetwork

Bounds = list[tuple[np.ndarray, np.ndarray]]


def layer_bounds(w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(L, U)`` of ``w x + b`` over ``lo <= x <= hi`` (``w`` is ``(out, in)``)."""
    wp, wn = np.maximum(w, 0.0), np.minimum(w, 0.0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


def propagate(weights: list[np.ndarray], biases: list[np.ndarray], bounds: Bounds, start: int) -> None:
    """Intersect the bounds of hidden layers ``start+1..`` with interval arithmetic from layer ``start``'s, in
    place (``weights[l]``, ``biases[l]``: hidden layer ``l``'s; layer ``start``'s bounds are kept)."""
    for layer in range(start + 1, len(bounds)):
        lo_in, hi_in = np.maximum(bounds[layer - 1][0], 0.0), np.maximum(bounds[layer - 1][1], 0.0)
        L, U = layer_bounds(weights[layer], biases[layer], lo_in, hi_in)
        bounds[layer] = (np.maximum(bounds[layer][0], L), np.minimum(bounds[layer][1], U))


def _cardinality_bounds(
    w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_ones: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact bounds of ``w x + b`` over ``{x in {0,1}^n : lo <= x <= hi, sum x <= max_ones}``."""
    base = w @ lo + b
    free = hi > lo
    room = int(np.clip(max_ones - lo.sum(), 0, free.sum()))
    if room == 0:
        return base, base.copy()
    g = w[:, free]
    # k largest positive gains: sort ascending and take the last ``room`` columns
    up = np.sort(np.maximum(g, 0.0), axis=1)[:, -room:].sum(axis=1)
    down = np.sort(np.minimum(g, 0.0), axis=1)[:, :room].sum(axis=1)
    return base + down, base + up


def interval_bounds(
    net: ReluNetwork,
    first_bias: np.ndarray | None,
    lower: np.ndarray,
    upper: np.ndarray,
    max_ones: int | None = None,
) -> Bounds:
    """Per hidden layer, ``(L, U)`` of the pre-activations over actions in ``[lower, upper]``.

    ``max_ones`` (optional) is a valid upper bound on ``sum(action)`` over the feasible set; it tightens
    the first layer when the box is 0/1.
    """
    lo = np.asarray(lower, dtype=float).reshape(-1)
    hi = np.asarray(upper, dtype=float).reshape(-1)
    if lo.shape != (net.n_inputs,) or hi.shape != (net.n_inputs,):
        raise ValueError(f"lower and upper must have {net.n_inputs} entries")
    if np.any(lo > hi):
        raise ValueError("empty action box: lower > upper somewhere")
    widths = net.hidden_widths
    if not widths:
        return []
    w, b0 = net.weights[0], net.first_bias(first_bias)
    L, U = layer_bounds(w, b0, lo, hi)
    binary_box = np.all((lo == 0) | (lo == 1)) and np.all((hi == 0) | (hi == 1))
    if max_ones is not None and binary_box:
        Lc, Uc = _cardinality_bounds(w, b0, lo, hi, max_ones)
        L, U = np.maximum(L, Lc), np.minimum(U, Uc)
    out: Bounds = [(L, U)] + [(np.full(k, -np.inf), np.full(k, np.inf)) for k in widths[1:]]
    propagate(net.weights, [b0, *net.biases[1:]], out, 0)
    return out
