"""Lock-step evaluation (engine/analysis/lockstep.py): a policy that decides batches at once runs its episodes side by
side with one batch decision per step, and every per-episode number equals the sequential path's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import DQNConfig, Engine
from engine.analysis.evaluation import EnginePolicy, Evaluation, evaluate, make_method
from engine.analysis.lockstep import runs_in_lockstep
from engine.planners.policy import PlannerPolicy
from engine.sequoia.dqn import make_encoder
from engine.sequoia.q_network import QNetwork
from scenarios import make

#: a single decision's reduced MILP reports its gap from floating objective and bound (~1e-16 where the vectorised
#: oracle, which proves the optimum exactly, reports 0.0)
GAP_NOISE = 1e-12


def _assert_same(seq: Evaluation, lock: Evaluation, name: str) -> None:
    a, b = seq.methods[name], lock.methods[name]
    assert a.realised == b.realised
    assert a.expected == b.expected
    assert a.statuses == b.statuses
    assert len(a.gaps) == len(b.gaps) and len(a.decision_seconds) == len(b.decision_seconds)
    for x, y in zip(a.gaps, b.gaps, strict=True):
        assert (np.isinf(x) and np.isinf(y)) or abs(x - y) <= GAP_NOISE, (x, y)


def _both(instance, policies: dict, **kwargs) -> tuple[Evaluation, Evaluation]:
    seq = evaluate(instance, policies, progress=False, batched=False, **kwargs)
    return seq, evaluate(instance, policies, progress=False, **kwargs)


class _CountingBatch:
    """Counts ``act_batch`` calls and the states each decided, delegating to a policy."""

    def __init__(self, policy) -> None:
        self.policy, self.calls, self.rows = policy, 0, 0

    def act(self, states, time_to_go, rng):
        return self.policy.act(states, time_to_go, rng)

    def act_batch(self, states, time_to_go, rngs):
        self.calls += 1
        self.rows += len(states)
        return self.policy.act_batch(states, time_to_go, rngs)

    def acts_in_batches(self) -> bool:
        return self.policy.acts_in_batches()


def _untrained_engine(scenario: str, seed: int = 0) -> Engine:
    env = make(scenario, n_arms=10, budget=3, seed=seed)
    enc = make_encoder(env.instance)
    torch.manual_seed(seed)
    net = QNetwork(env.instance.n_actions, enc.dim, (16, 32), enc.context_dim)
    return Engine(env.scenario, env.instance, net, DQNConfig(hidden=(16, 32), prior="whittle"))


@pytest.mark.parametrize("scenario", ["capacity", "scheduling", "budgeted"])
def test_whittle_lockstep_equals_sequential(scenario):
    env = make(scenario, n_arms=14, budget=4, seed=3)
    policy = _CountingBatch(PlannerPolicy(scenario, env.instance, "whittle"))
    assert runs_in_lockstep(policy)
    seq, lock = _both(env.instance, {"whittle": policy}, episodes=5, seed=2)
    _assert_same(seq, lock, "whittle")
    horizon = env.instance.horizon
    assert policy.calls == horizon and policy.rows == 5 * horizon  # one batch per step, over every episode
    assert lock.methods["whittle"].statuses == {"optimal": 5 * horizon}


@pytest.mark.parametrize("scenario", ["capacity", "scheduling", "budgeted"])
def test_dqn_greedy_lockstep_equals_sequential(scenario):
    engine = _untrained_engine(scenario, seed=1)
    policies = {"iterative_dqn": make_method("iterative_dqn", engine), "mip": EnginePolicy(engine, "mip")}
    assert runs_in_lockstep(policies["iterative_dqn"])
    assert not runs_in_lockstep(policies["mip"])  # the exact argmax decides state by state
    seq, lock = _both(engine.instance, policies, episodes=3, seed=5)
    for name in policies:
        _assert_same(seq, lock, name)
    assert lock.methods["iterative_dqn"].statuses == {"heuristic": 3 * engine.instance.horizon}


def test_policy_without_batch_path_runs_episode_by_episode():
    engine = _untrained_engine("capacity")

    class Refuses(_CountingBatch):
        def acts_in_batches(self) -> bool:
            return False

    refuses = Refuses(make_method("whittle", engine))
    baseline = make_method("random", engine)  # act only
    assert not runs_in_lockstep(refuses) and not runs_in_lockstep(baseline)
    seq, lock = _both(engine.instance, {"whittle": refuses, "random": baseline}, episodes=3, seed=0)
    assert refuses.calls == 0
    for name in ("whittle", "random"):
        _assert_same(seq, lock, name)


class _StaggeredInstance:
    """An instance whose episode ``seed`` lasts ``1 + seed % horizon`` steps (episodes end at different steps)."""

    def __init__(self, instance) -> None:
        self.instance, self.horizon = instance, instance.horizon

    def make_env(self):
        env, horizon = self.instance.make_env(), self.horizon
        reset = env.reset

        def staggered_reset(*, seed=None, options=None):
            return reset(seed=seed, options={"time_to_go": 1 + int(seed) % horizon})

        env.reset = staggered_reset
        return env


def test_episodes_of_different_lengths_stop_being_decided():
    env = make("capacity", n_arms=12, budget=3, seed=4)
    staggered = _StaggeredInstance(env.instance)
    policy = _CountingBatch(PlannerPolicy("capacity", env.instance, "whittle"))
    seeds = [3, 0, 7, 12, 5]
    seq, lock = _both(staggered, {"whittle": policy}, episode_seeds=seeds)
    _assert_same(seq, lock, "whittle")
    lengths = [1 + s % env.instance.horizon for s in seeds]
    assert policy.calls == max(lengths) and policy.rows == sum(lengths)
    assert len(lock.methods["whittle"].decision_seconds) == sum(lengths)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), episodes=st.integers(1, 6), scenario=st.sampled_from(["capacity", "scheduling"]))
def test_lockstep_equals_sequential_over_seeds(seed, episodes, scenario):
    env = make(scenario, n_arms=10, budget=3, seed=seed % 50)
    policies = {"whittle": PlannerPolicy(scenario, env.instance, "whittle")}
    seq, lock = _both(env.instance, policies, episodes=episodes, seed=seed)
    _assert_same(seq, lock, "whittle")
    assert len(lock.methods["whittle"].realised) == episodes
