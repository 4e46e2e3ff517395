"""Planner decisions at scale: the dominance reduction (engine/planners/reduction.py) keeps the decision MILP's
optimum (= the full MILP's = enumeration) on random instances with random, negative and tied gains, every
returned action is feasible in the full ActionModel, and decision statuses are honest."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandits.restless.whittle import whittle_indices
from engine.planners import make_planner
from engine.planners import whittle as whittle_module
from engine.planners.arm_values import ControlStructure
from engine.planners.policy import PlannerPolicy
from engine.planners.reduction import (
    ArmReduction,
    ClassCounts,
    CountCertificate,
    InterchangeableArms,
    top_per_class,
)
from scenarios import make
from scenarios.cormab.capacity import CapacityInstance
from scenarios.cormab.instance import N_STATES, generate_arms
from scenarios.cormab.scheduling import SchedulingInstance
from solvers.backends.highs import HighsSolver
from solvers.solution import HEURISTIC, OPTIMAL, TIME_LIMIT, Solution, relative_gap

GAINS = st.one_of(st.integers(-3, 4).map(float), st.floats(-2.0, 3.0, allow_nan=False, width=32))


@st.composite
def capacity_instances(draw) -> CapacityInstance:
    J = draw(st.integers(1, 10))
    W = draw(st.integers(1, 3))
    return CapacityInstance(
        arms=generate_arms(J, W, draw(st.integers(0, 1000)), 5),
        costs=draw(st.lists(st.integers(1, 4), min_size=J, max_size=J)),
        capacities=draw(st.lists(st.integers(0, 7), min_size=W, max_size=W)),
    )


@st.composite
def scheduling_instances(draw) -> SchedulingInstance:
    J = draw(st.integers(1, 10))
    W = draw(st.integers(1, 3))
    S = draw(st.integers(1, 4))
    slots = st.lists(st.integers(0, S - 1), min_size=1, max_size=S, unique=True)
    return SchedulingInstance(
        arms=generate_arms(J, W, draw(st.integers(0, 1000)), 5),
        n_slots=S,
        budget=draw(st.integers(0, 4)),
        arm_slots=[draw(slots) for _ in range(J)],
        worker_slots=[draw(slots) for _ in range(W)],
        assignments_per_pull=draw(st.integers(1, 2)),
    )


def _check_reduction(instance, gains: np.ndarray) -> None:
    assert isinstance(instance, InterchangeableArms)
    model = instance.action_model()
    solver = HighsSolver(mip_rel_gap=1e-9)
    full = solver.solve(model.milp(gains), time_limit=30)
    assert full.status == OPTIMAL
    best = float((model.enumerate() @ gains).max())
    tol = 1e-6 * max(1.0, abs(best))
    assert full.objective == pytest.approx(best, abs=tol)
    assert isinstance(instance, ClassCounts)
    variants = {"template": None, "counts": instance.class_count_rows()}
    if isinstance(instance, CapacityInstance):
        variants["counts per worker"] = instance.class_count_rows(max_patterns=0)
    for name, rows in variants.items():
        reduction = ArmReduction(model, *instance.interchangeable_classes(), count_rows=rows)
        a, sol = reduction.solve(HighsSolver(mip_rel_gap=1e-9), gains, 0.0, 30.0)
        assert sol.status == OPTIMAL, name
        assert model.is_feasible(a), name  # feasible in the full ActionModel
        assert sol.objective == pytest.approx(best, abs=tol), name  # the reduced MILP's optimum is the full one
        assert float(a @ gains) == pytest.approx(best, abs=tol), name  # and the mapped action attains it
        if name == "counts" and isinstance(instance, CountCertificate):  # the count solution certifies a
            aux = instance.count_certificate(a, reduction.count_aux(sol.x))
            assert aux is not None and model.feasible_with(a, aux)
    # the bounds variant (dominated arms fixed by column bounds in the full MILP) agrees
    fixed = HighsSolver(mip_rel_gap=1e-9).solve(reduction.bounds_milp(gains, 0.0, model.milp(gains)), time_limit=30)
    assert fixed.objective == pytest.approx(best, abs=tol)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_capacity_reduction_keeps_the_optimum(data):
    instance = data.draw(capacity_instances())
    gains = np.array(data.draw(st.lists(GAINS, min_size=instance.n_arms, max_size=instance.n_arms)))
    _check_reduction(instance, gains)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_scheduling_reduction_keeps_the_optimum(data):
    instance = data.draw(scheduling_instances())
    gains = np.array(data.draw(st.lists(GAINS, min_size=instance.n_arms, max_size=instance.n_arms)))
    _check_reduction(instance, gains)


def test_top_per_class_keeps_positive_best_with_ties_by_index():
    gains = np.array([1.0, 3.0, -1.0, 3.0, 0.0, 2.0, 5.0])
    cls = np.array([0, 0, 0, 0, 1, 1, 1])
    arms, rank = top_per_class(gains, cls, np.array([2, 5]))
    assert arms.tolist() == [1, 3, 6, 5]  # class 0: the two 3.0s (lower index first); class 1: 5.0, 2.0 (not 0.0)
    assert rank.tolist() == [0, 1, 0, 1]


def test_hooks_bound_what_a_feasible_action_pulls():
    inst = CapacityInstance(arms=generate_arms(4, 2, 0, 5), costs=[2, 3, 2, 5], capacities=[5, 4])
    cls, most = inst.interchangeable_classes()
    assert cls.tolist() == [0, 1, 0, 2] and most.tolist() == [2 + 2, 1 + 1, 1]
    sched = SchedulingInstance(
        arms=generate_arms(3, 1, 0, 5),
        n_slots=3,
        budget=5,
        arm_slots=[[0, 1], [1, 0], [2]],
        worker_slots=[[0, 1]],
        assignments_per_pull=2,
    )
    cls, most = sched.interchangeable_classes()
    assert cls[0] == cls[1] != cls[2]
    assert most[cls[0]] == 1 and most[cls[2]] == 0  # one worker in slots {0, 1}: two nodes, K = 2


@pytest.mark.parametrize("scenario", ["capacity", "scheduling"])
@pytest.mark.parametrize("planner", ["whittle", "lagrangian"])
def test_reduced_planner_decisions_equal_full_ones(scenario, planner):
    env = make(scenario, n_arms=24, budget=4, seed=3)
    fitted = make_planner(planner, env.instance)
    full = PlannerPolicy(scenario, env.instance, fitted, reduce=False)
    reduced = PlannerPolicy(scenario, env.instance, fitted)
    bounds = PlannerPolicy(scenario, env.instance, fitted, reduce="bounds")
    template = PlannerPolicy(scenario, env.instance, fitted, reduce="template")
    assert reduced._reduction is not None and full._reduction is None
    rng = np.random.default_rng(0)
    for _ in range(8):
        state = np.concatenate([rng.integers(0, N_STATES, 24), [rng.integers(1, env.instance.horizon + 1)]])
        want = full.decide(state)
        for policy in (reduced, bounds, template):
            got = policy.decide(state)
            assert got.status == OPTIMAL and want.status == OPTIMAL
            assert got.value == pytest.approx(want.value, rel=1e-6, abs=1e-6)
            assert env.action_model().is_feasible(got.action)
            assert float(fitted.score(state[:-1], int(state[-1]), got.action[None])[0]) == pytest.approx(got.value)


def test_a_swapped_model_voids_the_reduction():
    env = make("capacity", n_arms=12, budget=3, seed=0)
    policy = PlannerPolicy("capacity", env.instance, "whittle")
    policy.model = policy.model.with_constraints(lambda m: [m.a[0] + m.a[1] <= 1])
    rng = np.random.default_rng(1)
    for _ in range(5):
        d = policy.decide(np.concatenate([rng.integers(0, N_STATES, 12), [5]]))
        assert d.action[0] + d.action[1] <= 1 and d.status == OPTIMAL


@pytest.mark.parametrize("reduce", [False, True])
def test_time_limited_decisions_are_flagged_with_bound_and_gap(reduce):
    env = make("capacity", n_arms=300, budget=20, seed=0)
    policy = PlannerPolicy("capacity", env.instance, "whittle", time_limit=1e-3, reduce=reduce)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(4):
        d = policy.decide(np.concatenate([rng.integers(0, N_STATES, 300), [rng.integers(1, 21)]]))
        seen.add(d.status)
        assert env.action_model().is_feasible(d.action)
        if d.status == OPTIMAL:
            assert d.gap <= 1e-6
        else:
            assert d.status in (TIME_LIMIT, HEURISTIC)
            assert np.isfinite(d.bound) and d.bound >= d.value - 1e-9
            assert d.gap == pytest.approx(relative_gap(d.value, d.bound))
    if not reduce:  # the reduced model may well be proved within 1 ms
        assert seen - {OPTIMAL}, "a 1 ms limit on the full MILP at J = 300 should not prove every decision"


def test_no_incumbent_falls_back_to_greedy_flagged_heuristic_with_a_bound(monkeypatch):
    env = make("capacity", n_arms=200, budget=10, seed=2)
    policy = PlannerPolicy("capacity", env.instance, "lagrangian")
    monkeypatch.setattr(policy._solver, "solve", lambda *a, **k: Solution(None, -np.inf, np.inf, np.inf, HEURISTIC, 0))
    state = np.concatenate([np.random.default_rng(0).integers(0, N_STATES, 200), [7]])
    d = policy.decide(state)
    assert d.status == HEURISTIC and d.selector == "greedy"
    assert env.action_model().is_feasible(d.action)
    assert np.isfinite(d.bound) and d.bound >= d.value and d.gap == pytest.approx(relative_gap(d.value, d.bound))
    exact = PlannerPolicy("capacity", env.instance, policy.planner).decide(state)
    assert exact.status == OPTIMAL and d.value <= exact.value + 1e-9 <= d.bound + 2e-9


# ------------------------------------------------------------------------------ programme scale (issue 18)
def test_control_structure_is_sparse_and_pull_is_structural():
    pull = ControlStructure.of(make("capacity", n_arms=50, budget=3, seed=0).instance)
    assert sp.issparse(pull.weights) and pull.weights.nnz == 50 and pull.is_pull
    levels = ControlStructure.of(make("budgeted", n_arms=30, budget=4, seed=0, n_levels=2).instance)
    assert sp.issparse(levels.weights) and levels.weights.shape == (30, 60) and not levels.is_pull
    actions = np.zeros((2, 60), dtype=np.int64)
    actions[1, [1, 2]] = 1  # arm 0 at level 2, arm 1 at level 1
    assert levels.value_index(actions)[:, :3].tolist() == [[0, 0, 0], [2, 1, 0]]


def test_planner_path_builds_no_dense_square_array(monkeypatch):
    """At J = 5,000 a dense J x J float array is 191 MiB (95 MiB in 32 bits); set-up and a decision peak at about
    30 MiB (capacity, 5 workers) and 15 MiB (budgeted)."""
    J = 5000
    monkeypatch.setattr(whittle_module, "CHUNK", 256)  # the index search's work arrays scale with the chunk
    for scenario, budget in (("capacity", 5), ("budgeted", 500)):
        env = make(scenario, n_arms=J, budget=budget, seed=0)
        state = np.concatenate([np.random.default_rng(0).integers(0, env.instance.n_states, J), [7]])
        tracemalloc.start()
        try:
            policy = PlannerPolicy(scenario, env.instance, "whittle")
            d = policy.decide(state)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert d.status == OPTIMAL and policy.model.is_feasible(d.action)
        assert peak < 64 * 2**20, f"{scenario}: planner path peaked at {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(("scenario", "budget"), [("capacity", 20), ("scheduling", 20), ("budgeted", 200)])
def test_decisions_at_2000_arms_are_feasible_and_certified(scenario, budget):
    J = 2000
    env = make(scenario, n_arms=J, budget=budget, seed=1)
    policy = PlannerPolicy(scenario, env.instance, "whittle", time_limit=20.0)
    rng = np.random.default_rng(2)
    for _ in range(3):
        state = np.concatenate([rng.integers(0, env.instance.n_states, J), [rng.integers(1, env.instance.horizon + 1)]])
        d = policy.decide(state)
        assert env.action_model().is_feasible(d.action)
        assert d.status == OPTIMAL and np.isfinite(d.bound) and d.bound >= d.value - 1e-9
        assert d.gap == pytest.approx(relative_gap(d.value, d.bound), abs=1e-9) and d.gap <= 1e-6
        assert float(policy.planner.score(state[:-1], int(state[-1]), d.action[None])[0]) == pytest.approx(d.value)
    if scenario == "budgeted":  # the exact top-B oracle decides, and agrees with the domain MILP
        assert d.reason == "exact budget oracle"
        milp = PlannerPolicy(scenario, env.instance, policy.planner, reduce=False).decide(state)
        assert milp.reason == "" and milp.value == pytest.approx(d.value, rel=1e-6)


def test_whittle_indices_in_chunks_and_over_distinct_arms_equal_the_whole_computation(monkeypatch):
    env = make("budgeted", n_arms=12, budget=3, seed=4)
    P, R, C, _ = env.instance.arms.arrays()
    rep = np.r_[np.arange(12), [3, 3, 7]]  # three repeated arms
    P, R, C = P[rep], R[rep], C[rep]
    whole = whittle_indices((P, R, C), discount=1.0, horizon=env.instance.horizon, check=False).raw
    monkeypatch.setattr(whittle_module, "CHUNK", 5)
    first, inverse = whittle_module.distinct_arms(P, R, C)
    assert first.size == 12 and np.array_equal(inverse[12:], inverse[[3, 3, 7]])
    np.testing.assert_allclose(whittle_module.chunked_raw_indices(P, R, C, env.instance.horizon), whole, atol=1e-9)
