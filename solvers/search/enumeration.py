"""Exact argmax by scoring every candidate action in batches (small feasible sets, reference optima)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from solvers.solution import INFEASIBLE, OPTIMAL, Solution


class EnumerationSolver:
    """Score candidates in chunks of ``batch_size`` rows and keep the best (first on ties; NaN never wins)."""

    name = "enumeration"

    def __init__(self, batch_size: int = 65_536) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size

    def solve(self, candidates: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> Solution:
        """Best row of ``candidates`` (shape ``(k, n)``) under ``score`` (rows -> shape ``(rows,)``)."""
        start = time.perf_counter()
        candidates = np.asarray(candidates)
        if candidates.ndim != 2:
            raise ValueError(f"candidates must be a (k, n) matrix, got shape {candidates.shape}")
        best_value, best_index = -np.inf, -1
        for lo in range(0, candidates.shape[0], self.batch_size):
            chunk = candidates[lo : lo + self.batch_size]
            values = np.asarray(score(chunk), dtype=float).reshape(-1)
            if values.shape[0] != chunk.shape[0]:
                raise ValueError(f"score returned {values.shape[0]} values for {chunk.shape[0]} candidates")
            values = np.where(np.isnan(values), -np.inf, values)
            i = int(np.argmax(values))
            if best_index < 0 or values[i] > best_value:
                best_value, best_index = float(values[i]), lo + i
        seconds = time.perf_counter() - start
        if best_index < 0:
            return Solution(None, -np.inf, -np.inf, float("inf"), INFEASIBLE, seconds)
        return Solution(candidates[best_index].copy(), best_value, best_value, 0.0, OPTIMAL, seconds)
