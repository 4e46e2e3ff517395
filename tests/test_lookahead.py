"""The planner-plus-learned-value lookahead policy: ground truth by enumeration, feasibility, selection, persistence."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.analysis.exact_dp import exact_optimum, initial_distribution, joint_states, policy_value
from engine.analysis.exact_policy import planner_policy_value
from engine.lookahead import LookaheadConfig, LookaheadPolicy, train_lookahead
from engine.lookahead.candidates import all_feasible, neighbourhood
from engine.lookahead.value_network import ValueNetwork
from engine.policy_kinds import load as load_policy
from scenarios import make
from scenarios.errors import InvalidInputError

FAMILIES = {
    "budgeted": {"budget": 2},
    "capacity": {"budget": 2},
    "coverage": {"budget": 2},
    "overlapping_reach": {"budget": 2},
}


def _instance(family: str, seed: int, n_arms: int = 4, horizon: int = 5):
    return make(family, n_arms=n_arms, seed=seed, horizon=horizon, **FAMILIES[family]).instance


def _silent(instance, hidden: int = 8) -> ValueNetwork:
    """A value network that predicts 0 everywhere (the lookahead is then the exact myopic argmax)."""
    net = ValueNetwork(instance.arms.state_counts, instance.horizon, hidden)
    net.center.fill_(0.0)
    net.scale.fill_(0.0)
    return net


def _policy(family: str, instance, value: ValueNetwork, **config) -> LookaheadPolicy:
    cfg = LookaheadConfig(samples=4, validation_episodes=0, **config)
    return LookaheadPolicy(family, instance, cfg, value)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(sorted(FAMILIES)), seed=st.integers(0, 50), ttg=st.integers(1, 5), data=st.data())
def test_silent_value_gives_the_enumerated_myopic_argmax(family, seed, ttg, data):
    instance = _instance(family, seed)
    policy = _policy(family, instance, _silent(instance))
    counts = instance.arms.state_counts
    states = np.array([data.draw(st.integers(0, int(c) - 1)) for c in counts])
    actions = instance.action_model().enumerate()
    rewards = instance.expected_reward(states[None], actions)
    decision = policy.decide(np.concatenate([states, [ttg]]))
    assert instance.action_model().is_feasible(decision.action)
    assert decision.value == pytest.approx(rewards.max(), abs=1e-9)
    assert instance.expected_reward(states, decision.action) == pytest.approx(rewards.max(), abs=1e-9)
    # every feasible action was scored: the argmax is proven for the Q estimate
    assert (decision.status, decision.bound, decision.gap) == ("optimal", decision.value, 0.0)


@settings(max_examples=15, deadline=None)
@given(family=st.sampled_from(sorted(FAMILIES)), seed=st.integers(0, 50), pick=st.integers(0, 10_000))
def test_neighbourhood_rows_are_feasible_one_move_neighbours(family, seed, pick):
    model = _instance(family, seed).action_model()
    actions = model.enumerate()
    base = actions[pick % len(actions)]
    rows = neighbourhood(model, base, limit=1_000, rng=np.random.default_rng(0))
    assert np.array_equal(rows[0], base)
    assert all(model.is_feasible(r) for r in rows)
    assert np.all(np.abs(rows - base).sum(1)[1:] <= 2)
    # every feasible action within one add, drop or swap is there
    near = [a for a in actions if 0 < np.abs(a - base).sum() <= 2 and a.sum() - base.sum() in (-1, 0, 1)]
    near = [a for a in near if not (np.abs(a - base).sum() == 2 and a.sum() != base.sum())]
    assert {a.tobytes() for a in near} <= {r.tobytes() for r in rows[1:]}


def test_all_feasible_refuses_large_sets():
    model = _instance("budgeted", 0, n_arms=6).action_model()
    assert all_feasible(model, 1) is None
    assert len(all_feasible(model, 1_000)) == len(model.enumerate())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_local_search_never_scores_below_the_planner_action(family):
    instance = _instance(family, 3, n_arms=5)
    torch.manual_seed(0)
    value = ValueNetwork(instance.arms.state_counts, instance.horizon, 8)  # random weights
    policy = _policy(family, instance, value, enumerate_limit=1)  # forces neighbourhood search
    assert policy.candidates is None
    rng = np.random.default_rng(1)
    for _ in range(5):
        states = instance.initial_states(rng)
        ttg = int(rng.integers(1, instance.horizon + 1))
        decision = policy.decide(np.concatenate([states, [ttg]]))
        base = policy.base.decide(np.concatenate([states, [ttg]])).action
        assert instance.action_model().is_feasible(decision.action)
        base_q = policy.scores(states[None], ttg, base[None])[0, 0]
        assert decision.value >= base_q - 1e-9
        assert decision.status == "heuristic" and decision.bound == float("inf")  # a local search proves nothing


def test_state_dependent_sets_score_every_action_the_state_leaves_open():
    """A patrol's feasible set depends on where it stands: with a silent value the lookahead is the exact myopic
    argmax over the walks from the patrol's node (listed once per node), in a batch as one by one."""
    instance = make("patrol", n_arms=5, budget=2, seed=1, horizon=5).instance
    policy = _policy("patrol", instance, _silent(instance), enumerate_limit=1)  # not the whole set: per state
    assert policy.candidates is None and policy.vectorises("lookahead")
    model, rng = instance.action_model(), np.random.default_rng(0)
    every = model.enumerate()
    rows = []
    for _ in range(6):
        states = np.array([rng.integers(0, c) for c in instance.arms.state_counts])
        rows.append(np.concatenate([states, [int(rng.integers(1, 6))]]))
        open_ones = every[~instance.uses_unavailable(states[None], every)]
        decision = policy.decide(rows[-1])
        assert model.is_feasible(decision.action) and not instance.uses_unavailable(states, decision.action)
        assert decision.value == pytest.approx(instance.expected_reward(states[None], open_ones).max(), abs=1e-9)
        assert decision.status == "optimal" and decision.bound == decision.value
    batch = policy.decide_batch(np.stack(rows))
    assert [d.value for d in batch] == pytest.approx([policy.decide(r).value for r in rows], abs=1e-9)
    assert {d.status for d in batch} == {"optimal"}
    off = _policy("patrol", instance, _silent(instance), enumerate_limit=1, state_enumerate_limit=0)
    assert not off.vectorises("lookahead")  # switched off: local search from the planner's action
    assert policy.scores_every_action and not off.scores_every_action
    few = _policy("patrol", instance, _silent(instance), enumerate_limit=1, state_enumerate_limit=5)
    assert not few.scores_every_action  # some node has more than 5 walks: those states search locally
    assert off.policy_version != policy.policy_version


def test_listing_a_states_open_actions_keeps_the_decisions_time_limit(monkeypatch) -> None:
    """A decision's time limit bounds the listing of the walks from the patrol's node: past it the decision comes
    from the local search (heuristic, no bound) and the listing is not cached, so a later call with time lists
    them. A listing slower than LISTING_SECONDS counts as too many (cached: local search from then on)."""
    from engine.lookahead import policy as policy_module

    instance = make("patrol", n_arms=10, budget=3, seed=1, horizon=5).instance  # at most 17,600 actions
    policy = _policy("patrol", instance, _silent(instance), enumerate_limit=1)
    row = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 4])  # ten sites, the patrol at node 2, four steps to go
    hurried = policy.decide(row, time_limit=1e-9)
    assert hurried.status == "heuristic" and hurried.bound == float("inf")
    assert instance.action_model().is_feasible(hurried.action) and not policy._state_sets  # nothing cached
    assert policy.decide(row).status == "optimal"  # listed now, with no limit
    assert policy.decide(row, time_limit=1e-9).status == "optimal"  # and read from the cache
    with pytest.raises(InvalidInputError) as err:
        policy.decide(row, time_limit=0)
    assert err.value.field == "time_limit"
    monkeypatch.setattr(policy_module, "LISTING_SECONDS", 0.0)
    slow = _policy("patrol", instance, _silent(instance), enumerate_limit=1)
    assert slow.decide(row).status == "heuristic" and len(slow._state_sets) == 1  # too slow: as too many


def test_state_dependent_lookahead_is_selected_by_exact_values() -> None:
    """Scoring every action the state leaves open, the lookahead is a function of the state: on a small patrol
    training compares it with the planner by exact DP values, and what it keeps is what those values say."""
    instance = make("patrol", n_arms=4, budget=2, seed=0, horizon=4).instance
    cfg = LookaheadConfig(rollout_episodes=30, epochs=3, sweeps=1, samples=4, validation_episodes=4, enumerate_limit=1)
    policy = train_lookahead("patrol", instance, cfg, seed=0, progress=False)
    summary = policy.training_summary
    assert summary["selection"] == "exact DP policy evaluation" and summary["validation_episodes_used"] == 0
    exact = exact_optimum(instance)
    lookahead = policy_value(instance, lambda s, h: policy.actions(s, h)[0], exact.actions)
    planner = planner_policy_value(policy.base.planner, exact.actions)
    assert summary["validation_lookahead"] == pytest.approx(lookahead, rel=1e-9) and lookahead <= exact.value + 1e-9
    assert summary["validation_planner"] == pytest.approx(planner, rel=1e-9)
    assert summary["kept"] == ("lookahead" if lookahead > planner + 1e-9 * planner else "planner")


def test_value_network_sums_the_arms_embeddings_for_any_batch_shape():
    torch.manual_seed(0)
    net = ValueNetwork([3, 3, 4], horizon=5, hidden=8)
    states = torch.as_tensor(np.random.default_rng(0).integers(0, 3, size=(2, 4, 3)))
    h = torch.full((2, 4), 3)
    with torch.no_grad():
        x = net.embed(states + net.offsets).sum(-2) + net.time((h / 5.0).unsqueeze(-1))
        expected = (h / 5.0) * (net.body(x).squeeze(-1) * net.scale + net.center)
        assert torch.allclose(net(states, h), expected, atol=1e-6)
        assert torch.allclose(net(states[0, 0], h[0, 0]), expected[0, 0], atol=1e-6)
        assert net(states[:0, 0], h[:0, 0]).shape == (0,)


def test_bad_settings_name_their_field():
    with pytest.raises(InvalidInputError) as err:
        LookaheadConfig(samples=0)
    assert err.value.field == "samples"
    with pytest.raises(InvalidInputError) as err:
        LookaheadConfig(planner="nope")
    assert err.value.field == "planner"
    with pytest.raises(InvalidInputError) as err:
        LookaheadConfig.from_dict({"rollouts": 3})
    assert err.value.field == "rollouts"
    with pytest.raises(InvalidInputError) as err:
        LookaheadConfig(explore=1.5)
    assert err.value.field == "explore"
    with pytest.raises(InvalidInputError) as err:
        LookaheadConfig(state_enumerate_limit=-1)
    assert err.value.field == "state_enumerate_limit"
    for name, value in (("explore", "abc"), ("explore", None), ("selection_z", None), ("selection_z", True)):
        with pytest.raises(InvalidInputError) as err:
            LookaheadConfig.from_dict({name: value})
        assert err.value.field == name


def test_one_record_fits_a_finite_value() -> None:
    """A single training record has no spread: the value's scale is 1, not NaN (rollout_episodes = 1 with a late
    branch step records one state)."""
    from engine.lookahead.value_network import fit_values

    net = ValueNetwork([2, 2], horizon=3, hidden=4)
    fit_values(net, np.array([[0, 1]]), np.array([2]), np.array([1.5]), epochs=2)
    assert np.isfinite(net.values(np.array([[0, 1], [1, 0]]), 2)).all()


def test_bad_states_and_selectors_are_refused_without_state_change():
    instance = _instance("coverage", 0)
    policy = _policy("coverage", instance, _silent(instance))
    with pytest.raises(InvalidInputError):
        policy.decide([0, 0, 0])
    with pytest.raises(InvalidInputError) as err:
        policy.decide([0, 0, 0, 0, 3], selector="mip")
    assert err.value.field == "selector"
    assert policy.decide([0, 0, 0, 0, 3]).status == "optimal"  # nothing changed; the whole (small) set scored


def test_kept_planner_decides_like_the_planner():
    instance = _instance("overlapping_reach", 1)
    cfg = LookaheadConfig(samples=4, validation_episodes=0)
    policy = LookaheadPolicy("overlapping_reach", instance, cfg, _silent(instance), use_planner=True)
    rng = np.random.default_rng(0)
    for _ in range(4):
        row = np.concatenate([instance.initial_states(rng), [3]])
        decision = policy.decide(row)
        assert np.array_equal(decision.action, policy.base.decide(row).action)
        assert "kept the base planner" in decision.reason
        assert decision.policy_version == policy.policy_version


def test_fitted_value_matches_the_planners_exact_value():
    """Monte-Carlo regression plus fitted policy evaluation recovers the planner's exact value (DP) within 3%."""
    instance = _instance("budgeted", 2, n_arms=3, horizon=6)
    cfg = LookaheadConfig(planner="whittle", rollout_episodes=300, epochs=30, sweeps=3, validation_episodes=0)
    policy = train_lookahead("budgeted", instance, cfg, seed=0, progress=False)
    exact = exact_optimum(instance)
    truth = planner_policy_value(policy.base.planner, exact)
    states = joint_states(instance.arms.state_counts)
    predicted = float(initial_distribution(instance) @ policy.value.values(states, instance.horizon))
    assert predicted == pytest.approx(truth, rel=0.03)


def test_training_selects_saves_and_loads(tmp_path):
    instance = _instance("coverage", 4, n_arms=4, horizon=6)
    cfg = LookaheadConfig(rollout_episodes=40, epochs=5, sweeps=1, samples=8, validation_episodes=6, planner="whittle")
    policy = train_lookahead("coverage", instance, cfg, seed=0, progress=False)
    summary = policy.training_summary
    assert summary["kept"] in ("lookahead", "planner")
    assert summary["selection"] == "exact DP policy evaluation"  # 4^4 joint states: no episodes needed
    assert summary["validation_episodes_used"] == 0
    assert policy.use_planner == (summary["kept"] == "planner")
    loaded = load_policy(policy.save(tmp_path / "look"))
    assert isinstance(loaded, LookaheadPolicy)
    assert loaded.policy_version == policy.policy_version
    assert loaded.training_summary["kept"] == summary["kept"]
    exact = exact_optimum(instance)
    a = policy_value(instance, lambda s, h: policy.actions(s, h)[0], exact.actions)
    b = policy_value(instance, lambda s, h: loaded.actions(s, h)[0], exact.actions)
    assert a == pytest.approx(b, abs=1e-12)
    assert a <= exact.value + 1e-9
    rows = np.column_stack([joint_states(instance.arms.state_counts)[:7], np.full(7, 4)])
    batch = loaded.decide_batch(rows)
    assert [d.action.tolist() for d in batch] == [loaded.decide(r).action.tolist() for r in rows]
    # a checkpoint written before state_enumerate_limit existed loads with the same version (no effect here)
    meta = json.loads((tmp_path / "look" / "config.json").read_text())
    del meta["config"]["state_enumerate_limit"]
    (tmp_path / "look" / "config.json").write_text(json.dumps(meta))
    assert load_policy(tmp_path / "look").policy_version == policy.policy_version


@pytest.mark.parametrize("family", ["coverage", "overlapping_reach"])
def test_exact_improvement_steps_climb_to_the_optimum(family):
    """Exact policy iteration from the planner: never decreasing, never above the DP optimum, and the optimum
    after as many steps as the horizon (finite-horizon policy iteration)."""
    from engine.analysis.exact_policy import improvement_steps
    from engine.planners import make_planner

    instance = _instance(family, 4, n_arms=4, horizon=3)
    exact = exact_optimum(instance)
    planner = make_planner("lagrangian", instance)
    values = improvement_steps(planner, exact, steps=3)
    assert values[0] == pytest.approx(planner_policy_value(planner, exact), abs=1e-9)
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))
    assert max(values) <= exact.value + 1e-9
    assert values[-1] == pytest.approx(exact.value, abs=1e-9)


class _Exact:
    """The DP-optimal policy as an evaluation policy (a stand-in for a perfect iterate)."""

    def __init__(self, exact) -> None:
        self.exact = exact

    def act(self, states, time_to_go, rng):
        return self.exact.policy(states, time_to_go)


def test_selection_keeps_the_planner_against_itself_and_a_better_iterate_after_extending() -> None:
    """An iterate equal to the planner is never kept (and the validation is not extended: no positive gain); a
    better iterate is kept, after the validation doubled when its gain was not yet significant."""
    from engine.lookahead.selection import select_policy
    from engine.planners.policy import PlannerPolicy

    instance = make("overlapping_reach", n_arms=6, budget=4, seed=2, horizon=20).instance
    planner = PlannerPolicy("overlapping_reach", instance, "lagrangian")
    same = select_policy(instance, planner, [planner], first=4, most=64, z=2.0, seed=0)
    assert same.kept is None and same.episodes == 4
    exact = exact_optimum(instance)  # the planner reaches 98.5% of it on this seed
    better = select_policy(instance, planner, [planner, _Exact(exact)], first=4, most=256, z=2.0, seed=0)
    assert better.kept == 1 and better.episodes > 4
    assert better.mean("iteration 2") > better.mean("planner")
    capped = select_policy(instance, planner, [_Exact(exact)], first=4, most=4, z=50.0, seed=0)
    assert capped.kept is None and capped.episodes == 4


def test_value_table_reads_the_network_on_small_state_spaces() -> None:
    """The tabulated V (small joint state spaces) is the network's value at every next state, and a policy past
    the table's size asks the network itself: the same scores either way."""
    from engine.lookahead import policy as policy_module

    instance = _instance("coverage", 3, n_arms=4, horizon=5)
    torch.manual_seed(0)
    value = ValueNetwork(instance.arms.state_counts, instance.horizon, 8)
    tabled = _policy("coverage", instance, value)
    rng = np.random.default_rng(0)
    nxt = rng.integers(0, 4, size=(5, 7, 4))
    assert np.allclose(tabled.next_values(nxt, 3), value.values(nxt, 3), atol=1e-5)
    original = policy_module.TABLE_STATES
    policy_module.TABLE_STATES = 10
    try:
        direct = _policy("coverage", instance, value)
    finally:
        policy_module.TABLE_STATES = original
    states = joint_states(instance.arms.state_counts)[::9]
    cands = instance.action_model().enumerate()
    assert np.allclose(tabled.scores(states, 4, cands), direct.scores(states, 4, cands), atol=1e-5)


class _Optimal:
    """An iterate that plays the DP-optimal policy (a perfect lookahead)."""

    scores_every_action = True

    def __init__(self, exact) -> None:
        self.exact = exact

    def actions(self, states, time_to_go):
        return self.exact.policy(states, time_to_go), np.zeros(len(states))


def test_exact_selection_keeps_the_planner_on_ties_and_the_best_iterate_otherwise() -> None:
    """Exact values, no sampling: an iterate equal to the planner is not kept, the optimal one is, and the
    recorded values are the planner's and the optimum's exact values."""
    from engine.lookahead.selection import PLANNER, exact_selection_applies, select_exactly
    from engine.planners.policy import PlannerPolicy

    instance = make("overlapping_reach", n_arms=4, budget=2, seed=2, horizon=6).instance
    planner = PlannerPolicy("overlapping_reach", instance, "lagrangian")
    exact = exact_optimum(instance)
    planner_value = planner_policy_value(planner.planner, exact)
    assert planner_value < exact.value - 1e-6  # the planner is not optimal on this instance

    class _AsPlanner:
        scores_every_action = True

        def actions(self, states, time_to_go):
            from engine.analysis.exact_policy import planner_actions

            return planner_actions(planner.planner, states, time_to_go, exact.actions), np.zeros(len(states))

    same = select_exactly(instance, planner, [_AsPlanner()])
    assert same.kept is None and same.exact and same.episodes == 0
    assert same.mean(PLANNER) == pytest.approx(planner_value, abs=1e-9)
    best = select_exactly(instance, planner, [_AsPlanner(), _Optimal(exact), _AsPlanner()])
    assert best.kept == 1 and best.mean("iteration 2") == pytest.approx(exact.value, abs=1e-9)
    assert best.gain_se("iteration 2") == 0.0
    assert exact_selection_applies(instance, [_Optimal(exact)], 4**4)
    assert not exact_selection_applies(instance, [_Optimal(exact)], 4**4 - 1)
    local = _Optimal(exact)
    local.scores_every_action = False  # a local search from the planner's MILP decision: episodes decide
    assert not exact_selection_applies(instance, [local], 4**4)


def test_exact_selection_can_be_switched_off() -> None:
    instance = _instance("coverage", 4, n_arms=4, horizon=6)
    cfg = LookaheadConfig(
        rollout_episodes=20, epochs=2, sweeps=1, samples=4, validation_episodes=4, validation_max_episodes=4,
        exact_selection_states=0,
    )  # fmt: skip
    summary = train_lookahead("coverage", instance, cfg, seed=0, progress=False).training_summary
    assert summary["selection"] == "held-out episodes" and summary["validation_episodes_used"] == 4
    with pytest.raises(InvalidInputError, match="exact_selection_states"):
        LookaheadConfig(exact_selection_states=-1)


def _planner_value_tables(instance, planner, exact) -> dict[int, np.ndarray]:
    """The planner's exact value V_h over every joint state, h = 0..H (DP policy evaluation)."""
    from bandits.restless.joint_dp import expected_next
    from engine.analysis.exact_dp import arm_matrices, reward_table
    from engine.analysis.exact_policy import planner_actions

    counts = tuple(instance.arms.state_counts.tolist())
    states = joint_states(counts)
    reward, mats = reward_table(instance, states, exact.actions), arm_matrices(instance, exact.actions)
    lookup = {a.tobytes(): k for k, a in enumerate(exact.actions)}
    values = {0: np.zeros(len(states))}
    for h in range(1, instance.horizon + 1):
        chosen = [lookup[a.tobytes()] for a in planner_actions(planner, states, h, exact.actions)]
        values[h] = (reward + expected_next(values[h - 1], mats, counts))[chosen, np.arange(len(states))]
    return values


@pytest.mark.parametrize("family,seed", [("coverage", 4), ("overlapping_reach", 2)])
def test_exact_expectation_on_the_planners_value_is_one_exact_improvement_step(family, seed) -> None:
    """With V the planner's exact value, the exact-expectation lookahead is exact policy improvement: its exact
    return is improvement_steps' first step, and its Q values are the planner's Q (DP ground truth)."""
    from bandits.restless.joint_dp import state_index
    from engine.analysis.exact_policy import improvement_steps
    from engine.planners import make_planner

    instance = _instance(family, seed, n_arms=4, horizon=6)
    planner = make_planner("whittle" if family == "coverage" else "lagrangian", instance)
    exact = exact_optimum(instance)
    values = _planner_value_tables(instance, planner, exact)
    policy = _policy(family, instance, _silent(instance))
    assert policy.exact_expectation
    counts = instance.arms.state_counts
    policy.next_values = lambda s, h: values[h][state_index(s, counts)]  # type: ignore[method-assign]
    improved = policy_value(instance, lambda s, h: policy.actions(s, h)[0], exact.actions)
    assert improved == pytest.approx(improvement_steps(planner, exact, 1)[1], rel=1e-9)
    assert improved >= planner_policy_value(planner, exact) - 1e-9
    states = joint_states(counts)[::17]
    sampled = LookaheadPolicy(family, instance, LookaheadConfig(samples=4096, exact_expectation=False), policy.value)
    sampled.next_values = policy.next_values  # type: ignore[method-assign]
    assert not sampled.exact_expectation
    exact_q = policy.q_table(4)[:, state_index(states, counts)].T  # (B, K), same candidates in the same order
    error = np.abs(sampled.scores(states, 4, policy.candidates) - exact_q)  # 4,096 samples: Monte-Carlo error only
    assert error.max() < 0.35 and error.mean() < 0.08
    assert np.allclose(policy.actions(states, 4)[1], exact_q.max(1))
