"""Every installed back-end solves the same MILPs to the same optimum, feasible and equal to enumeration."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyomo.environ as pe
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.sequoia.dqn import make_encoder
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors import SELECTORS
from scenarios import make
from scenarios.cormab.capacity import CapacityInstance
from solvers.backends.highs import HighsSolver
from solvers.backends.ortools import CpSatSolver
from solvers.backends.registry import NETWORK_BACKENDS, available_backends, make_backend
from solvers.formulations.network_milp import NetworkMILP
from solvers.formulations.omlt_encoding import OmltNetworkMILP, omlt_available
from solvers.formulations.relu_network import ReluNetwork
from solvers.milp import MatrixMILP

BACKENDS = available_backends()
NET_BACKENDS = [b for b in BACKENDS if b in NETWORK_BACKENDS]
TOL = 1e-6


def close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


@lru_cache(maxsize=8)
def capacity(n_arms: int, budget: int, seed: int):
    model = CapacityInstance.generate(n_arms=n_arms, budget=budget, seed=seed).action_model()
    return model, model.milp(np.zeros(n_arms)), model.enumerate()


def random_integer_milp(rng: np.random.Generator) -> tuple[MatrixMILP, np.ndarray]:
    """A small pure-binary MILP (integer coefficients) and its brute-force optimum vector set."""
    n, m = int(rng.integers(3, 9)), int(rng.integers(1, 4))
    A = rng.integers(-3, 6, (m, n)).astype(float)
    upper = np.floor(A.clip(min=0).sum(axis=1) * rng.uniform(0.2, 0.8, m))
    lower = np.where(rng.uniform(size=m) < 0.3, np.floor(A.clip(max=0).sum(axis=1) / 2), -np.inf)
    c = rng.integers(-5, 10, n).astype(float)
    milp = MatrixMILP(
        c=c,
        A=sp.csr_matrix(A),
        row_lower=lower,
        row_upper=upper,
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integer=np.ones(n, bool),
        sense=str(rng.choice(["max", "min"])),
        offset=float(rng.normal()),
    )
    bits = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    ax = bits @ A.T
    feasible = bits[np.all((ax >= lower - 1e-9) & (ax <= upper + 1e-9), axis=1)]
    return milp, feasible


# ------------------------------------------------------------------------------------- matrix MILPs
def test_backends_are_installed():
    assert {"highs", "scip", "cbc", "cpsat", "pyomo"} <= set(BACKENDS)


@pytest.mark.parametrize("seed", range(12))
def test_random_integer_milps_agree_with_enumeration(seed):
    rng = np.random.default_rng(seed)
    milp, feasible = random_integer_milp(rng)
    for name in BACKENDS:
        sol = make_backend(name, mip_rel_gap=1e-9).solve(milp, time_limit=10.0)
        if feasible.shape[0] == 0:
            assert sol.status == "infeasible", name
            continue
        values = feasible @ milp.c + milp.offset
        best = values.max() if milp.sense == "max" else values.min()
        assert sol.status == "optimal", name
        assert close(sol.objective, best), (name, sol.objective, best)
        assert milp.is_feasible(sol.x), name
        assert sol.gap <= 1e-6, name


def test_cpsat_refuses_continuous_models_and_scales_objectives():
    model, feasible, actions = capacity(8, 3, 0)
    assert not CpSatSolver.supports(
        NetworkMILP(ReluNetwork.random(8, [4], np.random.default_rng(0)), feasible).build(np.zeros(4))
    )
    c = np.round(np.random.default_rng(1).normal(0, 1, 8), 3)  # decimals: scaled by 1e3 internally
    sol = CpSatSolver().solve(feasible.with_objective(np.concatenate([c, np.zeros(feasible.n_cols - 8)])))
    assert close(sol.objective, float((actions @ c).max()))
    assert model.is_feasible(np.round(sol.x[:8]).astype(int))


def test_myopic_allocation_milp_on_cpsat_matches_highs():
    model, _, _ = capacity(12, 4, 1)
    c = np.random.default_rng(3).integers(0, 20, 12).astype(float)
    milp = model.milp(c)
    a, b = CpSatSolver().solve(milp), HighsSolver(mip_rel_gap=1e-9).solve(milp)
    assert close(a.objective, b.objective) and a.status == "optimal"


# ------------------------------------------------------------------------------------ network MILPs
def network_cases():
    """(network, feasible MILP, ActionModel or None, actions, first_bias, first_weights) test cases."""
    out = []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        model, feasible, actions = capacity(8, 3, seed)
        hidden = [[6], [5, 4], [8]][seed]
        net = ReluNetwork.random(8, hidden, rng)
        W0 = net.weights[0] + rng.normal(0, 0.3, net.weights[0].shape)
        out.append((net, feasible, model, actions, rng.normal(0, 1, hidden[0]), W0))
    return out


@pytest.mark.parametrize("case", range(3))
def test_network_milps_agree_across_backends(case):
    net, feasible, model, actions, b0, W0 = network_cases()[case]
    state_net = ReluNetwork([W0, *net.weights[1:]], [b0, *net.biases[1:]])
    best = float(state_net.forward(actions).max())
    compiled = NetworkMILP(net, feasible)
    milp = compiled.build(b0, first_weights=W0)
    for name in NET_BACKENDS:
        sol = make_backend(name, mip_rel_gap=1e-9).solve(milp, time_limit=20.0)
        assert close(sol.objective, best, 1e-5), (name, sol.objective, best)
        action = compiled.decode(sol.x)
        assert model.is_feasible(action), name
        assert close(float(state_net.forward(action[None])[0]), best, 1e-5), name
    if omlt_available():
        sol = OmltNetworkMILP(net, feasible).solve(b0, W0, mip_rel_gap=1e-9)
        assert close(sol.objective, best, 1e-5), ("omlt", sol.objective, best)
        assert model.is_feasible(np.round(sol.x[:8]).astype(int))


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 8), depth=st.integers(1, 2), scale=st.sampled_from([1, 10]))
def test_network_milp_parity_property(seed, n, depth, scale):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, n + 1))
    feasible = MatrixMILP(
        c=np.zeros(n),
        A=sp.csr_matrix(np.ones((1, n))),
        row_lower=np.array([-np.inf]),
        row_upper=np.array([float(k)]),
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integer=np.ones(n, bool),
    )
    bits = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    actions = bits[bits.sum(axis=1) <= k]
    hidden = [int(rng.integers(1, 7)) for _ in range(depth)]
    net = ReluNetwork.random(n, hidden, rng)
    b0 = scale * rng.normal(0, 1, hidden[0])
    best = float(net.forward(actions, b0).max())
    milp = NetworkMILP(net, feasible).build(b0)
    for name in ("highs", "scip", "cbc"):
        sol = make_backend(name, mip_rel_gap=1e-9).solve(milp, time_limit=20.0)
        assert close(sol.objective, best, 1e-5), (name, sol.objective, best)


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 100_000))
def test_highs_without_restarts_matches_enumeration(seed):
    """The network selectors' default (``mip_allow_restart=False``) on tiny random network MILPs."""
    rng = np.random.default_rng(seed)
    _, feasible, actions = capacity(8, 3, int(rng.integers(0, 3)))
    hidden = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 3)))]
    net = ReluNetwork.random(8, hidden, rng)
    b0 = rng.normal(0, 1, hidden[0]) * rng.choice([1.0, 10.0])
    compiled = NetworkMILP(net, feasible)
    sol = HighsSolver(mip_rel_gap=1e-9, mip_allow_restart=False).solve(compiled.build(b0))
    best = float(net.forward(actions, b0).max())
    assert close(float(net.forward(compiled.decode(sol.x)[None], b0)[0]), best, 1e-6)  # the argmax is exact
    assert close(sol.objective, best, 1e-5)  # the objective carries HiGHS's feasibility tolerance


# --------------------------------------------------------------- trained network, selectors, user rows
@pytest.fixture(scope="module")
def trained_engine():
    """A small QNetwork fitted for a few steps to one-step expected rewards (seconds, not minutes)."""
    env = make("capacity", n_arms=8, budget=3, seed=0)
    inst = env.instance
    enc = make_encoder(inst)
    torch.manual_seed(0)
    net = QNetwork(inst.n_actions, enc.dim, (8, 6), enc.context_dim)
    model = env.action_model()
    rng = np.random.default_rng(0)
    states = rng.integers(0, 2, (256, inst.n_arms))
    ttg = rng.integers(1, inst.horizon + 1, 256)
    actions = np.stack([model.sample(rng) for _ in range(256)])
    target = torch.as_tensor(
        [inst.expected_reward(s, a) for s, a in zip(states, actions, strict=True)], dtype=torch.float32
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    f, c = torch.as_tensor(enc.encode(states, ttg)), torch.as_tensor(enc.context(states, ttg))
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(net(torch.as_tensor(actions, dtype=torch.float32), f, c), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return env, Engine("capacity", inst, net)


def _states(env, k: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [np.concatenate([rng.integers(0, 2, env.instance.n_arms), [int(rng.integers(1, 10))]]) for _ in range(k)]


def test_trained_network_every_backend_agrees_with_enumeration(trained_engine):
    env, engine = trained_engine
    for state in _states(env):
        exact = engine.decide(state, selector="enumerate")
        for backend in NET_BACKENDS:
            d = engine.decide(state, selector="mip", backend=backend, mip_rel_gap=1e-6)
            assert engine.model.is_feasible(d.action)
            assert close(d.value, exact.value, 1e-5), (backend, d.value, exact.value)
        q = engine.state_q(state)
        sol = OmltNetworkMILP(q.relu_network(), engine.model.milp(np.zeros(8))).solve(
            q.first_bias, q.first_weights, mip_rel_gap=1e-9
        )
        assert close(sol.objective, exact.value, 1e-4), ("omlt", sol.objective, exact.value)


def test_user_pyomo_constraints_are_respected_by_every_selector(trained_engine):
    env, engine = trained_engine
    base = engine.model

    def build(m):
        m.not_both = pe.Constraint(expr=m.a[0] + m.a[1] <= 1)
        m.at_most_one_of_three = pe.Constraint(expr=m.a[2] + m.a[3] + m.a[4] <= 1)
        return [2 * m.a[5] + m.a[6] <= 2]

    constrained = base.with_constraints(build)
    assert constrained.row_names[-3:] == ["user:not_both", "user:at_most_one_of_three", "user:user_list[1]"]
    allowed = {
        tuple(a) for a in base.enumerate() if a[0] + a[1] <= 1 and a[2] + a[3] + a[4] <= 1 and 2 * a[5] + a[6] <= 2
    }
    assert {tuple(a) for a in constrained.enumerate()} == allowed
    assert constrained.violations(np.array([1, 1, 0, 0, 0, 0, 0, 0])) == ["user:not_both"]
    rng = np.random.default_rng(0)
    assert all(tuple(constrained.sample(rng)) in allowed for _ in range(50))
    engine.model = constrained
    try:
        for state in _states(env, 2):
            exact = engine.decide(state, selector="enumerate")
            for name in SELECTORS:
                d = engine.decide(state, selector=name)
                assert tuple(d.action) in allowed, name
            for backend in NET_BACKENDS:
                d = engine.decide(state, selector="mip", backend=backend, mip_rel_gap=1e-6)
                assert tuple(d.action) in allowed and close(d.value, exact.value, 1e-5), backend
    finally:
        engine.model = base


def test_user_constraints_reject_nonlinear_and_foreign_variables():
    model, _, _ = capacity(8, 3, 0)
    with pytest.raises(ValueError, match="not linear"):
        model.with_constraints(lambda m: [m.a[0] * m.a[1] <= 0])

    def foreign(m):
        m.z = pe.Var()
        return [m.a[0] + m.z <= 1]

    with pytest.raises(ValueError, match="action variables"):
        model.with_constraints(foreign)
    lower_bound = model.with_constraints(lambda m: [m.a[0] + m.a[1] >= 1])
    assert not lower_bound.downward_closed


def _knapsack(n: int, m: int, seed: int, integer: bool) -> MatrixMILP:
    rng = np.random.default_rng(seed)
    A = rng.integers(20, 100, size=(m, n)).astype(float)
    return MatrixMILP(
        c=A.sum(0) + rng.integers(-10, 10, size=n),
        A=sp.csr_matrix(A),
        row_lower=np.full(m, -np.inf),
        row_upper=A.sum(1) / 2,
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integer=np.full(n, integer),
        sense="max",
    )


@pytest.mark.parametrize("name", [b for b in ("highs", "scip", "pyomo") if b in BACKENDS])
def test_an_lp_stopped_early_never_reports_a_bound_below_its_optimum(name):
    """A pure LP stopped at its time limit reported its incumbent as the dual bound (0.0 against an optimum of
    174.9, gap 0) on HiGHS and OR-Tools."""
    rng = np.random.default_rng(0)
    n, m = 3000, 1500
    A = sp.random(m, n, density=0.01, random_state=1, format="csr", data_rvs=lambda k: rng.uniform(0.1, 1.0, k))
    lp = MatrixMILP(
        c=rng.uniform(0.0, 1.0, n),
        A=A,
        row_lower=np.full(m, -np.inf),
        row_upper=np.ones(m),
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integer=np.zeros(n, bool),
        sense="max",
    )
    optimum = make_backend("highs").solve(lp).objective
    stopped = make_backend(name).solve(lp, time_limit=1e-3)
    assert stopped.bound >= optimum - 1e-6 * max(1.0, optimum), (stopped.status, stopped.bound, optimum)
    assert stopped.status == "optimal" or stopped.gap > 0


@pytest.mark.skipif("pyomo" not in BACKENDS, reason="pyomo back-end not installed")
def test_a_pyomo_solve_without_a_limit_does_not_inherit_the_previous_one():
    """Pyomo sets HiGHS's time limit only when one is given: a persistent solver kept the last solve's limit."""
    hard = _knapsack(20, 6, 1, True)
    solver = make_backend("pyomo")
    solver.solve(hard, time_limit=0.01)
    unlimited = solver.solve(hard.with_objective(hard.c + 0.001))
    assert unlimited.status == "optimal", (unlimited.status, unlimited.gap)
