"""Exact feasibility of worker capacities: can the pulled arms' costs be packed into the workers (bin packing)?"""

from __future__ import annotations

import numpy as np

from scenarios.constraints.packing_patterns import pattern_packing


class BinPackingOracle:
    """Exact feasibility of the capacity domain: can the pulled arms' costs be packed into the workers?"""

    def __init__(self, costs: list[int], capacities: list[int]) -> None:
        self.costs = np.asarray(costs, dtype=np.int64)
        self.capacities = np.asarray(capacities, dtype=np.int64)
        self._last: tuple[bytes, np.ndarray | None] | None = None  # is_feasible then certificate: one packing

    def _pack(self, a: np.ndarray) -> np.ndarray | None:
        """Worker index per pulled arm (backtracking, largest cost first), or None when impossible."""
        items = np.flatnonzero(np.asarray(a) > 0)
        costs = self.costs[items]
        if costs.sum() > self.capacities.sum() or (costs.size and costs.max() > self.capacities.max()):
            return None
        order = np.argsort(-costs, kind="stable")
        quick = _best_fit(costs[order], self.capacities)
        if quick is not None:  # most packings a heuristic finds at once: no search
            out = np.empty(len(order), dtype=np.int64)
            out[order] = quick
            return out
        try:  # few distinct costs and capacities: an exact pattern program (a tight J = 1,000 search took minutes)
            return pattern_packing(costs, self.capacities)
        except OverflowError:
            pass
        c = costs[order].tolist()
        suffix = [*np.cumsum(c[::-1])[::-1].tolist(), 0]  # suffix[k] = total cost of items k..end
        remaining = self.capacities.tolist()
        where = [-1] * len(c)
        failed: set[tuple[int, tuple[int, ...]]] = set()  # (item, multiset of rooms) proven unpackable

        def place(k: int) -> bool:
            if k == len(c):
                return True
            # rooms smaller than the smallest remaining item are wasted: the rest must hold all that is left
            if sum(r for r in remaining if r >= c[-1]) < suffix[k]:
                return False
            key = (k, tuple(sorted(remaining)))
            if key in failed:
                return False
            tried: set[int] = set()
            for i, room in enumerate(remaining):
                if room >= c[k] and room not in tried:  # equal rooms are symmetric
                    tried.add(room)
                    remaining[i] -= c[k]
                    where[k] = i
                    if place(k + 1):
                        return True
                    remaining[i] += c[k]
            failed.add(key)
            return False

        if not place(0):
            return None
        out = np.empty(len(c), dtype=np.int64)
        out[order] = where
        return out

    def _packed(self, a: np.ndarray) -> np.ndarray | None:
        key = np.asarray(a, dtype=np.int8).tobytes()
        if self._last is None or self._last[0] != key:
            self._last = (key, self._pack(a))
        return self._last[1]

    def is_feasible(self, a: np.ndarray) -> bool:
        return self._packed(a) is not None

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        workers = self._packed(a)
        if workers is None:
            return None
        W, J = self.capacities.size, self.costs.size
        x = np.zeros((W, J))
        x[workers, np.flatnonzero(np.asarray(a) > 0)] = 1.0
        return x.ravel()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Random first-fit: arms in random order, each to a random worker with room (a maximal packing)."""
        remaining = self.capacities.copy()
        a = np.zeros(self.costs.size, dtype=np.int64)
        worker = np.full(self.costs.size, -1, dtype=np.int64)
        for j in rng.permutation(self.costs.size):
            fits = np.flatnonzero(remaining >= self.costs[j])
            if fits.size:
                i = rng.choice(fits)
                remaining[i] -= self.costs[j]
                a[j], worker[j] = 1, i
        # the packing just built certifies the action (an env step that checks it next needs no search)
        self._last = (a.astype(np.int8).tobytes(), worker[a > 0])
        return a


def _best_fit(costs: np.ndarray, capacities: np.ndarray) -> list[int] | None:
    """Best-fit placement of ``costs`` in the given order (each to the fullest worker that holds it): a worker
    per item, or None when the heuristic fails (the exact search then decides)."""
    remaining = capacities.astype(np.int64).copy()
    out: list[int] = []
    for cost in costs.tolist():
        fits = np.flatnonzero(remaining >= cost)
        if not fits.size:
            return None
        i = int(fits[np.argmin(remaining[fits])])
        remaining[i] -= cost
        out.append(i)
    return out
