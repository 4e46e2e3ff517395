import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandits.action_models import budget_action_model
from bandits.combinatorial import ActionModelOracle, KnapsackOracle, MatchingOracle, TopKOracle
from scenarios.cormab.capacity import CapacityInstance
from scenarios.errors import InvalidInputError
from tests.bandits.brute import best_subset

weights = st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(w=weights, data=st.data())
def test_top_k_matches_enumeration(w, data):
    k = data.draw(st.integers(1, len(w)))
    oracle = TopKOracle(len(w), k)
    res = oracle.solve(w)
    best, _ = best_subset(w, lambda b: sum(b) == k)
    assert res.exact and oracle.is_feasible(res.action) and res.value == pytest.approx(best, abs=1e-9)
    assert np.array_equal(oracle.solve_batch(np.array([w, w]))[1], res.action)


@settings(max_examples=40, deadline=None)
@given(w=weights, data=st.data())
def test_knapsack_dp_and_milp_match_enumeration(w, data):
    sizes = data.draw(st.lists(st.integers(0, 5), min_size=len(w), max_size=len(w)))
    cap = data.draw(st.integers(0, 12))
    best, _ = best_subset(w, lambda b: sum(s for s, x in zip(sizes, b, strict=True) if x) <= cap)
    dp = KnapsackOracle(sizes, cap)
    milp = KnapsackOracle(np.asarray(sizes) + 1e-4, cap + 1e-3)  # fractional sizes (same feasible sets): MILP
    assert dp.method == "dp" and milp.method == "milp"
    for oracle in (dp, milp):
        res = oracle.solve(w)
        assert res.exact and oracle.is_feasible(res.action)
        assert res.value == pytest.approx(max(best, 0.0), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_matching_matches_enumeration(data):
    n_left, n_right = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    edges = data.draw(
        st.lists(st.tuples(st.integers(0, n_left - 1), st.integers(0, n_right - 1)), min_size=1, max_size=7)
    )
    w = data.draw(st.lists(st.floats(-1, 2, allow_nan=False, width=32), min_size=len(edges), max_size=len(edges)))
    oracle = MatchingOracle(n_left, n_right, edges)
    res = oracle.solve(w)
    best, _ = best_subset(w, lambda b: oracle.is_feasible(np.array(b)))
    assert res.exact and oracle.is_feasible(res.action) and res.value == pytest.approx(best, abs=1e-6)


def test_action_model_oracle_matches_enumeration():
    inst = CapacityInstance.generate(n_arms=7, budget=2, seed=1)
    model = inst.action_model()
    oracle = ActionModelOracle(model)
    feasible = model.enumerate()
    rng = np.random.default_rng(0)
    for _ in range(5):
        w = rng.normal(size=7)
        res = oracle.solve(w)
        assert model.is_feasible(res.action) and res.exact
        assert res.value == pytest.approx((feasible @ w).max(), abs=1e-6)
    budget = ActionModelOracle(budget_action_model(5, 2))
    assert budget.solve([1, -1, 3, 2, 0.5]).action.tolist() == [0, 0, 1, 1, 0]


def test_oracle_validation():
    with pytest.raises(InvalidInputError):
        TopKOracle(3, 4)
    with pytest.raises(InvalidInputError):
        TopKOracle(3, 2).solve([1.0, np.nan, 2.0])
    with pytest.raises(InvalidInputError):
        KnapsackOracle([1, -2], 3)
    with pytest.raises(InvalidInputError):
        MatchingOracle(2, 2, [[0, 3]])
