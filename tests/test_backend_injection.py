"""Back-ends are injected wherever a MILP is solved: a registered name (or a solver object) reaches the solver, a
non-default back-end decides as HiGHS does, and a HiGHS-only feature refuses another back-end by name."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bandits.action_models import budget_action_model
from bandits.combinatorial import ActionModelOracle, KnapsackOracle
from bandits.restless import WhittleRepairPolicy, from_cormab
from engine import Engine
from engine.baselines.cormab import MyopicPolicy
from engine.planners.policy import PlannerPolicy
from scenarios import make
from scenarios.cormab.capacity import CapacityInstance
from scenarios.errors import InvalidInputError
from solvers.backends.highs import HighsSolver
from solvers.backends.ortools import OrToolsSolver
from solvers.backends.pyomo import persistent_highs
from solvers.backends.registry import available_backends, require_highs, resolve_backend
from solvers.formulations.box_critic_milp import BoxCriticMILP
from solvers.formulations.network_milp import NetworkMILP
from solvers.formulations.omlt_encoding import OmltNetworkMILP, omlt_available
from solvers.formulations.relu_network import ReluNetwork

OTHER = [name for name in ("scip", "cbc") if name in available_backends()]
pytestmark = pytest.mark.skipif(not OTHER, reason="no OR-Tools MILP back-end in this build")


def _states(env, k: int, seed: int = 0) -> list[np.ndarray]:
    inst = env.instance
    rng = np.random.default_rng(seed)
    return [
        np.array([*rng.integers(0, inst.n_states, inst.n_arms), rng.integers(1, inst.horizon + 1)]) for _ in range(k)
    ]


def test_resolve_backend_builds_by_name_and_passes_objects_through():
    assert isinstance(resolve_backend("highs"), HighsSolver)
    tuned = resolve_backend("highs", highs_args={"mip_allow_restart": False, "options": {"presolve": "off"}})
    assert tuned.highs.getOptionValue("mip_allow_restart")[1] is False  # type: ignore[attr-defined]
    assert tuned.highs.getOptionValue("presolve")[1] == "off"  # type: ignore[attr-defined]
    assert isinstance(resolve_backend(OTHER[0], highs_args={"options": {"presolve": "off"}}), OrToolsSolver)  # ignored
    solver = HighsSolver(mip_rel_gap=1e-3)
    assert resolve_backend(solver) is solver
    with pytest.raises(InvalidInputError, match="backend"):
        resolve_backend(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown back-end"):
        resolve_backend("no-such-solver")


@pytest.mark.parametrize("backend", OTHER)
def test_planner_policy_decides_with_another_backend_as_with_highs(backend, tmp_path):
    env = make("capacity", n_arms=10, budget=3, seed=1)
    highs = Engine.plan(env, "whittle", reduce=False)
    other = Engine.plan(env, "whittle", reduce=False, backend=backend)
    assert isinstance(other._solver, OrToolsSolver) and other._oracle is None and other._reduction is None
    for state in _states(env, 6):
        want, got = highs.decide(state), other.decide(state)
        assert got.status == "optimal" and got.value == pytest.approx(want.value, rel=1e-6, abs=1e-9)
        assert np.array_equal(got.action, want.action)
    loaded = PlannerPolicy.load(other.save(tmp_path / "planner"))
    assert loaded.backend == backend and isinstance(loaded._solver, OrToolsSolver)


@pytest.mark.parametrize("backend", OTHER)
def test_bandit_oracles_and_policies_solve_with_another_backend(backend):
    rng = np.random.default_rng(3)
    sizes = rng.uniform(0.5, 2.0, 9)
    model = budget_action_model(9, 4.0, sizes)
    knapsack = {b: KnapsackOracle(sizes, 4.0, backend=b) for b in ("highs", backend)}
    am = {b: ActionModelOracle(model, backend=b) for b in ("highs", backend)}
    for _ in range(5):
        w = rng.normal(size=9)
        for oracles in (knapsack, am):
            want, got = oracles["highs"].solve(w), oracles[backend].solve(w)
            assert got.exact and np.array_equal(got.action, want.action)
    restored = ActionModelOracle.from_state(*am[backend].get_state())
    assert restored.backend == backend and isinstance(restored._solver, OrToolsSolver)
    assert KnapsackOracle.from_state(*knapsack[backend].get_state()).backend == backend

    env = make("capacity", n_arms=8, budget=3, seed=0)
    inst = env.instance
    for state in _states(env, 3):
        states = state[:-1]
        a = MyopicPolicy(inst).act(states, int(state[-1]), rng)
        b = MyopicPolicy(inst, backend=backend).act(states, int(state[-1]), rng)
        assert np.array_equal(a, b)
    capacity = CapacityInstance.generate(n_arms=10, budget=3, seed=2)
    repair = {
        b: WhittleRepairPolicy(from_cormab(capacity.arms), capacity.action_model(), 1.0, 5, backend=b)
        for b in ("highs", backend)
    }
    states = rng.integers(0, 4, (4, 10))
    assert np.array_equal(repair[backend].select(states, 3), repair["highs"].select(states, 3))
    assert not repair[backend].last_repaired and isinstance(repair[backend]._solver, OrToolsSolver)


def test_action_model_answers_with_its_backend():
    env = make("capacity", n_arms=6, budget=2, seed=0)
    model = env.action_model()
    model.backend = OTHER[0]
    model.oracle = None  # every question goes to the MILP
    sample = model.sample(np.random.default_rng(0))
    assert model.is_feasible(sample) and isinstance(model._solver, OrToolsSolver)
    assert pickle.loads(pickle.dumps(model)).backend == OTHER[0]
    model.backend, model._solver = HighsSolver(), None  # a solver object is not pickled: the copy uses HiGHS
    assert model.is_feasible(model.sample(np.random.default_rng(1))) and model._solver is model.backend
    assert pickle.loads(pickle.dumps(model)).backend == "highs"


def test_lp_tightening_is_highs_only_and_says_so():
    rng = np.random.default_rng(0)
    net = ReluNetwork.random(6, [5, 4], rng)
    feasible = budget_action_model(6, 2.0, np.ones(6)).milp(np.zeros(6))
    with pytest.raises(InvalidInputError, match=r"backend.*LP bound tightening.*highs"):
        NetworkMILP(net, feasible, tightening="lp", backend=OTHER[0]).build(rng.normal(size=5))
    tightened = NetworkMILP(net, feasible, tightening="lp").build(rng.normal(size=5))
    assert tightened.n_cols > 6
    with pytest.raises(InvalidInputError, match="needs the 'highs' back-end"):
        require_highs(resolve_backend(OTHER[0]), "a HiGHS-only feature")


@pytest.mark.parametrize("backend", OTHER)
def test_box_critic_milp_with_another_backend_finds_the_same_argmax(backend):
    rng = np.random.default_rng(5)
    W, w2, amax = rng.normal(size=(8, 3)), rng.normal(size=8), np.array([4, 3, 5])
    highs, other = (BoxCriticMILP(W, w2, 0.2, amax, backend=b) for b in ("highs", backend))
    assert isinstance(other.solver, OrToolsSolver)
    for _ in range(4):
        c = rng.normal(size=8)
        want, got = highs.solve(c), other.solve(c, warm_start=np.zeros(3, np.int64))
        assert got.solution.status == "optimal" and got.value == pytest.approx(want.value, abs=1e-7)
        assert np.array_equal(got.action, want.action)


@pytest.mark.skipif(not omlt_available(), reason="OMLT is not installed")
def test_omlt_cross_check_takes_its_pyomo_solver():
    rng = np.random.default_rng(2)
    net = ReluNetwork.random(5, [6], rng)
    feasible = budget_action_model(5, 2.0, np.ones(5)).milp(np.zeros(5))
    bias = rng.normal(size=6)
    want = HighsSolver(mip_rel_gap=1e-9).solve(NetworkMILP(net, feasible).build(bias))
    solver = persistent_highs()  # one pyomo solver interface, injected and reused across states
    omlt = OmltNetworkMILP(net, feasible, solver=solver)
    for _ in range(2):
        got = omlt.solve(bias, mip_rel_gap=1e-9)
        assert got.status == "optimal" and got.objective == pytest.approx(want.objective, abs=1e-7)
    assert omlt.solver is solver


def test_mip_selector_takes_a_solver_object_and_agrees_with_highs():
    """The network MILP (oracle off) solved by an injected SCIP object, a CBC name and HiGHS: same Q value."""
    from engine.sequoia.dqn import DQNConfig
    from engine.sequoia.selectors.mip import MipSelector
    from solvers.backends.registry import is_persistent

    env = make("capacity", n_arms=8, budget=3, seed=0)
    engine = Engine.train(
        env, DQNConfig(episodes=2, warm_start_samples=64, warm_start_epochs=2, snapshots=0), seed=0, progress=False
    )
    scip = OrToolsSolver(backend="SCIP")
    assert not is_persistent(scip) and is_persistent(HighsSolver())
    selectors = [
        MipSelector(oracle=False),
        MipSelector(oracle=False, backend=scip),
        MipSelector(oracle=False, backend="cbc"),
    ]
    for state in _states(env, 4):
        q = engine.state_q(state)
        values = [s.select(q).value for s in selectors]
        assert max(values) - min(values) <= 1e-5 * (1 + abs(values[0]))


def test_library_code_builds_solvers_through_the_registry_only():
    """No library module outside solvers/backends constructs a solver class directly (back-ends are injected)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"\b(HighsSolver|OrToolsSolver|CpSatSolver|PyomoSolver)\(")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for package in ("engine", "solvers", "scenarios", "bandits", "api")
        for path in (root / package).rglob("*.py")
        if "backends" not in path.relative_to(root).parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
