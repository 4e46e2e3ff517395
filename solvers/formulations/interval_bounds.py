"""Interval bounds on the pre-activations of a :class:`ReluNetwork` over a box of actions.

For ``z = W x + b`` with ``x`` in ``[lo, hi]``: ``L = W+ lo + W- hi + b``, ``U = W+ hi + W- lo + b`` where
``W+ = max(W, 0)`` and ``W- = min(W, 0)``; the next layer's input box is ``[max(L, 0), max(U, 0)]``.

With ``max_ones = K`` (the feasible set is known to pull at most K actions) and a 0/1 box, the first layer
is bounded exactly over the box intersected with ``sum x <= K``: the K largest positive (smallest negative)
weights of the free entries, on top of the entries fixed at 1.
"""

from __future__ import annotations

import numpy as np

from solvers.formulations.relu_network import ReluNetwork


def _layer_bounds(w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    wp, wn = np.maximum(w, 0.0), np.minimum(w, 0.0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


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
) -> list[tuple[np.ndarray, np.ndarray]]:
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
    b0 = net.first_bias(first_bias)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for layer, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
        bias = b0 if layer == 0 else b
        L, U = _layer_bounds(w, bias, lo, hi)
        binary_box = np.all((lo == 0) | (lo == 1)) and np.all((hi == 0) | (hi == 1))
        if layer == 0 and max_ones is not None and binary_box:
            Lc, Uc = _cardinality_bounds(w, bias, lo, hi, max_ones)
            L, U = np.maximum(L, Lc), np.minimum(U, Uc)
        out.append((L, U))
        lo, hi = np.maximum(L, 0.0), np.maximum(U, 0.0)
    return out
