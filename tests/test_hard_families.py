"""The hard families of issue 16 item 3 (overlapping_reach, coverage): JSON round trip, errors naming the
field, the environment, the exact expected reward (against enumeration of the next-state law and against
simulation), the exact myopic MILP, the exact DP optimum above every planner, the certified occupancy bound
above the optimum, feasible planner decisions, a short DQN training and a tiny sweep."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.analysis.exact_dp import exact_optimum
from engine.analysis.exact_policy import planner_policy_value
from engine.analysis.occupancy_bound import occupancy_upper_bound
from engine.planners import PLANNERS, make_planner
from engine.planners.arm_values import ControlStructure
from engine.planners.policy import PlannerPolicy
from scenarios import list_scenarios, load_instance, make
from scenarios.cormab.instance import N_STATES
from scenarios.errors import InvalidInputError
from solvers.backends.highs import HighsSolver

FAMILIES = ("overlapping_reach", "coverage")
J, H = 6, 8


def _env(family: str, seed: int = 0, horizon: int = H):
    return make(family, n_arms=J, seed=seed, horizon=horizon)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def env(family):
    return _env(family)


@pytest.fixture(scope="module")
def exact(env):
    return exact_optimum(env.instance)


def _planners(instance) -> list[str]:
    names = [n for n in PLANNERS if PLANNERS[n].can_be_prior]  # LP-update re-solves per state: too slow here
    if not ControlStructure.of(instance).is_pull:
        names.remove("whittle")
    return names


# ------------------------------------------------------------------------------------------ instances
def test_registered(family):
    assert family in list_scenarios()


def test_json_round_trip(env, family):
    inst = env.instance
    text = inst.model_dump_json()
    again = load_instance(family, json.loads(text))
    assert type(again) is type(inst)
    assert again == inst
    assert load_instance(family, text) == inst
    assert make(family, instance=text).instance == inst


def test_generator_is_seeded(family):
    assert _env(family, seed=3).instance == _env(family, seed=3).instance
    assert _env(family, seed=3).instance != _env(family, seed=4).instance


def test_overlapping_reach_defaults_and_reach():
    inst = make("overlapping_reach", seed=0).instance
    assert (inst.n_arms, inst.n_actions, inst.budget) == (6, 8, 4)
    W = np.asarray(inst.weights)
    assert np.all((W > 0).sum(axis=0) == 2)  # two arms per intervention
    assert np.any((W > 0).sum(axis=1) >= 2)  # some arm reached by several interventions
    inst3 = make("overlapping_reach", n_arms=6, budget=2, seed=1, arms_per_intervention=3, n_actions=5).instance
    assert np.all((np.asarray(inst3.weights) > 0).sum(axis=0) == 3) and inst3.n_actions == 5


def test_coverage_districts_partition_the_arms():
    inst = make("coverage", n_arms=7, budget=2, seed=2, district_size=3).instance
    assert sorted(j for d in inst.districts for j in d) == list(range(7))
    assert [len(d) for d in inst.districts] == [3, 3, 1]
    top = np.asarray(inst.arms.arrival_rewards)[:, -1]
    for d, cap in zip(inst.districts, inst.caps, strict=True):
        assert top[d].max() <= cap <= 1.25 * top[d].max() + 1e-9


@pytest.mark.parametrize(
    ("family", "params", "field"),
    [
        ("overlapping_reach", {"arms_per_intervention": 0}, "arms_per_intervention"),
        ("overlapping_reach", {"arms_per_intervention": 7}, "arms_per_intervention"),
        ("overlapping_reach", {"budget": 9, "n_actions": 8}, "budget"),
        ("overlapping_reach", {"n_arms": 0}, "n_arms"),
        ("coverage", {"district_size": 0}, "district_size"),
        ("coverage", {"budget": 7}, "budget"),
        ("coverage", {"n_good": 9}, "n_good"),
        ("coverage", {"cap_low": 2.0, "cap_high": 1.0}, "cap_low"),
        ("coverage", {"no_such_option": 1}, "params"),
    ],
)
def test_generator_errors_name_the_field(family, params, field):
    with pytest.raises(InvalidInputError) as err:
        make(family, **{"n_arms": J, **params})
    assert err.value.field == field


@pytest.mark.parametrize(
    ("family", "edit", "field"),
    [
        ("coverage", lambda d: d.update(caps=d["caps"][:-1]), "instance.caps"),
        ("coverage", lambda d: d.update(caps=[-1.0] * len(d["caps"])), "instance.caps"),
        ("coverage", lambda d: d.update(districts=[[0, 1], [1, 2, 3, 4, 5]]), "instance.districts"),
        ("coverage", lambda d: d.update(budget=99), "instance.budget"),
        ("coverage", lambda d: d.update(budget=-1), "instance.budget"),
        ("overlapping_reach", lambda d: d.update(weights=d["weights"][:-1]), "instance.weights"),
        ("overlapping_reach", lambda d: d.update(alpha=[2.0] * J), "instance.alpha"),
        ("overlapping_reach", lambda d: d.update(budget=99), "instance.budget"),
    ],
)
def test_instance_errors_name_the_field(family, edit, field):
    data = _env(family).instance.model_dump(mode="json")
    edit(data)
    with pytest.raises(InvalidInputError) as err:
        load_instance(family, data)
    assert err.value.field == field


# ------------------------------------------------------------------------------------------ environment
def test_env_steps_and_names_its_scenario(env, family):
    assert env.scenario == family
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)
    total = 0.0
    for _ in range(env.instance.horizon):
        a = env.action_model().sample(rng)
        obs, reward, terminated, _, info = env.step(a)
        assert obs.shape == (J + 1,) and np.isfinite(reward) and np.isfinite(info["expected_reward"])
        total += reward
    assert terminated and obs[-1] == 0
    with pytest.raises(InvalidInputError):
        env.reset(seed=0)
        env.step(np.ones(env.instance.n_actions, dtype=np.int64) * 2)


def _enumerated_expectation(instance, states: np.ndarray, action: np.ndarray) -> float:
    """E[realised_reward(s')] by summing over all 2^J up/down patterns of the product law."""
    p = np.asarray(instance.up_probability(action), dtype=float)
    total = 0.0
    for pattern in itertools.product((False, True), repeat=instance.n_arms):
        up = np.asarray(pattern)
        nxt = np.clip(states + np.where(up, 1, -1), 0, N_STATES - 1)
        total += float(np.prod(np.where(up, p, 1 - p))) * instance.realised_reward(nxt)
    return total


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_expected_reward_is_exact(env, data):
    """expected_reward equals the expectation of realised_reward under the product next-state law, and its
    batched form agrees with the single one."""
    inst = env.instance
    states = np.array(data.draw(st.lists(st.integers(0, N_STATES - 1), min_size=J, max_size=J)))
    seed = data.draw(st.integers(0, 2**31 - 1))
    action = inst.action_model().sample(np.random.default_rng(seed))
    exact = float(inst.expected_reward(states, action))
    assert exact == pytest.approx(_enumerated_expectation(inst, states, action), rel=1e-10, abs=1e-10)
    batch = np.stack([action, inst.action_model().sample(np.random.default_rng(seed + 1))])
    got = inst.expected_reward(np.stack([states, states])[:, None, :], batch)
    assert got.shape == (2, 2) and got[0, 0] == pytest.approx(exact)


def test_expected_reward_matches_simulation(env):
    """The mean realised reward of many env steps from one state is within 4 standard errors of the
    expected reward reported in ``info``."""
    inst = env.instance
    action = inst.action_model().sample(np.random.default_rng(5))
    states = np.array([3, 2, 1, 0, 3, 2])[:J]
    rewards = []
    for k in range(4000):
        env.reset(seed=k, options={"states": states})
        _, r, _, _, info = env.step(action)
        rewards.append(r)
    rewards = np.asarray(rewards)
    se = rewards.std(ddof=1) / np.sqrt(len(rewards))
    assert abs(rewards.mean() - info["expected_reward"]) < 4 * se + 1e-9


def test_coverage_reward_is_not_additive():
    inst = _env("coverage").instance
    table = np.asarray(inst.arms.arrival_rewards)
    top = np.full(J, N_STATES - 1)
    assert inst.realised_reward(top) < table[:, -1].sum() - 1e-6  # the caps bind
    assert inst.realised_reward(top) == pytest.approx(sum(inst.caps))


def test_myopic_milp_is_the_exact_one_step_argmax(env):
    """The myopic MILP's optimum equals the best expected one-step reward over every feasible action."""
    inst = env.instance
    actions = inst.action_model().enumerate()
    rng = np.random.default_rng(0)
    for _ in range(5):
        states = rng.integers(0, N_STATES, J)
        sol = HighsSolver().solve(inst.myopic_milp(states))
        best = float(np.max(inst.expected_reward(states, actions)))
        assert sol.objective == pytest.approx(best, rel=1e-7, abs=1e-7)
        a = np.round(sol.x[: inst.n_actions]).astype(np.int64)
        assert inst.action_model().is_feasible(a)
        assert float(inst.expected_reward(states, a)) == pytest.approx(best, rel=1e-7, abs=1e-7)


# ------------------------------------------------------------------------------------------ ground truth
def test_exact_optimum_above_every_planner(env, exact):
    for name in _planners(env.instance):
        value = planner_policy_value(make_planner(name, env.instance), exact)
        assert value <= exact.value + 1e-7, name
        assert value > 0


def test_occupancy_bound_above_optimum(env, exact):
    bound = occupancy_upper_bound(env.instance)
    assert bound.converged
    assert bound.bound >= exact.value - 1e-7


def test_bound_and_optimum_on_more_seeds(family):
    """The certified bound stays above the exact optimum (and the planners below it) across seeds."""
    for seed in (1, 2):
        inst = _env(family, seed=seed, horizon=5).instance
        ex = exact_optimum(inst)
        assert occupancy_upper_bound(inst).bound >= ex.value - 1e-7
        for name in _planners(inst):
            assert planner_policy_value(make_planner(name, inst), ex) <= ex.value + 1e-7


def test_planner_decisions_feasible(env, family):
    rng = np.random.default_rng(2)
    model = env.action_model()
    for name in [*_planners(env.instance), "lp_update"]:
        policy = PlannerPolicy(family, env.instance, name)
        for _ in range(3):
            state = [*rng.integers(0, N_STATES, J).tolist(), int(rng.integers(1, env.instance.horizon + 1))]
            decision = policy.decide(state)
            assert model.is_feasible(decision.action), name


def test_planner_policy_save_load_keeps_the_family(env, family, tmp_path):
    policy = PlannerPolicy(family, env.instance, "lagrangian")
    loaded = PlannerPolicy.load(policy.save(tmp_path / "p"))
    assert loaded.scenario == family and type(loaded.instance) is type(env.instance)


# ------------------------------------------------------------------------------------------ learning
def test_dqn_trains_and_decides_feasibly(family):
    from engine import DQNConfig, Engine
    from engine.analysis.exact_policy import greedy_policy_value

    env = _env(family, horizon=4)
    cfg = DQNConfig(episodes=2, warm_start_samples=128, warm_start_epochs=5, hidden=[8])
    engine = Engine.train(env, cfg, seed=0, progress=False)
    decision = engine.decide([0, 1, 2, 3, 0, 1, 4])
    assert env.action_model().is_feasible(decision.action)
    ex = exact_optimum(env.instance)
    assert 0 < greedy_policy_value(engine, ex) <= ex.value + 1e-7


def test_tiny_sweep_runs_on_both_families():
    from engine.experiments.sweep import SweepConfig, run_sweep

    cfg = SweepConfig(
        domains=FAMILIES,
        seeds=(0,),
        n_arms=J,
        budget=2,
        horizon=4,
        train_episodes=1,
        eval_episodes=2,
        dqn={"warm_start_samples": 128, "warm_start_epochs": 5, "hidden": [8]},
        methods=("dqn_mip", "lagrangian", "myopic", "null"),
    )
    sweep = run_sweep(cfg, progress=False)
    for task in sweep["tasks"]:
        assert task["exact_optimum"] <= task["upper_bound"] + 1e-7
        assert task["trained_exact_value"] <= task["exact_optimum"] + 1e-7
        for pct in task["planner_exact_pct_of_optimum"].values():
            assert pct <= 100.0 + 1e-6
