"""Exact combinatorial oracles (solvers/oracles) against enumeration and the MILP, and the MIP selector's oracle
path against its MILP path, with honest statuses."""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors.affine import affine_form
from engine.sequoia.selectors.enumerate import EnumerateSelector
from engine.sequoia.selectors.mip import MipSelector
from engine.sequoia.state_q import StateQ
from scenarios import make
from scenarios.action_model import ActionModel
from solvers.backends.highs import HighsSolver
from solvers.formulations.network_milp import max_cardinality
from solvers.oracles import oracle_for
from solvers.oracles.capacity import CapacityOracle
from solvers.solution import OPTIMAL, relative_gap

DOMAINS = ("capacity", "scheduling", "routing", "coverage", "multi_intervention")
FIXTURES = Path(__file__).resolve().parent / "regression" / "fixtures"


@cache
def _small(name: str, n_arms: int, budget: int, seed: int) -> tuple[ActionModel, np.ndarray]:
    model = make(name, n_arms=n_arms, budget=budget, seed=seed).action_model()
    return model, model.enumerate()


@cache
def _large(name: str, seed: int) -> ActionModel:
    return make(name, n_arms=20, budget=5, seed=seed).action_model()


weights_of = st.lists(st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False), min_size=20, max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(DOMAINS),
    n_arms=st.integers(6, 10),  # multi_intervention has about n_arms / 2 interventions: B <= 3 fits
    budget=st.integers(1, 3),
    seed=st.integers(0, 4),
    raw=weights_of,
    offset=st.floats(-3.0, 3.0),
)
def test_each_oracle_equals_enumeration(
    name: str, n_arms: int, budget: int, seed: int, raw: list[float], offset: float
) -> None:
    model, actions = _small(name, n_arms, budget, seed)
    oracle = oracle_for(model)
    assert oracle is not None
    w = np.asarray(raw[: model.n_actions])
    sol = oracle.maximise(w, offset)
    a = np.round(sol.x[: model.n_actions]).astype(int)
    assert sol.status == OPTIMAL and sol.gap == 0.0 and sol.bound == sol.objective
    assert model.feasible_with(a, sol.x[model.n_actions :]), "the certificate must satisfy the rows"
    assert sol.objective == pytest.approx(float(w @ a) + offset, abs=1e-12)
    assert sol.objective == pytest.approx(float((actions @ w).max()) + offset, abs=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(("capacity", "scheduling", "routing")), seed=st.integers(0, 2), raw=weights_of)
def test_each_oracle_equals_the_milp_at_twenty_arms(name: str, seed: int, raw: list[float]) -> None:
    model = _large(name, seed)
    w = np.asarray(raw)
    sol = oracle_for(model).maximise(w, 1.0)
    ref = HighsSolver(mip_rel_gap=1e-9).solve(model.milp(w, offset=1.0))
    assert ref.status == OPTIMAL
    # never worse than HiGHS; better by at most its absolute MIP gap (1e-6: it may leave out an arm of weight 1e-7)
    assert sol.status == OPTIMAL and ref.objective - 1e-7 <= sol.objective <= ref.objective + 1e-6


def test_the_capacity_oracle_equals_the_milp_at_a_hundred_arms() -> None:
    """Counts saturate at the box here (20 workers hold more arms of a class than the instance has)."""
    model = make("capacity", n_arms=100, budget=20, seed=1).action_model()
    w = np.random.default_rng(3).normal(size=100)
    sol = oracle_for(model).maximise(w, 0.0)
    ref = HighsSolver(mip_rel_gap=1e-9).solve(model.milp(w), time_limit=60.0)
    assert ref.status == OPTIMAL and sol.status == OPTIMAL
    assert sol.objective == pytest.approx(ref.objective, abs=1e-7)


def test_user_rows_or_changed_rows_drop_the_structure_and_the_oracle() -> None:
    model = _large("capacity", 0)
    assert model.structure is not None and oracle_for(model) is not None
    with_rows = model.with_constraints(lambda m: [m.a[0] + m.a[1] <= 1])
    assert with_rows.structure is None and oracle_for(with_rows) is None
    looser = dataclasses.replace(model, row_upper=model.row_upper + 1.0, _cache={}, _solver=None)
    assert looser.structure is None
    same = dataclasses.replace(model, _cache={}, _solver=None)
    assert same.structure == model.structure  # the same rows keep it
    data = make("capacity", n_arms=20, budget=5, seed=0).instance.model_dump(mode="json")
    cap = {"kind": "group_cap", "groups": [0] * 10 + [-1] * 10, "caps": [1]}
    user = make("capacity", instance={**data, "constraints": [cap]}).action_model()
    assert user.structure is None and oracle_for(user) is None  # the user's block: the MILP path


def test_the_capacity_oracle_declines_count_boxes_beyond_its_limit() -> None:
    big = make("capacity", n_arms=200, budget=40, seed=0).action_model()  # about 40 pulls in each of 5 classes
    assert not CapacityOracle.applies(big) and oracle_for(big) is None
    assert CapacityOracle.applies(make("capacity", n_arms=100, budget=20, seed=0).action_model())


# ------------------------------------------------------------------------------------------- selector
def _state_q(model: ActionModel, seed: int, spread: float, noise: float) -> StateQ:
    """A Q-network whose hidden neurons are mostly stable (large biases, small action weights, as after
    training), perturbed by ``noise``."""
    torch.manual_seed(seed)
    net = QNetwork(model.n_actions, 4, (12, 8))
    with torch.no_grad():
        for layer in net.layers:
            layer.bias.copy_(spread * torch.sign(torch.randn(layer.bias.shape)))
        net.layers[0].weight[:, : model.n_actions] *= 0.2
        for p in net.parameters():
            p.add_(noise * torch.randn(p.shape))
    features = np.random.default_rng(seed).normal(size=4)
    return StateQ(model, net, features, linear=np.random.default_rng(seed + 1).normal(size=model.n_actions))


@pytest.mark.parametrize("name", ["capacity", "scheduling", "routing"])
def test_the_oracle_path_matches_the_milp_path(name: str) -> None:
    model = _large(name, 1)
    fast, milp = MipSelector(mip_rel_gap=1e-9), MipSelector(mip_rel_gap=1e-9, oracle=False)
    used = 0
    for seed in range(12):
        q = _state_q(model, seed, spread=2.0, noise=0.05 if seed % 3 else 0.6)
        a, b = fast.select(q), milp.select(q)
        used += "oracle" in a.reason
        assert a.status == OPTIMAL and b.status == OPTIMAL
        assert model.is_feasible(a.action)
        assert a.value == pytest.approx(b.value, rel=1e-6, abs=1e-9)
        assert a.gap <= 1e-6 and a.bound >= a.value
    assert 0 < used < 12, "both paths must be exercised: affine states (oracle) and perturbed ones (MILP)"


@pytest.mark.parametrize("name", ["capacity", "scheduling", "routing", "coverage"])
def test_trained_checkpoints_decide_the_enumerated_optimum(name: str) -> None:
    """Whichever path the selector takes (the perturbed J = 6 checkpoints are mostly not affine), its value is the
    enumerated optimum's, and an affine state goes through the oracle."""
    engine = Engine.load(FIXTURES / f"{name}.pt")
    states = json.loads((FIXTURES / "expected.json").read_text())[name]["states"]
    fast, exact = MipSelector(mip_rel_gap=1e-9), EnumerateSelector()
    for state in states:
        q = engine.state_q(np.asarray(state))
        got, want = fast.select(q), exact.select(q)
        assert got.value == pytest.approx(want.value, rel=1e-6, abs=1e-9)
        max_ones = max_cardinality(q.model.milp(np.zeros(q.model.n_actions)), q.model.n_actions)
        if affine_form(q.relu_network(), q.first_bias, q.first_weights, max_ones) is not None:
            assert "oracle" in got.reason


def test_a_milp_stopped_at_its_time_limit_reports_its_gap_not_optimal() -> None:
    model = _large("capacity", 0)
    torch.manual_seed(0)
    net = QNetwork(model.n_actions, 4, (64, 64))  # random: many unstable neurons, no oracle
    q = StateQ(model, net, np.random.default_rng(0).normal(size=4))
    assert affine_form(q.relu_network(), q.first_bias, q.first_weights, None) is None
    d = MipSelector(mip_rel_gap=1e-9).select(q, time_limit=0.02)
    assert d.status != OPTIMAL
    assert np.isfinite(d.bound) and d.bound >= d.value and d.gap > 1e-9
    assert d.gap == pytest.approx(relative_gap(d.value, d.bound))
    assert "oracle" not in d.reason


def test_an_oracle_stopped_at_its_time_limit_reports_its_bound_not_optimal() -> None:
    model = make("routing", n_arms=100, budget=20, seed=0).action_model()  # orienteering beyond quick proof
    w = np.random.default_rng(0).uniform(0.0, 1.0, model.n_actions)
    sol = oracle_for(model).maximise(w, 0.0, time_limit=0.05)
    assert sol.status != OPTIMAL and sol.bound >= sol.objective and sol.gap > 0.0
    assert model.feasible_with(sol.x[: model.n_actions], sol.x[model.n_actions :])
    q = _state_q(model, 0, spread=50.0, noise=0.0)
    assert affine_form(q.relu_network(), q.first_bias, q.first_weights, None) is not None
    d = MipSelector().select(q, time_limit=0.2)
    assert d.status != OPTIMAL and "time limit" in d.reason and d.bound >= d.value and d.gap > 0.0
