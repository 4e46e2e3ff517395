"""Cutting-pattern bin packing against the exhaustive placement search, and its packings checked."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.constraints.bin_packing import BinPackingOracle
from scenarios.constraints.packing_patterns import pattern_packing


def _exhaustive(costs: list[int], capacities: list[int]) -> bool:
    """Whether the items fit, by trying every worker for every item (tiny cases only)."""
    rooms = list(capacities)

    def place(k: int) -> bool:
        if k == len(costs):
            return True
        for i in range(len(rooms)):
            if rooms[i] >= costs[k]:
                rooms[i] -= costs[k]
                if place(k + 1):
                    return True
                rooms[i] += costs[k]
        return False

    return place(0)


@given(
    st.lists(st.integers(1, 6), min_size=0, max_size=9),
    st.lists(st.integers(1, 9), min_size=1, max_size=4),
)
@settings(max_examples=150, deadline=None)
def test_pattern_packing_decides_like_exhaustive_search(costs: list[int], capacities: list[int]) -> None:
    workers = pattern_packing(np.array(costs), np.array(capacities))
    assert (workers is not None) == _exhaustive(costs, capacities)
    if workers is not None:
        load = np.bincount(workers, weights=costs, minlength=len(capacities)) if costs else np.zeros(len(capacities))
        assert np.all(load <= np.array(capacities))


def test_tight_programme_scale_packing_is_found_without_search() -> None:
    """1,000 arms of costs 2-6, 100 workers of capacities 2-7: a random maximal packing (tight by construction)
    is certified, and one arm more than any packing holds is refused."""
    rng = np.random.default_rng(0)
    costs, capacities = rng.integers(2, 7, 1000), rng.integers(2, 8, 100)
    oracle = BinPackingOracle(costs.tolist(), capacities.tolist())
    a = oracle.sample(rng)
    oracle._last = None  # forget the sampler's own packing: the check must find one
    x = oracle.certificate(a)
    assert x is not None
    assign = x.reshape(capacities.size, costs.size)
    assert np.array_equal(assign.sum(0), a.astype(float))
    assert np.all(assign @ costs <= capacities)
    everything = np.ones(costs.size, dtype=np.int64)
    assert not oracle.is_feasible(everything)
