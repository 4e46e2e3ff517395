"""Batched greedy decisions of a Q-network (engine/sequoia/selectors/greedy.py): one forward per round for every
state, and every row's action the one a single ``decide`` returns (near ties redone singly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import DQNConfig, Engine
from engine.planners.batch import parse_rows
from engine.sequoia.dqn import make_encoder
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors.greedy import BATCH_TIE_TOL, distinct_rows, greedy_ascent, greedy_ascent_batch
from engine.sequoia.state_q_batch import StateQBatch
from scenarios import make
from scenarios.errors import InvalidInputError


def _states(env, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts, H = env.instance.arms.state_counts, env.instance.horizon
    return np.column_stack([rng.integers(0, counts, size=(n, len(counts))), rng.integers(1, H + 1, size=n)])


def _untrained(scenario: str, seed: int, scale: float = 1.0, prior: str = "none") -> Engine:
    env = make(scenario, n_arms=10, budget=3, seed=seed)
    enc = make_encoder(env.instance)
    torch.manual_seed(seed)
    net = QNetwork(env.instance.n_actions, enc.dim, (16, 32), enc.context_dim)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return Engine(env.scenario, env.instance, net, DQNConfig(hidden=(16, 32), prior=prior))


def _batch_q(engine: Engine, states: np.ndarray) -> StateQBatch:
    arm_states, ttg = parse_rows(engine.instance, engine._env, list(states))
    return StateQBatch.of(engine.model, engine.network, engine.encoder, engine.prior, arm_states, ttg)


@settings(max_examples=12, deadline=None)
@given(
    scenario=st.sampled_from(["capacity", "budgeted", "scheduling"]),
    seed=st.integers(0, 20),
    prior=st.sampled_from(["none", "whittle", "reward"]),
    scale=st.sampled_from([0.1, 1.0, 10.0]),
)
def test_batched_greedy_equals_single_greedy(scenario, seed, prior, scale):
    engine = _untrained(scenario, seed, scale, prior)
    states = _states(engine._env, 60, seed)
    batch = engine.decide_batch(states, selector="greedy")
    const, per_entry = _batch_q(engine, states).network_bound()
    noise = BATCH_TIE_TOL * (1.0 + const + per_entry.sum(axis=1))  # float32 forwards of other batches
    for state, d, tol in zip(states, batch, noise, strict=True):
        single = engine.decide(state, selector="greedy")
        assert d.action.tolist() == single.action.tolist(), f"state {state.tolist()}"
        assert abs(d.value - single.value) <= tol + 1e-9 * (1.0 + abs(single.value))
        assert d.selector == "greedy" and d.status == single.status
        assert d.assignment == engine.model.assignment(d.action)
        assert d.policy_version == engine.policy_version


def test_a_trained_engine_with_a_planner_prior_batches_like_single_calls():
    env = make("capacity", n_arms=12, budget=4, seed=0)
    config = DQNConfig(episodes=1, warm_start_samples=64, warm_start_epochs=2, snapshots=0)
    engine = Engine.train(env, config, seed=0, progress=False)
    assert engine.prior is not None and engine.planner is None
    states = _states(env, 150, 1)
    q = _batch_q(engine, states)
    actions, values, settled = greedy_ascent_batch(q)
    assert settled.mean() > 0.9  # near ties are rare
    for i in np.flatnonzero(settled):
        single, value = greedy_ascent(engine.model, engine.state_q(states[i]).score)
        assert actions[i].tolist() == single.tolist()
        assert values[i] == pytest.approx(value, rel=1e-5, abs=1e-5)
    batch = engine.decide_batch(states, selector="greedy")
    assert [d.action.tolist() for d in batch] == [engine.decide(s, selector="greedy").action.tolist() for s in states]


def test_exact_ties_everywhere_are_redone_singly():
    """A network of zeros and no prior: every candidate ties, so no row is settled by the batch; the decisions
    still equal the single ones (the empty action: nothing improves on it)."""
    engine = _untrained("capacity", 0, scale=0.0)
    states = _states(engine._env, 8, 0)
    _, _, settled = greedy_ascent_batch(_batch_q(engine, states))
    assert not settled.any()
    batch = engine.decide_batch(states, selector="greedy")
    assert all(d.action.sum() == 0 for d in batch)
    assert [d.action.tolist() for d in batch] == [engine.decide(s, selector="greedy").action.tolist() for s in states]


@pytest.mark.parametrize("n", [5, 64, 65, 130])
def test_distinct_rows_finds_each_rows_copy(n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2, size=(400, n)) * (rng.random((400, 1)) < 0.5)  # many repeated (zero) rows
    distinct, inverse = distinct_rows(x)
    assert len(distinct) == len(np.unique(x, axis=0))
    assert np.array_equal(distinct[inverse], x)


def test_bad_batches_are_named():
    engine = _untrained("capacity", 0)
    good = [0] * 10 + [5]
    with pytest.raises(InvalidInputError) as err:
        engine.decide_batch([good, [0] * 9 + [7, 5]], selector="greedy")
    assert err.value.field == "state"
    with pytest.raises(InvalidInputError, match="time_limit"):
        engine.decide_batch([good, good], selector="greedy", time_limit=0.0)


@pytest.mark.parametrize("selector", ["mip", "greedy"])
def test_an_engine_that_kept_its_planner_batches_through_the_planner(selector):
    env = make("capacity", n_arms=10, budget=3, seed=0)
    enc = make_encoder(env.instance)
    net = QNetwork(env.instance.n_actions, enc.dim, (16, 32), enc.context_dim)
    engine = Engine(env.scenario, env.instance, net, DQNConfig(prior="whittle"), {"kept_planner": True})
    assert engine.planner is not None
    states = _states(env, 30, 0)
    batch = engine.decide_batch(states, selector=selector)
    assert all(("vectorised" in (d.reason or "")) == (selector == "mip") for d in batch)
    for state, d in zip(states, batch, strict=True):
        single = engine.decide(state, selector=selector)
        assert d.action.tolist() == single.action.tolist()
        assert d.policy_version == single.policy_version == engine.policy_version
