"""Enumerating feasible sets that are not downward closed: every subset of a size a feasible action can have
(the proven cardinality range), checked against brute force over all 2^n actions."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import make
from scenarios.constraints.base import rows_model


def _brute_force(model) -> set[tuple[int, ...]]:
    return {a for a in itertools.product((0, 1), repeat=model.n_actions) if model.is_feasible(np.array(a))}


@given(st.integers(2, 9), st.integers(0, 10_000), st.booleans())
@settings(max_examples=40, deadline=None)
def test_enumeration_and_count_bound_match_brute_force(n, seed, exact):
    """Rows: a cardinality window (exact or a range) and a random knapsack row, not downward closed."""
    rng = np.random.default_rng(seed)
    lo = int(rng.integers(0, n + 1))
    hi = lo if exact else int(rng.integers(lo, n + 1))
    weights = rng.uniform(0.0, 2.0, n)
    coefs = np.stack([np.ones(n), weights])
    model = rows_model("t", n, coefs, [lo, 0.0], [hi, float(rng.uniform(0.5, 2.0 * n))], ["card", "cost"], False)
    truth = _brute_force(model)
    if not truth:
        return
    listed = model.enumerate()
    assert {tuple(int(v) for v in row) for row in listed} == truth and len(listed) == len(truth)
    least, most = model.cardinality_range()
    assert least <= min(sum(a) for a in truth) and most >= max(sum(a) for a in truth)
    assert model.count_upper_bound() >= len(truth)


def test_exactly_b_interventions_at_twenty_arms_are_listed():
    """overlapping_reach at J = 20: exactly 4 of 27 interventions, C(27, 4) = 17,550 actions, all listed (the
    generic path refused sets of more than 22 entries that are not downward closed)."""
    model = make("overlapping_reach", n_arms=20, budget=4, seed=0).instance.action_model()
    assert model.cardinality_range() == (4, 4) and model.count_upper_bound() == 17_550
    listed = model.enumerate(max_count=20_000)
    assert listed.shape == (17_550, 27) and np.all(listed.sum(axis=1) == 4)
    assert len({row.tobytes() for row in listed}) == 17_550
