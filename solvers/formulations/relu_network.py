"""A scalar-output ReLU MLP over the binary action vector, as plain numpy arrays.

The state does not appear as an input: the caller folds it into a per-state first-layer bias
(``W_state @ s + b``), so the network seen by the solvers reads only the action.

    z_1 = W_1 a + b_1,   h_l = max(z_l, 0),   z_{l+1} = W_{l+1} h_l + b_{l+1},   output = W_L h_{L-1} + b_L
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass
class ReluNetwork:
    """``weights[l]`` has shape ``(out_l, in_l)``; the last layer has ``out = 1`` and is linear."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def __post_init__(self) -> None:
        if not self.weights or len(self.weights) != len(self.biases):
            raise ValueError("one bias per weight matrix and at least one layer are required")
        self.weights = [np.atleast_2d(np.asarray(w, dtype=float)) for w in self.weights]
        self.biases = [np.asarray(b, dtype=float).reshape(-1) for b in self.biases]
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if b.shape != (w.shape[0],):
                raise ValueError(f"layer {layer}: bias has {b.size} entries, expected {w.shape[0]}")
            if layer and w.shape[1] != self.weights[layer - 1].shape[0]:
                prev = self.weights[layer - 1].shape[0]
                raise ValueError(f"layer {layer}: expects {w.shape[1]} inputs, previous layer has {prev}")
        if self.weights[-1].shape[0] != 1:
            raise ValueError("the output layer must have exactly one unit")

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def hidden_widths(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def first_bias(self, first_bias: np.ndarray | None) -> np.ndarray:
        """``first_bias`` checked against the first layer, or the stored first-layer bias when None."""
        if first_bias is None:
            return self.biases[0]
        b = np.asarray(first_bias, dtype=float).reshape(-1)
        if b.shape != self.biases[0].shape:
            raise ValueError(f"first_bias has {b.size} entries, expected {self.biases[0].size}")
        return b

    def forward(self, actions: np.ndarray, first_bias: np.ndarray | None = None) -> np.ndarray:
        """Network outputs for the rows of ``actions`` (shape ``(k, n)``) -> shape ``(k,)``."""
        h = np.atleast_2d(np.asarray(actions, dtype=float))
        b0 = self.first_bias(first_bias)
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w.T + (b0 if layer == 0 else b)
            if layer < last:
                np.maximum(h, 0.0, out=h)
        return h[:, 0]

    def hidden_activations(
        self, action: np.ndarray, first_bias: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per hidden layer, the pre-activation ``z_l`` and activation ``h_l`` for one action."""
        h = np.asarray(action, dtype=float).reshape(-1)
        b0 = self.first_bias(first_bias)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for layer, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1], strict=True)):
            z = w @ h + (b0 if layer == 0 else b)
            h = np.maximum(z, 0.0)
            out.append((z, h))
        return out

    @classmethod
    def random(
        cls, n_inputs: int, hidden: list[int] | tuple[int, ...], rng: np.random.Generator, scale: float = 1.0
    ) -> ReluNetwork:
        """He-initialised random network (tests and benchmarks)."""
        sizes = [n_inputs, *hidden, 1]
        weights = [rng.normal(0.0, scale * np.sqrt(2.0 / i), (o, i)) for i, o in pairwise(sizes)]
        biases = [rng.normal(0.0, 0.1 * scale, o) for o in sizes[1:]]
        return cls(weights, biases)
