"""The one arm model (scenarios/arms.py): validation, JSON, sampling, and every part working on general arms."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandits.restless import RestlessArms, from_cormab, whittle_indices
from engine import Engine
from engine.analysis.exact_dp import exact_optimum, initial_distribution, joint_states
from engine.analysis.exact_policy import planner_policy_value
from engine.analysis.occupancy_bound import occupancy_upper_bound
from engine.baselines.cormab import (
    IterativeMyopicPolicy,
    MyopicPolicy,
    NullPolicy,
    RandomPolicy,
    SamplingPolicy,
)
from engine.planners import make_planner
from engine.sequoia.dqn import DQNConfig
from scenarios import make
from scenarios.arms import Arms, birth_death_arms
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.cormab.capacity import CapacityInstance
from scenarios.cormab.instance import generate_arms
from scenarios.errors import InvalidInputError

SLOW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def random_arms(draw, max_arms: int = 3, on_arrival: bool | None = None, horizon: int | None = None) -> Arms:
    """Heterogeneous arms: 2-5 states each, 2-3 actions, sparse random transitions, either reward form."""
    n_arms = draw(st.integers(1, max_arms))
    n_actions = draw(st.integers(2, 3))
    counts = [draw(st.integers(2, 5)) for _ in range(n_arms)]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    arrival = draw(st.booleans()) if on_arrival is None else on_arrival
    transitions, rewards, initial = [], [], []
    for S in counts:
        P = rng.dirichlet(np.ones(S), size=(n_actions, S))
        P[rng.uniform(size=P.shape) < 0.3] = 0.0  # some impossible moves
        P[..., 0] += 1e-3  # every row keeps some mass
        transitions.append((P / P.sum(-1, keepdims=True)).tolist())
        rewards.append(rng.uniform(0, 2, S if arrival else (S, n_actions)).tolist())
        initial.append(rng.dirichlet(np.ones(S)).tolist())
    H = draw(st.integers(1, 4)) if horizon is None else horizon
    reward_field = "arrival_rewards" if arrival else "rewards"
    costs = np.cumsum(rng.uniform(0.5, 2, (n_arms, n_actions)), axis=1) - 0.5
    return Arms(
        transitions=transitions,
        **{reward_field: rewards},
        costs=costs.tolist(),
        initial=initial,
        horizon=H,
    )


# ------------------------------------------------------------------------------------------ data model
@given(random_arms(max_arms=5))
@SLOW
def test_json_round_trip_is_exact(arms: Arms) -> None:
    again = Arms.parse(arms.model_dump_json())
    assert again == arms
    for a, b in zip(again.arrays(), arms.arrays(), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(again.state_counts, [len(P[0]) for P in arms.transitions])


@given(random_arms(max_arms=4), st.integers(0, 3), st.data())
@SLOW
def test_bad_rows_name_the_field(arms: Arms, which: int, data) -> None:
    d = json.loads(arms.model_dump_json())
    j = data.draw(st.integers(0, arms.n_arms - 1))
    if which == 0:
        d["transitions"][j][1][0] = [x * 0.8 for x in d["transitions"][j][1][0]]
        field = f"arms.transitions[{j}][1][0]"
        reason = "row sums to 0.8"
    elif which == 1:
        d["transitions"][j][1].pop()
        field, reason = f"arms.transitions[{j}]", "expected shape"
    elif which == 2:
        d["costs"][j][1] = d["costs"][j][0]
        field, reason = f"arms.costs[{j}]", "strictly increasing"
    else:
        d["initial"][j][0] += 0.5
        field, reason = f"arms.initial[{j}]", "probability distribution"
    with pytest.raises(InvalidInputError) as err:
        Arms.parse(d)
    assert err.value.field == field and reason in err.value.reason


def test_reward_forms_and_action_counts_are_checked() -> None:
    P = [[[[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]]
    with pytest.raises(InvalidInputError, match="exactly one of"):
        Arms.parse({"transitions": P})
    with pytest.raises(InvalidInputError, match="two actions"):
        Arms.parse({"transitions": [P[0][:1]], "arrival_rewards": [[0, 1]]})
    with pytest.raises(InvalidInputError) as err:
        Arms.parse({"transitions": P, "rewards": [[[0.0, 1.0]]]})
    assert err.value.field == "arms.rewards[0]"


@given(random_arms(max_arms=4))
@SLOW
def test_sampling_is_the_descending_inverse_cdf(arms: Arms) -> None:
    """Uniforms on a fine grid reach each next state with its probability, never an impossible one."""
    P, _, _, _ = arms.arrays()
    n = 4000
    u = (np.arange(n) + 0.5) / n
    for j, S in enumerate(arms.state_counts.tolist()):
        for a in range(arms.n_actions):
            for s in range(S):
                states = np.zeros((n, arms.n_arms), dtype=np.int64)
                states[:, j] = s
                levels = np.zeros_like(states)
                levels[:, j] = a
                nxt = arms.sample(states, levels, np.broadcast_to(u[:, None], states.shape))[:, j]
                freq = np.bincount(nxt, minlength=arms.n_states) / n
                assert np.all(np.abs(freq - P[j, a, s]) <= 1.0 / n + 1e-12)
                assert np.all(P[j, a, s, nxt] > 0)
                assert np.array_equal(nxt, np.sort(nxt)[::-1])  # larger uniforms, smaller states


@given(random_arms(max_arms=5), st.integers(0, 2**31))
@SLOW
def test_sampling_by_state_count_equals_the_padded_inverse_cdf_under_broadcasting(arms: Arms, seed: int) -> None:
    """Arms sampled group by group (over their own states) give the padded formula's next states, with states,
    levels and uniforms broadcast against each other as the lookahead does."""
    rng = np.random.default_rng(seed)
    counts, J = arms.state_counts, arms.n_arms
    states = (rng.uniform(size=(3, 1, 1, J)) * counts).astype(np.int64)
    levels = rng.integers(0, arms.n_actions, size=(1, 4, 1, J))
    u = rng.uniform(size=(1, 1, 5, J))
    c, arm = arms.cache, np.arange(J)

    def padded(s, a, v):
        k = np.minimum((np.asarray(v)[..., None] >= c.cdf[arm, a, s]).sum(-1), c.last[arm, a, s])
        return arms.n_states - 1 - k

    assert np.array_equal(arms.sample(states, levels, u), padded(states, levels, u))
    # one uniform or one level for every arm, broadcast over the arm axis
    assert np.array_equal(arms.sample(states, levels, 0.5), padded(states, levels, 0.5))
    assert np.array_equal(arms.sample(states, 0, u[..., :1]), padded(states, 0, u[..., :1]))


@given(random_arms())
@settings(max_examples=40, deadline=None)
def test_padded_arrays_hold_every_arms_own_rows(arms: Arms) -> None:
    """The padded transitions are each arm's given rows, the largest arm's included (uneven counts once left
    the largest arms at identity transitions), and padded states are never entered."""
    P, _, _, _ = arms.arrays()
    for j, n in enumerate(arms.state_counts.tolist()):
        assert np.array_equal(P[j, :, :n, :n], np.asarray(arms.transitions[j], dtype=float))
        assert np.all(P[j, :, :n, n:] == 0.0)


# -------------------------------------------------------------------------------- birth-death arms
def test_birth_death_generator_equals_the_benchmark_model() -> None:
    """Today's arms: up iff u < p(a), else down, clipped to [0, 3]; reward r(s'); state 1 w.p. init_prob."""
    old = generate_arms(30, 5, seed=4)
    p0, p1, table = old.birth_death()
    legacy = {"p_passive": p0.tolist(), "p_active": p1.tolist(), "rewards": table.tolist(), "horizon": 20}
    assert Arms.parse(legacy) == old  # the legacy JSON converts to the same arms
    inst = CapacityInstance.generate(n_arms=30, budget=5, seed=4)
    assert inst.arms == old
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, 30)
    for _ in range(300):
        a = rng.integers(0, 2, 30)
        u = rng.uniform(size=30)
        p = np.where(a > 0, p1, p0)
        up, down = np.minimum(s + 1, 3), np.maximum(s - 1, 0)
        expected = np.sum(p * table[np.arange(30), up] + (1 - p) * table[np.arange(30), down])
        assert inst.expected_reward(s, a) == expected  # bit for bit
        want = np.clip(s + np.where(u < p, 1, -1), 0, 3)
        s = inst.transition(s, a, u)
        assert np.array_equal(s, want)
        assert inst.realised_reward(s) == table[np.arange(30), s].sum()
    u = rng.uniform(size=(500, 30))
    assert np.array_equal(old.sample_initial(u), (u < 0.2).astype(np.int64))
    assert np.array_equal(old.sample_initial(u, training=True), (u < 0.5).astype(np.int64))


def test_env_trajectories_are_the_benchmark_trajectories() -> None:
    """Common random numbers: the environment draws one uniform per arm per step, as before."""
    env = make("capacity", n_arms=12, budget=3, seed=1)
    p0, _, table = env.instance.arms.birth_death()
    obs, _ = env.reset(seed=5)
    replay, _ = gymnasium.utils.seeding.np_random(5)  # the environment's generator
    assert np.array_equal(obs[:-1], (replay.uniform(size=12) < 0.2).astype(np.int64))
    zero = np.zeros(env.instance.n_actions, dtype=np.int64)
    s = obs[:-1]
    for _ in range(5):
        obs, reward, *_ = env.step(zero)
        u = replay.uniform(size=12)
        s = np.clip(s + np.where(u < p0, 1, -1), 0, 3)
        assert np.array_equal(obs[:-1], s)
        assert reward == table[np.arange(12), s].sum()


def test_birth_death_arms_are_required_where_a_response_sets_p_up() -> None:
    data = make("multi_intervention", n_arms=6, budget=2, seed=0).instance.model_dump()
    data["arms"] = json.loads(Arms.from_arrays(np.full((6, 2, 3, 3), 1 / 3), np.ones((6, 3))).model_dump_json())
    with pytest.raises(InvalidInputError) as err:
        make("multi_intervention", instance=data)
    assert "birth-death" in str(err.value) and "arms" in err.value.field


def test_restless_arms_are_the_same_model() -> None:
    arms = generate_arms(5, 1, 0)
    assert RestlessArms is Arms
    view = from_cormab(arms)
    for a, b in zip(view.arrays(), arms.arrays(), strict=True):
        assert np.array_equal(a, b)
    assert whittle_indices(view, horizon=3).values.shape == (5, 3, 4, 1)


# -------------------------------------------------------------------- every part on general arms
def _instance(arms: Arms, budget: float) -> BudgetedInstance:
    """Arms under a cost budget over the (arm, level) entries, at most one level per arm."""
    return BudgetedInstance(arms=arms, budget=budget)


@given(random_arms(max_arms=3), st.floats(0.5, 4.0), st.integers(0, 1000))
@SLOW
def test_env_steps_stay_in_each_arms_states(arms: Arms, budget: float, seed: int) -> None:
    inst = _instance(arms, budget)
    env = inst.make_env()
    obs, _ = env.reset(seed=seed)
    counts = arms.state_counts
    assert list(env.observation_space.nvec[:-1]) == counts.tolist()
    model = env.action_model()
    rng = np.random.default_rng(seed)
    for _ in range(arms.horizon):
        assert np.all(obs[:-1] < counts) and env.observation_space.contains(obs)
        obs, reward, *_ = env.step(model.sample(rng))
        assert np.isfinite(reward)
    bad = np.zeros(arms.n_arms, dtype=np.int64)
    bad[-1] = counts[-1]
    with pytest.raises(InvalidInputError, match=f"entry {arms.n_arms - 1}"):
        env.reset(options={"states": bad})


@given(random_arms(max_arms=3), st.floats(0.5, 4.0))
@SLOW
def test_exact_dp_is_between_every_planner_and_the_lp_bound(arms: Arms, budget: float) -> None:
    inst = _instance(arms, budget)
    exact = exact_optimum(inst)
    assert np.isclose(initial_distribution(inst).sum(), 1.0)
    assert len(joint_states(arms.state_counts)) == int(np.prod(arms.state_counts))
    bound = occupancy_upper_bound(inst).bound
    assert exact.value <= bound + 1e-6
    names = ["lagrangian", "lp_update"] + (["whittle"] if arms.n_levels == 1 else [])
    for name in names:
        value = planner_policy_value(make_planner(name, inst), exact)
        assert value <= exact.value + 1e-7, name


def test_exact_dp_matches_brute_force_on_state_action_rewards() -> None:
    """One arm, 3 states, r(s, a): the DP against a direct recursion."""
    P = np.array(
        [[[0.6, 0.4, 0.0], [0.0, 0.5, 0.5], [0.3, 0.0, 0.7]], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]]
    )
    R = np.array([[0.0, 1.0], [2.0, 0.5], [1.0, 3.0]])
    arms = Arms(transitions=[P.tolist()], rewards=[R.tolist()], initial=[[1.0, 0.0, 0.0]], horizon=3)
    inst = _instance(arms, 1.0)
    V = np.zeros(3)
    for _ in range(3):
        V = np.max(R + np.einsum("ast,t->sa", P, V), axis=1)
    assert exact_optimum(inst).value == pytest.approx(V[0])


# -------------------------------------------------------------------------------- the case
def test_thirty_three_state_arms_train_save_load_and_decide(tmp_path) -> None:
    """30 arms with 3 states, 4 workers with capacities: train briefly, save, load, decide identically."""
    rng = np.random.default_rng(17)
    P = rng.dirichlet(np.ones(3), size=(30, 2, 3))
    arms = Arms(transitions=P.tolist(), arrival_rewards=rng.uniform(0, 1, (30, 3)).tolist(), horizon=5)
    instance = {
        "arms": json.loads(arms.model_dump_json()),
        "costs": rng.integers(1, 4, 30).tolist(),
        "capacities": [3, 4, 2, 5],
    }
    env = make("capacity", instance=instance)
    assert env.instance.arms.n_states == 3
    cfg = DQNConfig(episodes=2, warm_start_samples=128, warm_start_epochs=5, hidden=(8,), snapshots=1)
    engine = Engine.train(env, cfg, seed=0, progress=False)
    engine.save(tmp_path / "ck")
    again = Engine.load(tmp_path / "ck")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        d1, d2 = engine.decide(obs), again.decide(obs)
        assert np.array_equal(d1.action, d2.action)
        env.action_model().check(d1.action)
    with pytest.raises(InvalidInputError, match="outside"):
        again.decide(np.r_[np.full(30, 3), 5])


def test_birth_death_arms_helper_round_trips_the_legacy_fields() -> None:
    arms = birth_death_arms([0.1, 0.2], [0.8, 0.9], [[0, 0, 0, 1], [0, 0, 0, 2]], init_prob=0.3, horizon=7)
    assert arms.horizon == 7 and arms.n_states == 4 and arms.n_levels == 1
    assert np.allclose(arms.initial_distribution()[0], [0.7, 0.3, 0, 0])
    assert np.allclose(arms.initial_distribution(training=True)[0], [0.5, 0.5, 0, 0])


def test_intervention_levels_train_save_load_and_decide(tmp_path) -> None:
    """K = 2 levels on 3-state arms: one entry per (arm, level), at most one level per arm, level costs 1 and 2."""
    env = make("budgeted", n_arms=6, budget=3, seed=2, horizon=4, n_states=3, n_levels=2)
    inst = env.instance
    assert inst.n_actions == 12 and env.action_model().n_actions == 12
    both = np.zeros(12, dtype=np.int64)
    both[[0, 1]] = 1  # arm 0 at levels 1 and 2
    assert not env.action_model().is_feasible(both)
    assert np.array_equal(inst.arm_levels(np.eye(12, dtype=np.int64)[3]), [0, 2, 0, 0, 0, 0])
    cfg = DQNConfig(episodes=2, warm_start_samples=128, warm_start_epochs=5, hidden=(8,), snapshots=1)
    engine = Engine.train(env, cfg, seed=0, progress=False)
    engine.save(tmp_path / "ck")
    again = Engine.load(tmp_path / "ck")
    obs, _ = env.reset(seed=1)
    for selector in ("mip", "enumerate"):
        action = again.decide(obs, selector=selector).action
        assert np.array_equal(action, engine.decide(obs, selector=selector).action)
        env.action_model().check(action)
    planner = Engine.plan(env, "lagrangian")
    env.action_model().check(planner.decide(obs).action)
    rng = np.random.default_rng(0)
    for baseline in (NullPolicy, RandomPolicy, SamplingPolicy, MyopicPolicy, IterativeMyopicPolicy):
        action = baseline(inst).act(obs[:-1], int(obs[-1]), rng)
        env.action_model().check(action)
    myopic = MyopicPolicy(inst).act(obs[:-1], int(obs[-1]), rng)
    best = max(env.action_model().enumerate(), key=lambda a: inst.expected_reward(obs[:-1], a))
    assert inst.expected_reward(obs[:-1], myopic) == pytest.approx(inst.expected_reward(obs[:-1], best))


def test_rest_planner_on_three_state_arms_and_bad_rows_named(rest) -> None:
    """REST: a capacity instance with 3-state arms gets a planner policy that decides like the library; a bad
    transition row is a 422 naming the element."""
    client, headers = rest
    arms = json.loads(random_arms_instance().model_dump_json())
    body = {"scenario": "capacity", "planner": "lagrangian", "instance": arms}
    r = client.post("/v1/planners", json=body, headers=headers)
    assert r.status_code == 201, r.text
    library = Engine.plan(make("capacity", instance=arms), "lagrangian")
    state = [0, 1, 2, 2, 1, 0, 3 - 1, 1, 4]
    d = client.post(f"/v1/policies/{r.json()['id']}/decisions", json={"state": state}, headers=headers)
    assert d.status_code == 201, d.text
    assert d.json()["action"] == library.decide(state).action.tolist()
    bad = json.loads(json.dumps(body))
    bad["instance"]["arms"]["transitions"][2][1][0] = [0.5, 0.2, 0.1]
    r = client.post("/v1/planners", json=bad, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "instance.arms.transitions[2][1][0]", r.text
    assert "row sums to 0.8" in r.json()["error"]["message"]


def random_arms_instance() -> CapacityInstance:
    """8 arms with 3 states, 2 workers."""
    from scenarios.arms import random_arms

    return CapacityInstance(arms=random_arms(8, n_states=3, seed=5, horizon=4), costs=[1, 2] * 4, capacities=[2, 3])
