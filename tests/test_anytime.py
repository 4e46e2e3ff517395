"""Anytime decisions: a deadline per decision, the greedy warm start, never worse than the heuristic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import Engine
from engine.sequoia.dqn import make_encoder
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors import MipSelector, greedy_ascent
from scenarios import make
from scenarios.errors import InvalidInputError


def engine_for(n_arms: int, budget: int, hidden: tuple[int, ...], seed: int = 0) -> Engine:
    env = make("capacity", n_arms=n_arms, budget=budget, seed=0)
    enc = make_encoder(env.instance)
    torch.manual_seed(seed)
    return Engine("capacity", env.instance, QNetwork(env.instance.n_actions, enc.dim, hidden, enc.context_dim))


def state(n_arms: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 4, n_arms), [10]])


@pytest.fixture(scope="module")
def hard():
    """Random 2x48 network over 30 arms: far from solved within a few milliseconds."""
    return engine_for(30, 8, (48, 48))


def test_deadline_is_respected_and_answer_never_worse_than_greedy(hard):
    sel = MipSelector(time_limit=None)
    for seed in range(3):
        q = hard.state_q(state(30, seed))
        _, greedy_value = greedy_ascent(q.model, q.score)
        d = sel.select(q, time_limit=0.05)
        assert d.seconds < 0.05 + 0.5  # greedy + model build overhead on a loaded machine
        assert d.status in ("time_limit", "heuristic", "optimal")
        assert d.value >= greedy_value - 1e-9
        assert q.model.is_feasible(d.action)
        assert abs(float(q.score(d.action)[0]) - d.value) <= 1e-6 * max(1.0, abs(d.value))
        if d.status != "heuristic":
            assert d.bound >= d.value - 1e-9 and d.gap == pytest.approx(
                abs(d.bound - d.value) / max(abs(d.value), 1e-9)
            )


def test_solver_failure_returns_the_heuristic_flagged(hard, monkeypatch):
    sel = MipSelector()
    q = hard.state_q(state(30, 7))

    def boom(*args, **kwargs):
        raise RuntimeError("back-end crashed")

    monkeypatch.setattr(sel._solver, "solve", boom)
    d = sel.select(q, time_limit=1.0)
    a, value = greedy_ascent(q.model, q.score)
    assert d.status == "heuristic" and np.array_equal(d.action, a) and d.value == value
    assert not np.isfinite(d.bound) and not np.isfinite(d.gap)


def test_worse_solver_answer_keeps_the_incumbent(monkeypatch):
    eng = engine_for(10, 3, (8,))
    sel = MipSelector()
    q = eng.state_q(state(10, 1))
    real = sel._solver.solve

    def worse(milp, **kwargs):
        sol = real(milp, **kwargs)
        sol.x[:10] = 0  # the empty action, feasible and (here) worse than greedy
        return sol

    monkeypatch.setattr(sel._solver, "solve", worse)
    d = sel.select(q)
    _, greedy_value = greedy_ascent(q.model, q.score)
    assert d.value >= greedy_value - 1e-12


@pytest.mark.parametrize("options", [{}, {"tightening": "lp"}, {"backend": "scip"}, {"backend": "pyomo"}])
def test_small_decisions_are_certified_optimal(options):
    eng = engine_for(10, 3, (8, 6))
    for seed in range(2):
        s = state(10, seed)
        exact = eng.decide(s, selector="enumerate")
        d = eng.decide(s, selector="mip", time_limit=20.0, mip_rel_gap=1e-6, **options)
        assert d.status == "optimal" and d.gap <= 1e-6
        assert d.value == pytest.approx(exact.value, rel=1e-5, abs=1e-6)
        assert d.bound >= d.value - 1e-9


def test_bad_selector_options_are_input_errors():
    eng = engine_for(6, 2, (4,))
    with pytest.raises(InvalidInputError):
        eng.decide(state(6, 0), selector="mip", backend="cplex")
    with pytest.raises(InvalidInputError):
        eng.decide(state(6, 0), selector="greedy", tightening="lp")


@pytest.mark.parametrize("domain", ["capacity", "scheduling", "routing"])
@pytest.mark.parametrize("n_arms", [40, 100])
def test_reference_scale_decisions_under_a_time_limit(domain, n_arms):
    """J = 40 and 100 (issue 3's scale): a MILP decision under a short limit returns a feasible action, flagged
    unless proven optimal, never worse than the greedy incumbent."""
    env = make(domain, n_arms=n_arms, budget=n_arms // 5, seed=1)
    enc = make_encoder(env.instance)
    torch.manual_seed(1)
    engine = Engine(domain, env.instance, QNetwork(env.instance.n_actions, enc.dim, (16, 32), enc.context_dim))
    q = engine.state_q(state(n_arms, 2))
    _, greedy_value = greedy_ascent(q.model, q.score)
    d = engine.decide(state(n_arms, 2), selector="mip", time_limit=0.2)
    assert env.action_model().is_feasible(d.action)
    assert d.status in ("optimal", "time_limit", "heuristic") and d.value >= greedy_value - 1e-9
    if d.status == "optimal":
        assert d.gap <= 0.01 + 1e-9
