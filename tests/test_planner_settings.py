"""A planner policy's settings: checked by name, part of its version, saved, honoured (time limits included), the
same decision by the batch and the single path."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import DQNConfig, Engine
from engine.planners import make_planner
from engine.planners.policy import PlannerPolicy
from engine.sequoia.dqn import make_encoder
from engine.sequoia.q_network import QNetwork
from scenarios import make
from scenarios.arms import Arms
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.errors import InvalidInputError
from solvers.solution import OPTIMAL, TIME_LIMIT


@pytest.fixture(scope="module")
def env():
    return make("capacity", n_arms=8, budget=2, seed=0, horizon=6)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"mip_rel_gap": "x"}, "mip_rel_gap"),
        ({"mip_rel_gap": -5}, "mip_rel_gap"),
        ({"mip_rel_gap": True}, "mip_rel_gap"),
        ({"time_limit": "abc"}, "time_limit"),
        ({"time_limit": -1}, "time_limit"),
        ({"time_limit": None}, "time_limit"),
        ({"reduce": "bogus"}, "reduce"),
        ({"reduce": 2}, "reduce"),
        ({"backend": "nope"}, "backend"),
        ({"foo": 1}, "foo"),
    ],
)
def test_bad_settings_are_refused_by_name(env, settings, field):
    with pytest.raises(InvalidInputError) as err:
        PlannerPolicy(env.scenario, env.instance, "whittle", **settings)
    assert err.value.field == field


def test_planner_options_are_checked_against_the_planner(env):
    with pytest.raises(InvalidInputError) as err:
        Engine.plan(env, "lp_update", warmstart=False)  # misspelt: was stored and ignored
    assert err.value.field == "warmstart" and "warm_start" in str(err.value)
    assert Engine.plan(env, "lp_update", warm_start=False).planner.warm_start is False
    with pytest.raises(InvalidInputError) as err:
        Engine.plan(env, "lagrangian", roundng="duals")
    assert err.value.field == "roundng"
    built = make_planner("whittle", env.instance)
    with pytest.raises(InvalidInputError) as err:
        PlannerPolicy(env.scenario, env.instance, built, rounding="duals")
    assert err.value.field == "rounding"


def test_settings_are_part_of_the_version_and_survive_a_save(env, tmp_path):
    default = PlannerPolicy(env.scenario, env.instance, "whittle")
    assert PlannerPolicy(env.scenario, env.instance, "whittle", mip_rel_gap=1e-6).policy_version == (
        default.policy_version
    )
    others = [{"mip_rel_gap": 0.2}, {"time_limit": 0.05}, {"reduce": False}, {"reduce": "bounds"}]
    versions = {PlannerPolicy(env.scenario, env.instance, "whittle", **o).policy_version for o in others}
    assert len(versions) == len(others) and default.policy_version not in versions
    policy = PlannerPolicy(env.scenario, env.instance, "whittle", reduce=False, mip_rel_gap=0.01)
    loaded = PlannerPolicy.load(policy.save(tmp_path / "p"))
    assert loaded.reduce is False and loaded.mip_rel_gap == 0.01
    assert loaded.policy_version == policy.policy_version


@pytest.mark.parametrize("reduce", [True, False])
def test_batch_and_single_decisions_agree_on_ties(reduce):
    """Four identical arms, every pair optimal: the batch returns what the single call returns."""
    static = np.stack([np.stack([np.eye(2), np.eye(2)])] * 4)
    rewards = np.zeros((4, 2, 2))
    rewards[:, :, 1] = 1.0
    instance = BudgetedInstance(arms=Arms.from_arrays(static, rewards, horizon=3), budget=2)
    policy = PlannerPolicy("budgeted", instance, "whittle", reduce=reduce)
    rows = [[0, 0, 0, 0, 2], [1, 1, 0, 0, 1], [1, 0, 1, 0, 3]]
    batch = policy.decide_batch(rows)
    for row, decision in zip(rows, batch, strict=True):
        assert decision.action.tolist() == policy.decide(row).action.tolist()


def test_lp_update_honours_the_decision_time_limit():
    """The per-decision LP stops at the limit: a feasible action flagged time_limit, with no value or bound;
    with time enough the same state is decided optimally."""
    env = make("capacity", n_arms=40, budget=8, seed=0, horizon=20)
    policy = Engine.plan(env, "lp_update")
    state = [*np.random.default_rng(0).integers(0, 4, 40).tolist(), 20]
    start = time.perf_counter()
    rushed = policy.decide(state, time_limit=1e-3)
    assert time.perf_counter() - start < 5.0  # the LP alone takes about a second here
    assert rushed.status == TIME_LIMIT and "did not finish" in rushed.reason
    assert env.instance.action_model().is_feasible(rushed.action)
    assert rushed.to_dict()["value"] is None and rushed.to_dict()["bound"] is None
    assert policy.planner.deadline is None and not policy.planner._bases  # nothing half-solved kept
    assert policy.decide(state, time_limit=60.0).status == OPTIMAL


def test_lp_update_marginal_scores_are_the_milp_objective():
    """Scoring an action alone or among others gives it the value the decision MILP gives it."""
    env = make("multi_intervention", n_arms=6, budget=3, seed=0, n_actions=6, horizon=6)
    policy = Engine.plan(env, planner="lp_update", rounding="marginals")
    actions = env.instance.action_model().enumerate()
    rng = np.random.default_rng(0)
    for _ in range(3):
        states, ttg = rng.integers(0, 4, 6), int(rng.integers(1, 7))
        decision = policy.decide([*states.tolist(), ttg])
        alone = policy.planner.score(states, ttg, decision.action[None])[0]
        among = policy.planner.score(states, ttg, actions)
        assert alone == pytest.approx(decision.value, abs=1e-7)
        assert among.max() == pytest.approx(decision.value, abs=1e-7)


def test_an_engine_that_kept_its_planner_refuses_selector_options():
    env = make("routing", n_arms=7, budget=2, seed=0, horizon=6)
    encoder = make_encoder(env.instance)
    network = QNetwork(env.instance.n_actions, encoder.dim, (16, 32), encoder.context_dim)
    engine = Engine(env.scenario, env.instance, network, DQNConfig(prior="lagrangian"), {"kept_planner": True})
    state = [0, 1, 2, 3, 0, 1, 2, 4]
    with pytest.raises(InvalidInputError) as err:
        engine.decide(state, mip_rel_gap=0.3)
    assert err.value.field == "mip_rel_gap"
    with pytest.raises(InvalidInputError):
        engine.decide_batch([state, state], mip_rel_gap=0.3)
    assert engine.decide(state).status == OPTIMAL


def test_rest_planner_options_are_422_naming_the_field(rest):
    client, headers = rest
    body = {"scenario": "capacity", "planner": "whittle", "n_arms": 6, "budget": 2}
    cases = [
        ({"time_limit": "abc"}, "options.time_limit"),
        ({"mip_rel_gap": "x"}, "options.mip_rel_gap"),
        ({"backend": "nope"}, "options.backend"),
        ({"scenario": "x"}, "options"),
        ({"instance": 1}, "options"),
        ({"reduce": "bogus"}, "options.reduce"),
        ({"foo": 1}, "options.foo"),
    ]
    for options, field in cases:
        r = client.post("/v1/planners", json={**body, "options": options}, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (options, r.text)
    first = client.post("/v1/planners", json=body, headers=headers)
    other = client.post("/v1/planners", json={**body, "options": {"mip_rel_gap": 0.2}}, headers=headers)
    assert first.status_code in (200, 201) and other.status_code in (200, 201)
    assert first.json()["id"] != other.json()["id"]  # other settings: another policy, not the first one


@pytest.mark.parametrize("name", ["whittle", "lagrangian"])
def test_tables_refuse_times_to_go_outside_the_horizon(env, name):
    """Index arrays would wrap round silently (time to go 0 read the values of time to go H)."""
    planner = make_planner(name, env.instance)
    states = np.zeros(env.instance.n_arms, dtype=np.int64)
    for bad in (0, env.instance.horizon + 1):
        with pytest.raises(InvalidInputError, match="time_to_go"):
            planner.table(states, bad)
    with pytest.raises(InvalidInputError, match="time_to_go"):
        planner.tables(np.stack([states, states]), np.array([1, 0]))
    assert planner.tables(np.stack([states, states]), np.array([1, env.instance.horizon])).shape[0] == 2
