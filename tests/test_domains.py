"""Scheduling, routing and multiple-interventions domains: oracles agree with the rows, generators,
JSON round trips, environments, London tube graphs, walks and the exact myopic MILP."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import InfeasibleActionError, InvalidInputError, make
from scenarios.cormab.multi_intervention import MultiInterventionInstance
from scenarios.cormab.routing import TUBE_BUDGETS, TUBE_SOURCES, RoutingInstance
from scenarios.cormab.scheduling import SchedulingInstance
from solvers.backends.highs import HighsSolver

TUBE = Path(os.environ.get("REDWOOD_TUBE_DATA", Path(__file__).resolve().parents[2] / "shared/data/london_tube"))
needs_tube = pytest.mark.skipif(not TUBE.exists(), reason="London tube data not available")
DOMAINS = ["scheduling", "routing", "multi_intervention"]

SMALL = {
    "scheduling": SchedulingInstance.generate(n_arms=10, budget=3, seed=1),
    "routing": RoutingInstance.generate(n_arms=12, budget=3, seed=1),
    "multi_intervention": MultiInterventionInstance.generate(n_arms=12, budget=3, seed=1),
}
if TUBE.exists():
    SMALL["tube20"] = RoutingInstance.from_edge_csv(TUBE / "london_tube_20.csv")
MODELS = {name: inst.action_model() for name, inst in SMALL.items()}
PLAIN = {name: dataclasses.replace(m, oracle=None, _cache={}, _solver=None) for name, m in MODELS.items()}


def _satisfies_rows(model, a: np.ndarray, y: np.ndarray) -> bool:
    z = np.concatenate([a, y])
    v = model.A @ z
    bounds = np.all(y >= model.aux_lower - 1e-9) and np.all(y <= model.aux_upper + 1e-9)
    return bool(bounds and np.all(v >= model.row_lower - 1e-9) and np.all(v <= model.row_upper + 1e-9))


# ------------------------------------------------------------------------ oracle vs rows (MILP)
@pytest.mark.parametrize("name", list(SMALL))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_oracle_agrees_with_rows(name: str, data) -> None:
    model, plain = MODELS[name], PLAIN[name]
    n = model.n_actions
    density = data.draw(st.floats(0.05, 0.6))
    bits = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    a = (np.array(bits) < density).astype(np.int64)
    feasible = model.oracle.is_feasible(a)
    assert feasible == plain.is_feasible(a)
    certificate = model.oracle.certificate(a)
    assert (certificate is not None) == feasible
    if feasible:
        assert _satisfies_rows(model, a, certificate)


@pytest.mark.parametrize("name", list(SMALL))
def test_samples_feasible_and_maximal(name: str) -> None:
    model, plain = MODELS[name], PLAIN[name]
    rng = np.random.default_rng(0)
    for _ in range(15):
        a = model.sample(rng)
        assert plain.is_feasible(a)
        assert _satisfies_rows(model, a, model.certificate(a))
        if model.downward_closed:  # maximal: no single arm can be added
            for j in np.flatnonzero(a == 0):
                b = a.copy()
                b[j] = 1
                assert not model.is_feasible(b)


# ------------------------------------------------------------------------------- generators
def test_scheduling_generator_leans() -> None:
    inst = SchedulingInstance.generate(n_arms=400, budget=100, seed=3)
    arm = np.mean([s for slots in inst.arm_slots for s in slots])
    worker = np.mean([s for slots in inst.worker_slots for s in slots])
    assert arm > 2.2 > 1.8 > worker  # arms late, workers early
    assert all(len(s) == 2 for s in inst.arm_slots) and all(len(s) == 3 for s in inst.worker_slots)
    assert len(inst.worker_slots) == 100


def test_multi_intervention_structure() -> None:
    inst = MultiInterventionInstance.generate(n_arms=20, budget=5, seed=0)
    W = np.asarray(inst.weights)
    assert W.shape == (20, 10) and set(np.unique(W)) <= {0, 3}
    assert inst.n_actions == 10
    assert np.array_equal(inst.action_arm_links(), (W.T > 0).astype(float))
    model = inst.action_model()
    assert not model.downward_closed
    assert not model.is_feasible(np.zeros(10, dtype=np.int64))  # sum a = B exactly
    # passive arms: x = 0 gives phi = 0.01 exactly; batched and single actions agree
    acts = np.array([model.sample(np.random.default_rng(k)) for k in range(4)])
    batched = inst.up_probability(acts)
    assert batched.shape == (4, 20)
    assert np.allclose(batched[2], inst.up_probability(acts[2]))
    assert np.allclose(inst.up_probability(np.zeros(10)), 0.01)
    # a full group (3 actions on the same 3 arms) moves a good arm far more than one action alone
    x = np.array([0.0, 3.0, 9.0])
    good = inst.response(np.repeat(x[:, None], 20, axis=1))[:, :5]
    assert np.all(good[1] - good[0] < 0.05) and np.all(good[2] > 0.5)


def test_multi_intervention_myopic_milp_is_exact() -> None:
    inst = MultiInterventionInstance.generate(n_arms=20, budget=5, seed=2)
    n = inst.n_actions
    acts = np.array([np.isin(np.arange(n), c) for c in itertools.combinations(range(n), 5)], dtype=np.int64)
    rng = np.random.default_rng(0)
    solver = HighsSolver(mip_rel_gap=1e-9)
    for _ in range(4):
        states = rng.integers(0, 4, 20)
        milp = inst.myopic_milp(states)
        sol = solver.solve(milp)
        best = inst.expected_reward(states[None, :], acts).max()
        a = np.round(sol.x[:n]).astype(np.int64)
        assert sol.objective == pytest.approx(best, abs=1e-7)
        assert float(inst.expected_reward(states, a)) == pytest.approx(best, abs=1e-7)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("scheduling", {"budget": 0}, "budget"),
        ("routing", {"n_arms": 0}, "n_arms"),
        ("multi_intervention", {"budget": 50}, "budget"),
    ],
)
def test_bad_generator_params_name_the_field(name: str, params: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        make(name, **params)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("name", "patch", "field"),
    [
        ("scheduling", {"arm_slots": [[9]] * 10}, "arm_slots"),
        ("routing", {"edges": [[0, 99]]}, "edges"),
        ("routing", {"source": 50}, "source"),
        ("multi_intervention", {"alpha": [2.0] * 12}, "alpha"),
    ],
)
def test_bad_instances_name_the_field(name: str, patch: dict, field: str) -> None:
    data = json.loads(SMALL[name].model_dump_json()) | patch
    with pytest.raises(InvalidInputError) as info:
        make(name, instance=data)
    assert field in info.value.field


# ----------------------------------------------------------------------------- JSON and env
@pytest.mark.parametrize("name", DOMAINS)
def test_json_round_trip(name: str) -> None:
    inst = SMALL[name]
    back = type(inst).model_validate_json(inst.model_dump_json())
    assert back == inst
    m1, m2 = inst.action_model(), back.action_model()
    assert (m1.A != m2.A).nnz == 0 and m1.row_names == m2.row_names
    env = make(name, instance=inst.model_dump_json())
    assert env.instance == inst


@pytest.mark.parametrize("name", DOMAINS)
def test_env_episode(name: str) -> None:
    env = make(name, n_arms=20, budget=5, seed=0)
    model = env.action_model()
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (21,) and obs[-1] == 20
    total, steps, terminated = 0.0, 0, False
    while not terminated:
        obs, reward, terminated, _, info = env.step(model.sample(rng))
        total += reward
        steps += 1
        assert np.isfinite(info["expected_reward"])
    assert steps == 20 and obs[-1] == 0 and total > 0
    env.reset(seed=1)
    bad = np.ones(model.n_actions, dtype=np.int64)  # every arm / intervention at once breaks the budget
    with pytest.raises(InfeasibleActionError) as info:
        env.step(bad)
    assert "budget" in info.value.violations


# ------------------------------------------------------------------------------ London tube
@needs_tube
@pytest.mark.parametrize("J", [20, 40, 60, 80, 100])
def test_london_tube_loads(J: int) -> None:
    inst = RoutingInstance.from_edge_csv(TUBE / f"london_tube_{J}.csv", seed=0)
    assert inst.n_arms == J and inst.source == TUBE_SOURCES[J] and inst.budget == TUBE_BUDGETS[J]
    assert len(inst.edges) == {20: 29, 40: 56}.get(J, len(inst.edges))
    model = inst.action_model()
    rng = np.random.default_rng(J)
    for _ in range(3):
        a = model.sample(rng)
        assert 1 <= a.sum() <= inst.budget
        _check_walk(inst, a)


def _check_walk(inst: RoutingInstance, a: np.ndarray) -> None:
    """The walk exists in the graph: every step an edge or a wait, closed at the source, visiting the pulls."""
    walk = inst.walk(a)
    edges = {frozenset(e) for e in inst.edges}
    assert len(walk) == inst.walk_length + 1
    assert walk[0] == walk[-1] == inst.source
    assert all(u == v or frozenset((u, v)) in edges for u, v in itertools.pairwise(walk))
    assert set(np.flatnonzero(a).tolist()) <= set(walk)
    model = inst.action_model()
    assert _satisfies_rows(model, a, model.certificate(a))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 25), budget=st.integers(1, 5))
def test_every_pulled_arm_lies_on_a_real_walk(seed: int, n: int, budget: int) -> None:
    inst = RoutingInstance.generate(n_arms=n, budget=budget, seed=seed)
    a = inst.action_model().sample(np.random.default_rng(seed))
    _check_walk(inst, a)


def test_no_teleport_far_nodes_are_rejected() -> None:
    """A node more than B hops from the source cannot be pulled, although the budget allows it: the
    reference's self-loop-free rows let idle steps teleport there."""
    path = RoutingInstance.from_networkx(nx.path_graph(8), source=0, budget=2)
    model = path.action_model()
    a = np.zeros(8, dtype=np.int64)
    a[2] = 1
    assert model.is_feasible(a)  # 0 -> 1 -> 2 -> 1 -> 0
    a[2], a[3] = 0, 1
    assert not model.is_feasible(a)
    assert "visit[3]" in model.violations(a)
    a[3], a[1], a[2] = 0, 1, 1
    assert path.walk(a) == [0, 1, 2, 1, 0]
    with pytest.raises(InfeasibleActionError):
        path.walk(np.eye(8, dtype=np.int64)[5])


def test_routing_exact_tour_on_a_cycle() -> None:
    """On a cycle the best tour goes round; feasibility right at the limit agrees with the rows."""
    inst = RoutingInstance.from_networkx(nx.cycle_graph(10), source=0, budget=5)
    model = inst.action_model()
    plain = dataclasses.replace(model, oracle=None, _cache={}, _solver=None)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = (rng.uniform(size=10) < 0.4).astype(np.int64)
        assert model.oracle.is_feasible(a) == plain.is_feasible(a)
    a = np.zeros(10, dtype=np.int64)
    a[[3, 5, 7]] = 1  # all the way round: 10 moves
    assert model.is_feasible(a)
    _check_walk(inst, a)


@needs_tube
def test_held_karp_matches_brute_force() -> None:
    oracle = RoutingInstance.from_edge_csv(TUBE / "london_tube_40.csv").action_model().oracle
    rng = np.random.default_rng(0)
    for _ in range(25):
        nodes = rng.choice(40, rng.integers(1, 7), replace=False).tolist()
        best = min(oracle.tour_length(list(p)) for p in itertools.permutations(nodes))
        order = oracle.exact_tour(nodes, cap=1000)
        assert sorted(order) == sorted(nodes) and oracle.tour_length(order) == best
        assert oracle.exact_tour(nodes, cap=best - 1) is None


# ----------------------------------------------------------------- cheap feasibility paths
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 14))
def test_routing_quick_feasibility_agrees_with_the_exact_oracle(seed: int, size: int) -> None:
    """quick_feasible is either None (not settled cheaply) or the exact answer; greedy's filter is sound."""
    inst = RoutingInstance.generate(n_arms=40, budget=14, seed=seed % 7)
    model = inst.action_model()
    rng = np.random.default_rng(seed)
    a = np.zeros(40, dtype=np.int64)
    a[rng.choice(40, size=size, replace=False)] = 1
    exact = model.oracle.route(a) is not None
    quick = model.oracle.quick_feasible(a)
    assert quick is None or quick == exact
    fresh = inst.action_model()
    assert not fresh.quickly_extendable(a) or exact


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_certificate_check_accepts_certificates_and_rejects_broken_ones(seed: int) -> None:
    for name in ("routing", "scheduling"):
        model = make(name, n_arms=12, budget=3, seed=seed % 5).action_model()
        a = model.sample(np.random.default_rng(seed))
        y = model.certificate(a)
        assert model.feasible_with(a, y)
        if y.size:
            broken = y.copy()
            broken[np.flatnonzero(broken > 0.5)[:1]] = 0.0  # drop one unit of a used auxiliary
            z = np.concatenate([a, broken])
            rows_hold = np.all(model.A @ z >= model.row_lower - 1e-6) and np.all(model.A @ z <= model.row_upper + 1e-6)
            assert model.feasible_with(a, broken) == bool(rows_hold)
