"""Issue 20, library part: length errors for states, bounded enumeration, whole-call decision times and a
certified bound from MILP decisions stopped early. Each test failed before its fix."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from scenarios import make
from scenarios.errors import EnumerationTimeoutError, InvalidInputError


def _engine(n_arms: int, budget: int, hidden=(32, 32), seed: int = 0):
    from engine import Engine
    from engine.sequoia.dqn import make_encoder
    from engine.sequoia.q_network import QNetwork

    env = make("capacity", n_arms=n_arms, budget=budget, seed=seed)
    enc = make_encoder(env.instance)
    torch.manual_seed(seed)
    net = QNetwork(env.instance.n_actions, enc.dim, hidden, enc.context_dim)
    return env, Engine(env.scenario, env.instance, net)


def test_state_of_j_plus_one_arm_states_is_a_length_error():
    env = make("capacity", n_arms=10, budget=3, seed=0)
    J, H = env.instance.n_arms, env.instance.horizon
    states = [1] * (J + 1)  # one arm state too many: the last is read as a time-to-go out of range
    states[-1] = H + 5
    with pytest.raises(InvalidInputError) as exc:
        env.split_observation(states)
    assert exc.value.field == "state"
    assert f"{J + 1} entries" in exc.value.reason and f"{J} arms" in exc.value.reason
    for n in (J - 1, J + 2, 3 * J):
        with pytest.raises(InvalidInputError) as exc:
            env.split_observation([0] * n)
        assert f"expected {J} entries" in exc.value.reason and f"got {n}" in exc.value.reason
    good, ttg = env.split_observation([0] * J + [1])
    assert len(good) == J and ttg == 1


def test_enumeration_of_a_large_feasible_set_is_refused_quickly():
    env = make("capacity", n_arms=30, budget=6, seed=0)
    model = env.action_model()
    start = time.perf_counter()
    with pytest.raises(ValueError, match="enumeration refused"):
        model.enumerate(200_000, max_seconds=1.0)
    assert time.perf_counter() - start < 5.0  # was 50 s
    assert model.count_upper_bound() > 200_000
    start = time.perf_counter()
    with pytest.raises(ValueError, match="more than 200000"):
        model.enumerate(200_000, max_seconds=0)
    assert time.perf_counter() - start < 0.5  # from the cached bound alone
    small = make("capacity", n_arms=10, budget=3, seed=0).action_model()
    every = small.enumerate(200_000, max_seconds=0)  # the bound proves it small: no refusal, no time limit
    assert len(every) > 1 and all(small.is_feasible(a) for a in every)
    assert small.count_upper_bound() >= len(every)


def test_an_oracle_that_lists_its_set_keeps_the_time_limit_too():
    """A patrol's oracle lists its walks itself: the time limit holds there as for the generic enumeration
    (it took 1.8-2.3 s for a J = 20 patrol asked to stop after 0.25 s)."""
    model = make("patrol", n_arms=20, budget=5, seed=0).action_model()
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"did not finish within 0\.1 s"):
        model.enumerate(20_000, max_seconds=0.1)
    assert time.perf_counter() - start < 1.0  # the message says the deadline, not the count, stopped it
    closed = np.zeros(model.n_actions, dtype=bool)
    closed[21:40] = True  # every start but node 0 (entries 20-39 are the starts): node 0's walks, no time limit
    listed = model.enumerate(20_000, closed=closed)
    assert len(listed) > 1 and all(model.is_feasible(a) and not a[closed].any() for a in listed)
    big = make("patrol", n_arms=60, budget=8, seed=0).action_model()  # one (start, end) pair alone takes seconds
    start = time.perf_counter()
    with pytest.raises(ValueError, match="did not finish"):
        big.enumerate(20_000, max_seconds=0.1)
    assert time.perf_counter() - start < 1.0
    small = make("patrol", n_arms=6, budget=2, seed=0).action_model()
    closed = np.zeros(small.n_actions, dtype=bool)
    closed[7:12] = True  # every start but node 0
    assert len(small.enumerate(20_000, max_seconds=0, closed=closed)) == len(small.enumerate(20_000, closed=closed))
    # the bound proves the set small: no time limit applies, as on the whole set
    with pytest.raises(ValueError, match="more than 10 feasible actions") as err:
        small.enumerate(10, max_seconds=60.0, closed=closed)  # the count, not the clock, refuses: said so
    assert not isinstance(err.value, EnumerationTimeoutError)
    with pytest.raises(EnumerationTimeoutError, match="did not finish within 0"):
        small.enumerate(10, max_seconds=0.0, closed=closed)


def test_an_oracle_written_before_the_time_limit_still_lists():
    """The protocol is checked by method names only: an oracle whose ``enumerate_all`` takes no ``deadline``
    lists to the end under a time limit instead of failing with a TypeError (a 500 through the service)."""
    model = make("patrol", n_arms=6, budget=2, seed=0).action_model()
    oracle = model.oracle

    class OldOracle:
        def count_bound(self) -> int:
            return oracle.count_bound()

        def enumerate_all(self, max_count: int, closed: np.ndarray | None = None) -> np.ndarray:
            return oracle.enumerate_all(max_count, closed)

        def __getattr__(self, name: str):
            return getattr(oracle, name)

    closed = np.zeros(model.n_actions, dtype=bool)
    closed[7:12] = True  # every start but node 0
    expected = model.enumerate(20_000, closed=closed)
    model.oracle = OldOracle()
    limited = len(expected)  # below the count bound (792): the time limit applies
    assert np.array_equal(model.enumerate(limited, max_seconds=5.0, closed=closed), expected)


def test_enumerate_selector_refuses_up_front_naming_the_selector():
    env, engine = _engine(30, 6)
    obs, _ = env.reset(seed=1)
    start = time.perf_counter()
    with pytest.raises(InvalidInputError) as exc:
        engine.decide(obs, selector="enumerate")
    assert exc.value.field == "selector" and "enumeration refused" in exc.value.reason
    assert time.perf_counter() - start < 5.0


def test_decision_seconds_cover_the_whole_call():
    env, engine = _engine(20, 5)
    obs, _ = env.reset(seed=1)
    start = time.perf_counter()
    d = engine.decide(obs, selector="auto", time_limit=0.5)  # first call: enumeration check and compilation
    wall = time.perf_counter() - start
    assert d.seconds >= 0.9 * wall, (d.seconds, wall)
    start = time.perf_counter()
    d = engine.decide(obs, selector="mip", time_limit=0.5)
    assert d.seconds >= 0.9 * (time.perf_counter() - start)


@pytest.mark.parametrize("limit", [1e-4, 1e-3, 0.01])
def test_milp_decision_stopped_early_has_a_certified_bound(limit):
    env, engine = _engine(30, 6, hidden=(64, 64))
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        d = engine.decide(obs, selector="mip", time_limit=limit)
        out = d.to_dict()
        assert out["bound"] is not None and out["gap"] is not None, out
        assert out["status"] in ("time_limit", "optimal")
        assert out["bound"] >= out["value"] - 1e-9
        # certified: no feasible action scores above the bound (random feasible actions and the greedy one)
        q = engine.state_q(obs)
        rng = np.random.default_rng(seed)
        samples = np.stack([engine.model.sample(rng) for _ in range(200)])
        assert float(q.score(samples).max()) <= out["bound"] + 1e-6


def test_box_bound_is_an_upper_bound_of_the_milp():
    from engine.sequoia.selectors.mip import box_bound
    from solvers.milp import MatrixMILP

    milp = MatrixMILP(
        c=np.array([2.0, -1.0, 0.0]),
        A=np.zeros((0, 3)),
        row_lower=np.zeros(0),
        row_upper=np.zeros(0),
        col_lower=np.array([0.0, -2.0, -np.inf]),
        col_upper=np.array([3.0, 1.0, np.inf]),
        integer=np.zeros(3, bool),
        sense="max",
        offset=1.0,
    )
    assert box_bound(milp) == 2.0 * 3.0 + 2.0 + 1.0
    milp.col_upper[0] = np.inf
    assert box_bound(milp) == float("inf")
