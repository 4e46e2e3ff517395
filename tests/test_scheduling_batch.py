"""Scheduling batches: the oracle's vectorised argmax and margins against enumeration, and planner batches that
decide every state exactly as a single call does (near ties included)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solvers.oracles.scheduling as scheduling_oracle
from engine import Engine
from engine.planners.batch import MAX_SCORING_ENTRIES, batch_oracle
from engine.planners.policy import PlannerPolicy
from scenarios import make
from scenarios.action_model import ActionModel
from solvers.oracles.scheduling import SchedulingOracle


@cache
def _model(n_arms: int, budget: int, seed: int) -> tuple[ActionModel, np.ndarray, np.ndarray]:
    """A small scheduling model, its feasible actions and the class (slot set) of each arm."""
    env = make("scheduling", n_arms=n_arms, budget=budget, seed=seed)
    model = env.action_model()
    return model, model.enumerate(), env.instance.interchangeable_classes()[0]


def _expected_margin(w: np.ndarray, best: np.ndarray, actions: np.ndarray, cls: np.ndarray) -> float:
    """By enumeration: the clipped value of ``best`` minus the best clipped value of an action whose pulls of
    positive-weight arms per class differ from ``best``'s."""
    clipped = actions @ np.maximum(w, 0.0)
    one_hot = cls[:, None] == np.arange(cls.max() + 1)[None, :]
    positive_counts = (actions * (w > 0)) @ one_hot
    mine = (best * (w > 0)) @ one_hot
    other = np.any(positive_counts != mine, axis=1)
    return float(best @ np.maximum(w, 0.0) - (clipped[other].max() if other.any() else -np.inf))


grid = st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])  # coarse weights: many exact ties


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_arms=st.integers(4, 10),
    budget=st.integers(1, 3),
    seed=st.integers(0, 4),
    rows=st.lists(st.lists(grid | st.floats(-3.0, 3.0), min_size=10, max_size=10), min_size=1, max_size=6),
)
def test_argmax_batch_is_the_single_argmax_and_margins_match_enumeration(n_arms, budget, seed, rows):
    model, actions, cls = _model(n_arms, budget, seed)
    oracle = SchedulingOracle(model)
    w = np.asarray(rows)[:, :n_arms]
    batch, margins = oracle.argmax_margin_batch(w)
    assert np.array_equal(batch, oracle.argmax_batch(w))
    for i, row in enumerate(w):
        single = np.round(oracle.maximise(row).x[:n_arms]).astype(int)
        assert batch[i].tolist() == single.tolist()
        assert model.is_feasible(batch[i])
        assert batch[i] @ row == pytest.approx((actions @ row).max(), abs=1e-9)
        expected = _expected_margin(row, batch[i], actions, cls)
        assert margins[i] == pytest.approx(expected, abs=1e-9) if np.isfinite(expected) else margins[i] == np.inf


def test_rows_are_scored_in_chunks_with_the_same_result(monkeypatch):
    model, _, _ = _model(10, 3, 1)
    w = np.random.default_rng(0).normal(size=(50, 10))
    whole = SchedulingOracle(model).argmax_margin_batch(w)
    monkeypatch.setattr(scheduling_oracle, "CHUNK_ENTRIES", 1)  # one row per chunk
    chunked = SchedulingOracle(model).argmax_margin_batch(w)
    assert np.array_equal(whole[0], chunked[0]) and np.array_equal(whole[1], chunked[1])
    with pytest.raises(ValueError, match="weights"):
        SchedulingOracle(model).argmax_batch(w[:, :4])


def _states(policy: PlannerPolicy, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts, H = policy.instance.arms.state_counts, policy.instance.horizon
    return np.column_stack([rng.integers(0, counts, size=(n, len(counts))), rng.integers(1, H + 1, size=n)])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_arms=st.integers(4, 12),
    budget=st.integers(1, 4),
    n_slots=st.integers(3, 6),
    seed=st.integers(0, 50),
    planner=st.sampled_from(["whittle", "lagrangian"]),
)
def test_planner_batches_decide_what_single_calls_decide(n_arms, budget, n_slots, seed, planner):
    env = make("scheduling", n_arms=n_arms, budget=budget, seed=seed, n_slots=n_slots)
    policy = Engine.plan(env, planner)
    states = _states(policy, 40, seed)
    for state, d in zip(states, policy.decide_batch(states), strict=True):
        single = policy.decide(state)
        assert d.action.tolist() == single.action.tolist(), f"state {state.tolist()}"
        assert d.value == pytest.approx(single.value, abs=1e-9)
        assert d.assignment == env.action_model().assignment(d.action)


def test_exact_ties_between_classes_are_left_to_the_single_call():
    """Four identical arms, two slot-set classes, one pull: arms 0 and 1 (different classes) in one state tie."""
    data = make("scheduling", n_arms=4, budget=1, seed=0).instance.model_dump(mode="json")
    for key in ("transitions", "arrival_rewards", "initial", "train_initial"):
        data["arms"][key] = [data["arms"][key][0]] * 4
    data.update(n_slots=2, arm_slots=[[0], [1], [0], [1]], worker_slots=[[0, 1]], assignments_per_pull=1)
    env = make("scheduling", instance=data)
    policy = Engine.plan(env, "whittle")
    tied = np.array([[1, 1, 0, 0, 10], [2, 2, 0, 1, 7]])  # arms 0 and 1 best and equal
    clear = np.array([[2, 1, 0, 0, 10], [0, 0, 2, 1, 7]])
    batch = policy.decide_batch(np.vstack([tied, clear]))
    assert ["vectorised" in d.reason for d in batch] == [False, False, True, True]
    for state, d in zip(np.vstack([tied, clear]), batch, strict=True):
        assert d.action.tolist() == policy.decide(state).action.tolist()


def test_instances_with_too_many_count_vectors_batch_state_by_state():
    """J = 50, B = 10: about 10^5 count vectors x 10 classes per state; one reduced MILP per state is cheaper."""
    env = make("scheduling", n_arms=50, budget=10, seed=0)
    policy = Engine.plan(env, "whittle")
    oracle = SchedulingOracle(policy.model)
    assert oracle.scoring_entries() > MAX_SCORING_ENTRIES and batch_oracle(policy) is None
    states = _states(policy, 3, 0)
    batch = policy.decide_batch(states)
    assert not any("vectorised" in (d.reason or "") for d in batch)
    assert [d.action.tolist() for d in batch] == [policy.decide(s).action.tolist() for s in states]
    small = Engine.plan(make("scheduling", n_arms=20, budget=5, seed=0), "whittle")
    assert batch_oracle(small) is not None and batch_oracle(small) is batch_oracle(small)  # built once per model
