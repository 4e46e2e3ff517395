"""Planners (Whittle, Lagrangian, LP-update): exact argmax over the feasible set, ground truth on tiny
instances, the planner as a policy (decide, save / load), and the planner prior of the learned Q."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandits.restless.occupancy_model import highs_for
from engine import DQNConfig, Engine
from engine.analysis.exact_dp import exact_optimum, policy_value
from engine.analysis.exact_policy import planner_actions, planner_policy_value
from engine.analysis.occupancy_lp import build_occupancy_lp
from engine.planners import PLANNERS, make_planner
from engine.planners.arm_values import ControlStructure
from engine.planners.policy import PlannerPolicy
from engine.planners.prior import make_prior, resolve_prior
from engine.sequoia.dqn import DQNTrainer
from engine.sequoia.q_network import QNetwork
from scenarios import make
from scenarios.arms import Arms
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.cormab.instance import N_STATES
from scenarios.errors import InvalidInputError

DOMAINS = ("capacity", "scheduling", "routing", "multi_intervention")
J = 7


def _env(domain: str, seed: int = 0, n_arms: int = J, horizon: int = 20):
    if domain == "multi_intervention":
        return make(domain, n_arms=n_arms, budget=3, seed=seed, n_actions=6, horizon=horizon)
    return make(domain, n_arms=n_arms, budget=2, seed=seed, horizon=horizon)


def _planners(env) -> list[str]:
    names = list(PLANNERS)
    if not ControlStructure.of(env.instance).is_pull:
        names.remove("whittle")
    return names


@pytest.fixture(scope="module", params=DOMAINS)
def env(request):
    return _env(request.param)


@pytest.fixture(scope="module")
def policies(env):
    return {name: PlannerPolicy(env.scenario, env.instance, name) for name in _planners(env)}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_planner_mip_is_the_exact_argmax_of_its_objective(env, policies, data):
    """The MILP over the feasible set returns the best action of the planner's own objective (enumeration),
    every answer feasible and certified."""
    states = np.array(data.draw(st.lists(st.integers(0, N_STATES - 1), min_size=J, max_size=J)))
    ttg = data.draw(st.integers(1, env.instance.horizon))
    actions = env.instance.action_model().enumerate()
    for policy in policies.values():
        decision = policy.decide([*states, ttg])
        assert env.instance.action_model().is_feasible(decision.action)
        assert decision.status == "optimal"
        scores = policy.planner.score(states, ttg, actions)
        assert decision.value == pytest.approx(scores.max(), rel=1e-6, abs=1e-6)
        assert decision.bound >= scores.max() - 1e-6 * max(1.0, abs(scores.max()))
        greedy = policy.decide([*states, ttg], selector="greedy")
        assert env.instance.action_model().is_feasible(greedy.action) and greedy.status == "heuristic"
        assert greedy.value <= decision.value + 1e-9


def test_batched_planner_tables_equal_single_ones(env):
    rng = np.random.default_rng(3)
    states = rng.integers(0, N_STATES, (9, J))
    ttg = rng.integers(1, env.instance.horizon + 1, 9)
    for name in _planners(env):
        if not PLANNERS[name].can_be_prior:
            continue
        planner = make_planner(name, env.instance)
        batch = planner.tables(states, ttg)
        for b in range(9):
            assert np.allclose(batch[b], planner.table(states[b], int(ttg[b])))
        gains, base = planner.coefficients(states, ttg)
        actions = np.stack([env.instance.action_model().sample(rng) for _ in range(9)])
        if ControlStructure.of(env.instance).is_pull:  # the linear view is exact for arm pulls
            for b in range(9):
                assert gains[b] @ actions[b] + base[b] == pytest.approx(
                    planner.score(states[b], int(ttg[b]), actions[b])[0]
                )


@pytest.mark.parametrize("domain", ["capacity", "scheduling", "routing"])
def test_whittle_planner_is_near_the_dp_optimum_on_tiny_instances(domain):
    """Ground truth: exact DP optimum vs the exact value of the Whittle planner (DP policy evaluation)."""
    env = _env(domain, seed=1, n_arms=5, horizon=8)
    exact = exact_optimum(env.instance)
    planner = make_planner("whittle", env.instance)
    value = planner_policy_value(planner, exact)
    null = policy_value(env.instance, lambda s, h: np.zeros((len(s), env.instance.n_actions), np.int64), exact.actions)
    assert null < value <= exact.value + 1e-9
    assert value >= 0.99 * exact.value
    # at one step to go the index is the myopic gain: the planner is the exact one-step optimum
    states = np.random.default_rng(0).integers(0, N_STATES, (20, 5))
    chosen = planner_actions(planner, states, 1, exact.actions)
    for s, a in zip(states, chosen, strict=True):
        best = env.instance.expected_reward(s, exact.actions).max()
        assert env.instance.expected_reward(s, a) == pytest.approx(best)


def test_lagrangian_planner_on_multiple_interventions_is_near_the_dp_optimum():
    env = _env("multi_intervention", seed=0, n_arms=5, horizon=8)
    exact = exact_optimum(env.instance)
    value = planner_policy_value(make_planner("lagrangian", env.instance), exact)
    assert 0.97 * exact.value <= value <= exact.value + 1e-9


def test_lp_update_first_step_objective_uses_the_current_state():
    """LP-update re-solves from the state it is asked about: different states, different tables."""
    env = _env("capacity")
    planner = make_planner("lp_update", env.instance)
    t0 = planner.table(np.zeros(J, np.int64), 10)
    t1 = planner.table(np.full(J, 3), 10)
    assert not np.allclose(t0, t1)
    marginals = make_planner("lp_update", env.instance, rounding="marginals")
    d = PlannerPolicy(env.scenario, env.instance, marginals).decide([0] * J + [10])
    assert env.instance.action_model().is_feasible(d.action)


@pytest.mark.parametrize("domain", ["capacity", "multi_intervention"])
def test_lp_update_warm_start_is_a_function_of_the_state_alone(domain):
    """The warm start begins from a basis fixed per time to go, so the table at a state does not depend on the
    states solved before it (a Markov policy), and it solves the same LP as the cold solve: the first-step
    marginals' LP optimum is the same, and on an undegenerate state the decisions agree."""
    env = _env(domain, n_arms=5)
    rng = np.random.default_rng(0)
    states = [rng.integers(0, N_STATES, 5) for _ in range(6)]
    fresh = [make_planner("lp_update", env.instance).table(s, 7) for s in states]
    history = make_planner("lp_update", env.instance)
    for s in states[::-1]:
        history.table(s, 9)  # other states, another time to go
    replay = [history.table(s, 7) for s in states]
    for a, b in zip(fresh, replay, strict=True):
        np.testing.assert_array_equal(a, b)
    warm = make_planner("lp_update", env.instance)
    basis = warm._start_basis(7)
    assert basis is not None
    for s in states:
        rho = np.eye(N_STATES)[s]
        lp = build_occupancy_lp(env.instance, warm.model, training=False, rho=rho, horizon=7)
        objectives = []
        for start in (None, basis):
            h = highs_for(lp.c, lp.A, lp.row_lo, lp.row_hi, lp.col_lo, lp.col_hi, 60.0)
            if start is not None:
                h.setBasis(start)
            h.run()
            objectives.append(h.getInfo().objective_function_value)
        assert objectives[1] == pytest.approx(objectives[0], rel=1e-9, abs=1e-9)
        action = PlannerPolicy(env.scenario, env.instance, warm).decide([*s.tolist(), 7]).action
        assert env.instance.action_model().is_feasible(action)
    with pytest.raises(InvalidInputError, match="warm_start"):
        make_planner("lp_update", env.instance, warm_start="yes")


def test_lp_update_solves_cold_when_the_warm_start_fails(monkeypatch):
    """A warm solve that does not end proven optimal (here: stopped by a zero time limit) is redone cold, and a
    cold solve that ends without a solution by interior point: the decision table is the cold solve's."""
    import engine.planners.lagrangian as lagrangian

    env = _env("capacity", n_arms=5)
    s = np.array([0, 1, 2, 3, 1])
    cold = make_planner("lp_update", env.instance, warm_start=False).table(s, 6)
    original, calls = lagrangian.solved_lp, []

    def failing_first(lp, time_limit, basis, interior=False):
        calls.append((basis is not None, interior))
        return original(lp, 0.0 if len(calls) < 3 else time_limit, basis, interior)

    monkeypatch.setattr(lagrangian, "solved_lp", failing_first)
    warm = make_planner("lp_update", env.instance)
    warm._bases[6] = make_planner("lp_update", env.instance)._start_basis(6)  # the reference, solved unpatched
    table = warm.table(s, 6)
    assert calls == [(True, False), (False, False), (False, True)]
    np.testing.assert_allclose(table, cold, atol=1e-6)


def test_bad_planner_requests_name_the_field():
    env = _env("multi_intervention")
    with pytest.raises(InvalidInputError, match="planner"):
        make_planner("whittle", env.instance)
    with pytest.raises(InvalidInputError, match="planner"):
        make_planner("no_such_planner", env.instance)
    with pytest.raises(InvalidInputError, match="rounding"):
        make_planner("lp_update", env.instance, rounding="stochastic")
    policy = PlannerPolicy(env.scenario, env.instance, "lagrangian")
    with pytest.raises(InvalidInputError, match="selector"):
        policy.decide([0] * J + [3], selector="enumerate")
    with pytest.raises(InvalidInputError, match="state"):
        policy.decide([0] * (J - 1))


def test_engine_plan_saves_and_loads_through_engine_load(tmp_path):
    env = _env("scheduling")
    planner = Engine.plan(env, "whittle")
    path = planner.save(tmp_path / "whittle")
    config = json.loads((path / "config.json").read_text())
    assert config["kind"] == "planner" and config["planner"]["name"] == "whittle"
    loaded = Engine.load(path)
    assert isinstance(loaded, PlannerPolicy) and loaded.policy_version == planner.policy_version
    for s in np.random.default_rng(0).integers(0, N_STATES, (5, J)):
        assert np.array_equal(loaded.decide([*s, 7]).action, planner.decide([*s, 7]).action)


def _silent_engine(env, prior: str) -> Engine:
    """An engine whose network outputs 0 everywhere: Q is the prior alone."""
    trainer = DQNTrainer(env.instance, DQNConfig(hidden=(8, 8), prior=prior), seed=0)
    return Engine(env.scenario, env.instance, trainer.net, trainer.config)


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_silent_network_with_the_planner_prior_is_the_planner(domain):
    """Q = planner prior + 0 decides exactly as the planner, through the engine's exact selectors."""
    env = _env(domain, seed=2)
    prior = resolve_prior("auto", env.instance)
    assert prior == ("lagrangian" if domain == "multi_intervention" else "whittle")
    engine = _silent_engine(env, "auto")
    planner = PlannerPolicy(env.scenario, env.instance, prior)
    actions = env.instance.action_model().enumerate()
    rng = np.random.default_rng(1)
    for _ in range(5):
        states, ttg = rng.integers(0, N_STATES, J), int(rng.integers(1, 21))
        if domain == "multi_intervention":  # the prior is the planner objective's first-order line
            gains, base = planner.planner.coefficients(states, ttg)
            best = float((actions @ gains + base).max())
        else:  # the linear view is the planner's objective exactly
            best = float(planner.planner.score(states, ttg, actions).max())
        for selector in ("enumerate", "mip"):
            opts = {"mip_rel_gap": 1e-9} if selector == "mip" else {}
            decision = engine.decide([*states, ttg], selector=selector, **opts)
            assert decision.value == pytest.approx(best, rel=1e-6, abs=1e-6)
            if domain != "multi_intervention":
                assert planner.planner.score(states, ttg, decision.action)[0] == pytest.approx(best)
                assert np.array_equal(decision.action, planner.decide([*states, ttg]).action) or planner.planner.score(
                    states, ttg, planner.decide([*states, ttg]).action
                )[0] == pytest.approx(best)


def test_snapshot_selection_keeps_the_planner_unless_beaten_significantly():
    """A snapshot that is worse than the planner is never kept; the first snapshot (silent network) is."""
    env = _env("capacity", seed=1)
    trainer = DQNTrainer(env.instance, DQNConfig(hidden=(8, 8), validation_episodes=6, prior="whittle"), seed=0)
    from engine.sequoia.selectors import SELECTORS

    silent = QNetwork(trainer.net.n_actions, trainer.net.state_dim, (8, 8), trainer.net.context_dim)
    with torch.no_grad():
        silent.out.weight.zero_()
        silent.out.bias.zero_()
    noisy = QNetwork(trainer.net.n_actions, trainer.net.state_dim, (8, 8), trainer.net.context_dim)
    with torch.no_grad():  # a network that drowns the prior: a much worse policy
        noisy.out.weight.normal_(0.0, 50.0)
    trainer._select_snapshot([(0, silent), (5, noisy)], SELECTORS["enumerate"]())
    assert trainer.summary.selected_snapshot == 0
    assert all(
        torch.equal(a, b) for a, b in zip(trainer.net.state_dict().values(), silent.state_dict().values(), strict=True)
    )


def test_prior_names_are_checked():
    env = _env("capacity")
    with pytest.raises(InvalidInputError, match="prior"):
        make_prior("oracle", env.instance)
    with pytest.raises(InvalidInputError, match="prior"):
        make_prior("lp_update", env.instance)
    assert make_prior("none", env.instance) is None


def test_cli_writes_a_planner_policy_that_decide_reads(tmp_path, capsys):
    from api.cli import main

    out = tmp_path / "whittle"
    assert main(["train", "capacity", "--n-arms", "8", "--budget", "2", "--planner", "whittle", "--out", str(out)]) == 0
    assert isinstance(Engine.load(out), PlannerPolicy)
    capsys.readouterr()
    assert main(["decide", str(out), "--state", "0,1,2,3,0,1,2,3,5"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["status"] == "optimal"
    assert main(["train", "capacity", "--planner", "whittle", "--episodes", "3", "--out", str(tmp_path / "x")]) == 2
    assert "--planner" in capsys.readouterr().err


def test_on_interventions_training_keeps_the_planner_itself_unless_beaten():
    """The intervention prior only linearises the planner's objective: when no network beats the planner on
    the validation episodes, the engine decides with the planner itself (and its exact value is the planner's)."""
    env = _env("multi_intervention", seed=1, n_arms=5, horizon=6)
    trainer = DQNTrainer(env.instance, DQNConfig(hidden=(8, 8), validation_episodes=6), seed=0)
    from engine.sequoia.selectors import SELECTORS

    noisy = QNetwork(trainer.net.n_actions, trainer.net.state_dim, (8, 8), trainer.net.context_dim)
    with torch.no_grad():  # a network that drowns the prior: worse than the planner
        noisy.out.weight.normal_(0.0, 50.0)
    trainer._select_snapshot([(0, noisy)], SELECTORS["enumerate"]())
    assert trainer.summary.kept_planner
    engine = Engine(env.scenario, env.instance, trainer.net, trainer.config, trainer.summary.to_dict())
    planner = PlannerPolicy(env.scenario, env.instance, "lagrangian")
    for s in np.random.default_rng(2).integers(0, N_STATES, (4, 5)):
        assert np.array_equal(engine.decide([*s, 4]).action, planner.decide([*s, 4]).action)
    exact = exact_optimum(env.instance)
    from engine.analysis.exact_policy import greedy_policy_value

    assert greedy_policy_value(engine, exact) == pytest.approx(
        planner_policy_value(make_planner("lagrangian", env.instance), exact)
    )


@given(st.integers(2, 5), st.integers(0, 10_000), st.floats(1.0, 4.0))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_whittle_with_unequal_pull_costs_is_the_one_step_optimum_at_the_last_step(n_arms, seed, budget):
    """At one step to go an index is the pull's immediate gain per unit of cost, so index x cost summed over the
    pulls, maximised under the cost budget, is the exact one-step optimum (enumeration is the ground truth)."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(2), size=(n_arms, 2, 2))
    R = rng.uniform(0.0, 2.0, size=(n_arms, 2, 2))
    C = np.stack([np.zeros(n_arms), rng.uniform(0.5, 3.0, n_arms)], axis=1)
    instance = BudgetedInstance(arms=Arms.from_arrays(P, R, C, horizon=3), budget=budget)
    states = rng.integers(0, 2, n_arms)
    actions = instance.action_model().enumerate()
    rewards = np.array([float(instance.expected_reward(states, a)) for a in actions])
    decision = PlannerPolicy("budgeted", instance, "whittle").decide([*states.tolist(), 1])
    assert instance.action_model().is_feasible(decision.action)
    assert float(instance.expected_reward(states, decision.action)) == pytest.approx(rewards.max(), abs=1e-9)


def test_each_planner_says_where_it_applies_and_what_stands_in_for_it():
    """Whittle applies only where an arm's action is a pull; where it does not, the method set leaves it out and an
    ``auto`` prior falls back to its declared stand-in, whose fit accepts the instance."""
    from engine.analysis.evaluation import method_names

    pulls = make("capacity", n_arms=5, budget=2, seed=0, horizon=4).instance
    interventions = make("multi_intervention", n_arms=5, budget=2, seed=0, horizon=4).instance
    assert PLANNERS["whittle"].applies(pulls) and not PLANNERS["whittle"].applies(interventions)
    assert "whittle" in method_names(pulls) and "whittle" not in method_names(interventions)
    assert all(PLANNERS[name].applies(interventions) for name in ("lagrangian", "lp_update"))
    stand_in = PLANNERS["whittle"].fallback
    assert resolve_prior("auto", interventions) == stand_in and make_planner(stand_in, interventions) is not None
    with pytest.raises(InvalidInputError) as err:
        make_planner("whittle", interventions)
    assert err.value.field == "planner"
