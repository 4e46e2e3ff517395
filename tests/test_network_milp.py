"""The ReLU-network MILP: its argmax equals enumeration, bounds are sound, warm starts are feasible."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scenarios.cormab.capacity import CapacityInstance
from solvers.backends.highs import HighsSolver
from solvers.formulations.interval_bounds import interval_bounds
from solvers.formulations.network_milp import NetworkMILP
from solvers.formulations.relu_network import ReluNetwork
from solvers.milp import MatrixMILP
from solvers.search.enumeration import EnumerationSolver

BIAS_MODES = ("normal", "x100", "positive", "negative", "zero")
FAST = settings(deadline=None, max_examples=30)


# ------------------------------------------------------------------------------------------- helpers
@lru_cache(maxsize=32)
def capacity(n_arms: int, budget: int, seed: int):
    """(ActionModel, feasible MatrixMILP, every feasible action) for a small capacity instance."""
    model = CapacityInstance.generate(n_arms=n_arms, budget=budget, seed=seed).action_model()
    return model, model.milp(np.zeros(n_arms)), model.enumerate()


def cardinality(n: int, k: int) -> tuple[MatrixMILP, np.ndarray]:
    """``sum a <= k`` over n binaries as a MatrixMILP, and every feasible action."""
    milp = MatrixMILP(
        c=np.zeros(n),
        A=sp.csr_matrix(np.ones((1, n))),
        row_lower=np.array([-np.inf]),
        row_upper=np.array([float(k)]),
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integer=np.ones(n, bool),
        row_names=["budget"],
    )
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    return milp, bits[bits.sum(axis=1) <= k]


def first_bias(width: int, mode: str, rng: np.random.Generator) -> np.ndarray:
    g = rng.normal(0.0, 1.0, width)
    return {
        "normal": g,
        "x100": 100.0 * g,
        "positive": 10.0 * np.abs(g) + 0.1,
        "negative": -10.0 * np.abs(g) - 0.1,
        "zero": np.zeros(width),
    }[mode]


def preactivations(net: ReluNetwork, actions: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    """Pre-activations of every hidden layer for every row of ``actions`` (vectorised forward)."""
    h, out = actions.astype(float), []
    for layer, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
        z = h @ w.T + (bias if layer == 0 else b)
        out.append(z)
        h = np.maximum(z, 0.0)
    return out


def close(a: float, b: float, rel: float = 1e-5) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def solve(milp: MatrixMILP, solver: HighsSolver | None = None, **kwargs):
    # restarts off, as every network selector runs HiGHS: with them HiGHS 1.14 flags sub-optimal points optimal
    # on some tiny big-M network MILPs (capacity (6, 1, 1) with spec ([4], 243010, "zero"): 2.860 for 3.034)
    solver = solver or HighsSolver(mip_rel_gap=1e-9, mip_allow_restart=False)
    sol = solver.solve(milp, time_limit=30.0, **kwargs)
    assert sol.status == "optimal", sol
    return sol


networks = st.tuples(
    st.lists(st.integers(2, 16), min_size=1, max_size=2),  # hidden widths
    st.integers(0, 2**31 - 1),  # network / bias seed
    st.sampled_from(BIAS_MODES),
)
capacity_sets = st.tuples(st.integers(3, 10), st.integers(1, 4), st.integers(0, 5))


def make_net(n: int, spec) -> tuple[ReluNetwork, np.ndarray]:
    widths, seed, mode = spec
    rng = np.random.default_rng(seed)
    net = ReluNetwork.random(n, widths, rng)
    return net, first_bias(widths[0], mode, rng)


def check_argmax(
    net: ReluNetwork, bias: np.ndarray, feasible: MatrixMILP, actions: np.ndarray, tighten: bool = True
) -> tuple[NetworkMILP, MatrixMILP, np.ndarray]:
    """MILP optimum == enumeration optimum; decoded action is feasible and its value is the objective."""
    compiled = NetworkMILP(net, feasible, tighten_cardinality=tighten)
    milp = compiled.build(bias)
    sol = solve(milp)
    best = EnumerationSolver().solve(actions, lambda a: net.forward(a, bias))
    assert close(sol.objective, best.objective), (sol.objective, best.objective)
    a = compiled.decode(sol.x)
    assert (actions == a).all(axis=1).any(), "decoded action is not in the feasible set"
    assert close(float(net.forward(a[None], bias)[0]), sol.objective)
    on, off, unstable = compiled.stable_counts
    assert on + off + unstable == sum(net.hidden_widths)
    return compiled, milp, sol.x


# ------------------------------------------------------------------------------------- properties
@FAST
@given(capacity_sets, networks)
def test_argmax_matches_enumeration_on_capacity(inst, spec):
    model, feasible, actions = capacity(*inst)
    net, bias = make_net(model.n_actions, spec)
    _, _, x = check_argmax(net, bias, feasible, actions)
    assert model.is_feasible(np.round(x[: model.n_actions]).astype(int))


@FAST
@given(st.integers(2, 10), st.integers(0, 10), networks, st.booleans())
def test_argmax_matches_enumeration_on_cardinality(n, k, spec, tighten):
    feasible, actions = cardinality(n, min(k, n))
    net, bias = make_net(n, spec)
    check_argmax(net, bias, feasible, actions, tighten=tighten)


@settings(deadline=None, max_examples=15)
@given(capacity_sets, networks, st.lists(st.sampled_from(BIAS_MODES), min_size=2, max_size=4))
def test_persistent_solver_matches_fresh_solver(inst, spec, modes):
    model, feasible, actions = capacity(*inst)
    net, _ = make_net(model.n_actions, spec)
    compiled = NetworkMILP(net, feasible)
    rng = np.random.default_rng(spec[1] + 1)
    persistent = HighsSolver(mip_rel_gap=1e-9)
    for i, mode in enumerate(modes):
        bias = first_bias(net.hidden_widths[0], mode, rng)
        milp = compiled.build(bias)
        incumbent = actions[rng.integers(len(actions))]
        if i % 2:  # alternate full and partial warm starts
            warm = compiled.warm_start(incumbent, model.certificate(incumbent))
        else:
            warm = compiled.partial_warm_start(incumbent)
        kept = solve(milp, persistent, warm_start=warm)
        fresh = solve(compiled.build(bias))
        assert close(kept.objective, fresh.objective)
        assert model.is_feasible(compiled.decode(kept.x))
    assert persistent.n_rebuilds == 1
    assert persistent.n_updates == len(modes) - 1


@FAST
@given(capacity_sets, networks)
def test_interval_bounds_contain_every_preactivation(inst, spec):
    model, _, actions = capacity(*inst)
    net, bias = make_net(model.n_actions, spec)
    n = model.n_actions
    max_ones = int(actions.sum(axis=1).max())
    zs = preactivations(net, actions, bias)
    for k in (None, max_ones):
        bounds = interval_bounds(net, bias, np.zeros(n), np.ones(n), max_ones=k)
        assert len(bounds) == len(zs)
        for (L, U), z in zip(bounds, zs, strict=True):
            slack = 1e-9 * (1.0 + np.abs(z))
            assert np.all(z >= L - slack) and np.all(z <= U + slack)
    # the first layer's cardinality bound is attained (exact), so it is never looser than the plain box
    (Lc, Uc), (Lb, Ub) = (interval_bounds(net, bias, np.zeros(n), np.ones(n), max_ones=k)[0] for k in (max_ones, None))
    assert np.all(Lc >= Lb - 1e-9) and np.all(Uc <= Ub + 1e-9)


@FAST
@given(capacity_sets, networks)
def test_pruned_preserves_the_optimum(inst, spec):
    model, feasible, _ = capacity(*inst)
    net, bias = make_net(model.n_actions, spec)
    milp = NetworkMILP(net, feasible).build(bias)
    small, kept = milp.pruned()
    assert small.n_cols == kept.size <= milp.n_cols and small.n_rows <= milp.n_rows
    assert not np.any(small.col_lower == small.col_upper)
    full_opt, small_opt = solve(milp), solve(small)
    assert close(full_opt.objective, small_opt.objective)
    x = milp.col_lower.copy()
    x[kept] = small_opt.x
    assert milp.is_feasible(x) and close(milp.objective(x), small_opt.objective)


@FAST
@given(capacity_sets, networks, st.integers(0, 10**6))
def test_warm_start_is_feasible(inst, spec, pick):
    model, feasible, actions = capacity(*inst)
    net, bias = make_net(model.n_actions, spec)
    compiled = NetworkMILP(net, feasible)
    milp = compiled.build(bias)
    a = actions[pick % len(actions)]
    x = compiled.warm_start(a, model.certificate(a))
    assert milp.violations(x) == []
    assert close(milp.objective(x), float(net.forward(a[None], bias)[0]))
    idx, vals = compiled.partial_warm_start(a)
    assert np.allclose(x[idx], vals)


# ------------------------------------------------------------------------------------------ examples
def test_structure_is_identical_across_states():
    _, feasible, _ = capacity(8, 3, 0)
    net = ReluNetwork.random(8, [6, 5], np.random.default_rng(3))
    compiled = NetworkMILP(net, feasible)
    first = compiled.build(np.full(6, 50.0))  # all on
    other = compiled.build(np.full(6, -50.0))  # all off
    assert compiled.stable_counts.off >= 6
    assert np.array_equal(first.A.indptr, other.A.indptr) and np.array_equal(first.A.indices, other.A.indices)
    assert np.array_equal(first.integer, other.integer)
    assert "relu_ge[0,0]" in first.row_names and "delta[1,4]" in first.col_names


def test_no_hidden_layer_is_a_linear_objective():
    feasible, _ = cardinality(6, 2)
    net = ReluNetwork([np.array([[1.0, -2.0, 3.0, 0.5, -1.0, 2.5]])], [np.array([0.0])])
    compiled = NetworkMILP(net, feasible)
    sol = solve(compiled.build(np.array([4.0])))
    assert sol.objective == pytest.approx(9.5)
    assert compiled.decode(sol.x).tolist() == [0, 0, 1, 0, 0, 1]


def test_pruned_keeps_an_infeasible_empty_row():
    milp = MatrixMILP(
        c=np.array([1.0, 1.0]),
        A=sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0]])),
        row_lower=np.array([2.0, -np.inf]),
        row_upper=np.array([np.inf, 1.0]),
        col_lower=np.array([1.0, 0.0]),
        col_upper=np.array([1.0, 1.0]),
        integer=np.array([True, True]),
    )
    small, kept = milp.pruned()
    assert kept.tolist() == [1] and small.n_rows == 2  # row 0 (1 >= 2) is empty but violated: kept
    assert HighsSolver().solve(small).status == "infeasible"


def test_enumeration_batches_and_ties():
    rng = np.random.default_rng(0)
    cands = rng.integers(0, 2, (1000, 7))
    w = rng.normal(size=7)
    sol = EnumerationSolver(batch_size=64).solve(cands, lambda a: a @ w)
    assert sol.status == "optimal" and sol.gap == 0.0 and sol.bound == sol.objective
    assert sol.objective == pytest.approx((cands @ w).max())
    assert np.array_equal(sol.x, cands[np.argmax(cands @ w)])
    assert EnumerationSolver().solve(np.zeros((0, 3)), lambda a: a.sum(axis=1)).status == "infeasible"


@FAST
@given(capacity_sets, networks, st.booleans(), st.sampled_from(["interval", "lp"]))
@example((3, 1, 1), ([16], 16, "negative"), True, "interval")  # HiGHS presolve: 0.05 below the optimum, "optimal"
def test_binaries_only_where_needed_keep_the_argmax(inst, spec, h_upper, tightening):
    """``binaries="needed"``: last-layer neurons with a non-positive output weight get no binary and no upper
    rows; the optimum, the decoded action and the warm starts are those of the full encoding."""
    model, feasible, actions = capacity(*inst)
    net, bias = make_net(model.n_actions, spec)
    lean = NetworkMILP(net, feasible, binaries="needed", h_upper=h_upper, tightening=tightening)
    full = NetworkMILP(net, feasible)
    relaxed = int((net.weights[-1][0] <= 0).sum())
    assert lean.n_cols == full.n_cols - relaxed and lean.n_rows == full.n_rows - 2 * relaxed
    milp = lean.build(bias)
    sol = solve(milp)
    best = EnumerationSolver().solve(actions, lambda a: net.forward(a, bias))
    assert close(sol.objective, best.objective), (sol.objective, best.objective)
    a = lean.decode(sol.x)
    assert model.is_feasible(a) and close(float(net.forward(a[None], bias)[0]), sol.objective)
    incumbent = actions[np.random.default_rng(spec[1]).integers(len(actions))]
    x = lean.warm_start(incumbent, model.certificate(incumbent))
    assert milp.is_feasible(x), milp.violations(x)
    assert close(milp.objective(x), float(net.forward(incumbent[None], bias)[0]))
    idx, vals = lean.partial_warm_start(incumbent)
    np.testing.assert_array_equal(x[idx], vals)
    with pytest.raises(ValueError, match="binaries"):
        NetworkMILP(net, feasible, binaries="some")
