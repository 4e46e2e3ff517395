"""State-dependent hard limits (issue 16, item 3): a cap on each arm's pulls per episode and a cooldown after a
pull, as arm state plus per-state availability (``arms.available``). The augmented arms against their base arms,
the exact DP against a brute-force DP over (x, pulls used, cooldown left), every decision path (planners, batch,
baselines, lookahead, REST) against the availability of the state, the environment's refusal, errors naming the
field."""

from __future__ import annotations

import functools
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.analysis.evaluation import evaluate
from engine.analysis.exact_dp import exact_optimum, policy_value
from engine.analysis.exact_policy import planner_policy_value
from engine.analysis.occupancy_bound import occupancy_upper_bound
from engine.planners import make_planner
from engine.planners.policy import PlannerPolicy
from scenarios import list_scenarios, load_instance, make
from scenarios.arms import Arms, random_arms
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.cormab.pull_limits import PullLimitsInstance
from scenarios.errors import InfeasibleActionError, InvalidInputError
from scenarios.pull_limits import base_arms, check_pull_limits, counter_sizes, with_pull_limits

LIMITS = [(2, 0), (None, 2), (1, 1), (0, 0), (3, 0)]


def _base(seed: int, n_arms: int, n_states: int = 2, horizon: int = 5) -> Arms:
    return random_arms(n_arms, n_states, 1, seed, horizon)


def _brute_optimum(base: Arms, budget: int, cap: int | None, cooldown: int) -> float:
    """The optimum by recursion over (x, pulls used, cooldown left) of every arm, written from the definition (not
    from the augmented arms): pull j only when u_j < cap and w_j = 0; rewards on arrival."""
    P, _, _, init = base.arrays()
    r = base.cache.arrival
    J, S = init.shape

    @functools.cache
    def value(h: int, xs: tuple, us: tuple, ws: tuple) -> float:
        if h == 0:
            return 0.0
        best = -np.inf
        for k in range(min(budget, J) + 1):
            for pulled in itertools.combinations(range(J), k):
                if any((cap is not None and us[j] >= cap) or ws[j] > 0 for j in pulled):
                    continue
                a = [1 if j in pulled else 0 for j in range(J)]
                total = 0.0
                for nxt in itertools.product(range(S), repeat=J):
                    p = np.prod([P[j, a[j], xs[j], nxt[j]] for j in range(J)])
                    if p == 0:
                        continue
                    us2 = tuple(us[j] + a[j] for j in range(J))
                    ws2 = tuple(cooldown if a[j] else max(ws[j] - 1, 0) for j in range(J))
                    total += p * (sum(r[j, nxt[j]] for j in range(J)) + value(h - 1, nxt, us2, ws2))
                best = max(best, total)
        return best

    zero = (0,) * J
    return sum(
        np.prod([init[j, x[j]] for j in range(J)]) * value(base.horizon, tuple(x), zero, zero)
        for x in itertools.product(range(S), repeat=J)
        if np.prod([init[j, x[j]] for j in range(J)]) > 0
    )


# ------------------------------------------------------------------------------------------------ the arms
@pytest.mark.parametrize("cap,cooldown", LIMITS)
def test_limited_arms_round_trip_and_availability(cap, cooldown) -> None:
    base = _base(1, 3, n_states=3)
    arms = with_pull_limits(base, cap, cooldown)
    U, W = counter_sizes(cap, cooldown)
    assert arms.n_states == 3 * U * W
    back = base_arms(arms, cap, cooldown)
    np.testing.assert_allclose(back.cache.P, base.cache.P)
    np.testing.assert_allclose(back.cache.arrival, base.cache.arrival)
    check_pull_limits(arms, cap, cooldown)
    s = np.arange(arms.n_states)
    u, w = (s // W) % U, s % W
    expected = (w == 0) & ((u < cap) if cap is not None else True)
    for j in range(3):
        assert np.array_equal(arms.cache.allowed[j, :, 1], expected)
        assert arms.cache.allowed[j, :, 0].all()
    assert arms.restricted == (not expected.all())
    assert Arms.parse(arms.model_dump_json()) == arms


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cap=st.one_of(st.none(), st.integers(0, 3)), cooldown=st.integers(0, 2))
def test_limited_arms_follow_the_base_trajectory_under_common_random_numbers(seed, cap, cooldown) -> None:
    """Same uniforms, same pulls (where allowed): x follows the base arm, the counters follow their definition."""
    base = _base(seed, 3, n_states=3)
    arms = with_pull_limits(base, cap, cooldown)
    U, W = counter_sizes(cap, cooldown)
    rng = np.random.default_rng(seed)
    s, x = np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    u, w = np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    for _ in range(12):
        want = (rng.uniform(size=3) < 0.6).astype(np.int64)
        a = want * arms.allowed(s)[:, 1]
        assert np.array_equal(arms.allowed(s)[:, 1], (w == 0) & ((u < cap) if cap is not None else True))
        uni = rng.uniform(size=3)
        s, x = arms.sample(s, a, uni), base.sample(x, a, uni)
        u, w = np.minimum(u + a, U - 1), np.where(a > 0, cooldown, np.maximum(w - 1, 0))
        assert np.array_equal(s, (x * U + u) * W + w)


def test_availability_errors_name_the_field() -> None:
    arms = json.loads(with_pull_limits(_base(0, 2), 1, 0).model_dump_json())
    bad = json.loads(json.dumps(arms))
    bad["available"][1][0][0] = False
    with pytest.raises(InvalidInputError) as err:
        Arms.parse(bad)
    assert err.value.field == "arms.available[1][0][0]" and "passive action" in err.value.reason
    bad = json.loads(json.dumps(arms))
    bad["available"][0] = bad["available"][0][:-1]
    with pytest.raises(InvalidInputError) as err:
        Arms.parse(bad)
    assert err.value.field == "arms.available[0]"
    # a pull-limits instance whose availability disagrees with its limits
    tampered = json.loads(json.dumps(arms))
    tampered["available"][0][1][1] = True  # (x 0, one pull used): the cap of 1 is reached
    with pytest.raises(InvalidInputError) as err:
        load_instance("pull_limits", {"arms": tampered, "budget": 1, "max_pulls": 1, "cooldown": 0})
    assert "available[0][1][1]" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        load_instance("pull_limits", {"base_arms": _base(0, 2).model_dump(), "budget": 1, "max_pulls": -1})
    assert "max_pulls" in str(err.value)


def test_availability_refused_where_dropping_a_pull_is_not_feasible() -> None:
    """Interventions with shared reach are not per-arm pulls: availability cannot apply there."""
    from scenarios.cormab.multi_intervention import MultiInterventionInstance

    inst = make("multi_intervention", n_arms=4, budget=2, seed=0).instance
    data = json.loads(inst.model_dump_json())
    S = len(data["arms"]["transitions"][0][0])
    data["arms"]["available"] = [[[True, s != 3] for s in range(S)] for _ in data["arms"]["transitions"]]
    with pytest.raises(InvalidInputError) as err:
        MultiInterventionInstance.parse(data) if hasattr(MultiInterventionInstance, "parse") else load_instance(
            "multi_intervention", data
        )
    assert "available" in str(err.value)


# ------------------------------------------------------------------------------------------- exact values
@pytest.mark.parametrize("cap,cooldown", [(1, 0), (None, 1), (2, 1), (0, 0)])
def test_exact_dp_matches_brute_force_over_the_counters(cap, cooldown) -> None:
    base = _base(3, 2, n_states=2, horizon=4)
    inst = PullLimitsInstance(arms=with_pull_limits(base, cap, cooldown), budget=1, max_pulls=cap, cooldown=cooldown)
    assert exact_optimum(inst).value == pytest.approx(_brute_optimum(base, 1, cap, cooldown), rel=1e-9)


def test_limits_cost_value_and_bound_stays_valid() -> None:
    """Without limits the optimum is the budgeted one; a cap lowers it; cap 0 leaves the passive policy; the
    occupancy bound certifies every one of them."""
    base = _base(4, 3, n_states=3, horizon=6)
    free = exact_optimum(BudgetedInstance(arms=base, budget=1)).value
    previous = free
    for cap in (None, 3, 1, 0):
        inst = PullLimitsInstance(arms=with_pull_limits(base, cap, 0), budget=1, max_pulls=cap, cooldown=0)
        opt = exact_optimum(inst).value
        assert opt <= previous + 1e-9
        assert occupancy_upper_bound(inst).bound >= opt - 1e-6
        previous = opt
    never = policy_value(inst, lambda states, h: np.zeros((len(states), 3), dtype=np.int64), None)
    assert previous == pytest.approx(never)
    assert free > previous + 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_planners_are_near_optimal_and_never_pull_an_unavailable_arm(seed) -> None:
    inst = make("pull_limits", n_arms=3, budget=1, seed=seed, horizon=8, cooldown=1, max_pulls=2).instance
    opt = exact_optimum(inst)
    for name in ("whittle", "lagrangian"):
        value = planner_policy_value(make_planner(name, inst), opt)  # raises on an unavailable action
        assert value <= opt.value + 1e-9
        assert value >= 0.97 * opt.value, name


# ------------------------------------------------------------------------------------------- decisions
@pytest.fixture(scope="module")
def limited():
    return make("pull_limits", n_arms=5, budget=2, seed=2, horizon=10, max_pulls=2, cooldown=1).instance


@pytest.fixture(scope="module")
def planners(limited):
    return {name: PlannerPolicy("pull_limits", limited, name) for name in ("whittle", "lagrangian")}


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_planner_decision_respects_the_state(limited, planners, data) -> None:
    counts = limited.arms.state_counts
    states = np.array([data.draw(st.integers(0, int(c) - 1)) for c in counts])
    ttg = data.draw(st.integers(1, limited.horizon))
    closed = limited.unavailable_entries(states)
    for name in ("whittle", "lagrangian"):
        policy = planners[name]
        for selector in ("mip", "greedy"):
            a = policy.decide([*states.tolist(), ttg], selector=selector).action
            assert not np.any(a[closed]), (name, selector)
        batch = policy.decide_batch([[*states.tolist(), ttg]] * 2)
        single = policy.decide([*states.tolist(), ttg]).action
        assert all(np.array_equal(d.action, single) for d in batch)


def test_lp_update_and_the_exact_oracle_path(limited) -> None:
    """A state where arm 0's cap is reached and arm 1 cools down: LP-update and the oracle-free MILP agree."""
    U, W = counter_sizes(2, 1)
    states = np.array([(2 * U + 2) * W, (2 * U + 1) * W + 1, 2 * U * W, U * W, 0])
    closed = limited.unavailable_entries(states)
    assert closed[0] and closed[1] and not closed[2:].any()
    for name in ("lp_update", "whittle"):
        for reduce in (True, False):
            d = PlannerPolicy("pull_limits", limited, name, reduce=reduce).decide([*states.tolist(), 5])
            assert not np.any(d.action[closed]) and d.status == "optimal"


def test_environment_refuses_an_unavailable_pull_and_keeps_its_state(limited) -> None:
    env = limited.make_env()
    env.reset(seed=0)
    env.step(np.array([1, 1, 0, 0, 0]))  # arms 0 and 1 now cool down
    before = env.observation().copy()
    with pytest.raises(InfeasibleActionError) as err:
        env.step(np.array([1, 0, 0, 0, 0]))
    assert "available[arm 0]" in str(err.value)
    assert np.array_equal(env.observation(), before)


def test_baselines_and_planners_evaluate_on_the_family(limited) -> None:
    result = evaluate(
        limited,
        {
            **{name: cls for name, cls in _baselines(limited).items()},
            "whittle": Engine.plan(make("pull_limits", instance=limited.model_dump()), "whittle"),
        },
        episodes=4,
        seed=0,
    )
    assert set(result.methods) >= {"random", "myopic", "iterative_myopic", "sampling", "whittle"}


def _baselines(instance) -> dict:
    from engine.baselines.cormab import BASELINES

    return {name: cls(instance) for name, cls in BASELINES.items() if name != "null"}


@pytest.mark.parametrize("network", ["joint", "armwise"])
def test_the_dqn_trains_and_decides_within_the_limits(limited, network) -> None:
    """Training (exploration, targets, snapshot selection) and every selector keep unavailable entries at 0; an
    untrained network with the planner prior decides exactly as the planner."""
    from engine.sequoia.dqn_config import DQNConfig

    env = make("pull_limits", instance=limited.model_dump())
    engine = Engine.train(env, DQNConfig(episodes=3, network=network, snapshots=0), seed=0, progress=False)
    assert isinstance(engine, Engine)
    engine.planner = None  # the network's own decisions, even where training kept the planner
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(12):
        states = np.array([rng.integers(0, c) for c in limited.arms.state_counts])
        rows.append([*states.tolist(), int(rng.integers(1, limited.horizon + 1))])
        closed = limited.unavailable_entries(states)
        for selector in ("mip", "greedy", "sampling", "enumerate"):
            assert not np.any(engine.decide(rows[-1], selector=selector).action[closed]), selector
    for row, d in zip(rows, engine.decide_batch(rows, selector="greedy"), strict=True):
        assert not np.any(d.action[limited.unavailable_entries(np.array(row[:-1]))])
    silent = Engine.train(env, DQNConfig(episodes=0, snapshots=0), seed=0, progress=False)
    silent.planner = None
    whittle = PlannerPolicy("pull_limits", limited, "whittle")
    for row in rows:
        assert np.array_equal(silent.decide(row, selector="enumerate").action, whittle.decide(row).action)


def test_the_lookahead_learns_on_limited_arms(limited) -> None:
    from engine.lookahead import LookaheadConfig, train_lookahead

    config = LookaheadConfig(rollout_episodes=40, epochs=2, sweeps=1, samples=4, validation_episodes=4)
    policy = train_lookahead("pull_limits", limited, config, seed=0, progress=False)
    rng = np.random.default_rng(0)
    for _ in range(20):
        states = np.array([rng.integers(0, c) for c in limited.arms.state_counts])
        a = policy.decide([*states.tolist(), int(rng.integers(1, limited.horizon + 1))], selector="lookahead").action
        assert not np.any(a[limited.unavailable_entries(states)])


def test_registered_and_served_over_rest(rest, limited) -> None:
    client, headers = rest
    assert "pull_limits" in list_scenarios()
    body = {"scenario": "pull_limits", "planner": "whittle", "instance": json.loads(limited.model_dump_json())}
    U, W = counter_sizes(2, 1)
    state = [(2 * U + 2) * W, (2 * U + 2) * W, (2 * U + 2) * W, 2 * U * W, 0, 5]  # arms 0-2 used both pulls
    r = client.post("/v1/planners", json=body, headers=headers)
    assert r.status_code == 201, r.text
    d = client.post(f"/v1/policies/{r.json()['id']}/decisions", json={"state": state}, headers=headers)
    assert d.status_code == 201, d.text
    assert d.json()["action"][:3] == [0, 0, 0]
    library = Engine.plan(make("pull_limits", instance=body["instance"]), "whittle")
    assert d.json()["action"] == library.decide(state).action.tolist()


@pytest.mark.parametrize("domain", ["capacity", "scheduling", "routing"])
def test_availability_on_the_worker_and_routing_domains(domain) -> None:
    """Any downward-closed arm-pull domain takes restricted arms: the exact oracles (capacity, scheduling), the
    routing MILP and the vectorised batch all keep unavailable pulls at 0."""
    inst = make(domain, n_arms=6, budget=2, seed=1).instance
    data = json.loads(inst.model_dump_json())
    data["arms"] = json.loads(
        with_pull_limits(random_arms(6, 2, 1, seed=3, horizon=inst.horizon), 1, 1).model_dump_json()
    )
    limited = load_instance(domain, data)
    assert limited.arms.restricted
    policy = PlannerPolicy(domain, limited, "whittle")
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(8):
        states = rng.integers(0, limited.arms.n_states, limited.n_arms)
        rows.append([*states.tolist(), int(rng.integers(1, limited.horizon + 1))])
        d = policy.decide(rows[-1])
        assert not np.any(d.action[limited.unavailable_entries(states)]) and d.status == "optimal"
    for row, d in zip(rows, policy.decide_batch(rows), strict=True):
        assert np.array_equal(d.action, policy.decide(row).action)


def test_whittle_index_search_ends_quickly_on_capped_arms() -> None:
    """Capped arms are not indexable in many states (the subsidy also pays for the pulls the cap takes away): the
    search probes its bracket's far end instead of halving ~35 times, and every index is -inf (unavailable) or a
    number, none unconverged."""
    from bandits.restless.whittle import whittle_indices
    from engine.planners.arm_values import ControlStructure

    inst = make("pull_limits", n_arms=6, budget=2, seed=0, horizon=20, max_pulls=3, cooldown=1).instance
    P, _, C, _ = inst.arms.arrays()
    closed = ~inst.arms.cache.allowed[:, :, 1]
    w = whittle_indices((P, ControlStructure.of(inst).masked_reward, C), discount=1.0, horizon=20, check=False)
    assert w.probes <= 20
    assert not np.isnan(w.raw).any()
    assert np.array_equal(np.isneginf(w.raw[..., 0]), np.broadcast_to(closed[:, None, :], w.raw.shape[:-1]))


def test_base_availability_is_carried_by_the_augmented_arms() -> None:
    """A base arm's own availability survives pull limits and switching costs (and comes back from base_arms):
    nothing the user configured is dropped."""
    from scenarios.switching_arms import base_arms as switching_base
    from scenarios.switching_arms import with_switching_cost

    base = json.loads(_base(2, 2, n_states=3).model_dump_json())
    base["available"] = [[[True, s != 2] for s in range(3)], [[True, True]] * 3]  # arm 0: no pull in state 2
    base = Arms.parse(base)
    limited = with_pull_limits(base, 2, 1)
    U, W = counter_sizes(2, 1)
    assert not limited.cache.allowed[0, 2 * U * W : 3 * U * W, 1].any()  # x = 2: never, whatever the counters
    assert limited.cache.allowed[0, 0, 1] and limited.cache.allowed[1, 2 * U * W, 1]
    assert base_arms(limited, 2, 1) == base
    check_pull_limits(limited, 2, 1)
    switching = with_switching_cost(base, 1.0, 0.5)
    assert not switching.cache.allowed[0, 4:6, 1].any() and switching.cache.allowed[0, :4, 1].all()
    assert switching_base(switching).available == base.available


def _restricted_budgeted_k2(seed: int = 0):
    """Budgeted arms with K = 2 levels and random availability (level 1 or 2 unavailable in some states)."""
    arms = json.loads(random_arms(5, 3, 2, seed=seed, horizon=6).model_dump_json())
    rng = np.random.default_rng(seed)
    arms["available"] = [
        [[True, bool(rng.uniform() < 0.7), bool(rng.uniform() < 0.6)] for _ in range(3)] for _ in range(5)
    ]
    return load_instance("budgeted", {"arms": arms, "budget": 3})


@pytest.mark.parametrize(
    "planner,options",
    [("lagrangian", {}), ("lp_update", {}), ("lp_update", {"rounding": "marginals"})],
)
def test_k2_levels_unavailable_are_never_decided_and_values_are_finite(planner, options) -> None:
    inst = _restricted_budgeted_k2()
    policy = PlannerPolicy("budgeted", inst, planner, **options)
    rng = np.random.default_rng(1)
    for _ in range(6):
        states = rng.integers(0, 3, 5)
        row = [*states.tolist(), int(rng.integers(1, 7))]
        closed = inst.unavailable_entries(states)
        for selector in ("mip", "greedy"):
            d = policy.decide(row, selector=selector)
            assert not np.any(d.action[closed]) and np.isfinite(d.value), (selector, d)


def test_armwise_engine_keeping_its_corrected_planner_decides_within_the_limits(limited) -> None:
    from engine.analysis.exact_dp import exact_optimum
    from engine.sequoia.dqn_config import DQNConfig

    small = make("pull_limits", n_arms=3, budget=1, seed=0, horizon=6, max_pulls=1, cooldown=1).instance
    env = make("pull_limits", instance=small.model_dump())
    engine = Engine.train(env, DQNConfig(episodes=2, network="armwise", snapshots=0), seed=0, progress=False)
    rng = np.random.default_rng(0)
    for _ in range(10):
        states = np.array([rng.integers(0, c) for c in small.arms.state_counts])
        for selector in ("mip", "greedy", "sampling"):
            a = engine.decide([*states.tolist(), int(rng.integers(1, 7))], selector=selector).action
            assert not np.any(a[small.unavailable_entries(states)]), selector
    from engine.analysis.exact_policy import greedy_policy_value

    assert greedy_policy_value(engine, exact_optimum(small)) <= exact_optimum(small).value + 1e-9


def test_constraints_that_break_downward_closure_are_refused_even_on_a_copy(limited) -> None:
    from scenarios.constraints.linear import LinearBlock

    block = LinearBlock(rows=[{"terms": {"a[0]": 1.0, "a[1]": 1.0}, "sense": ">=", "rhs": 1.0}])
    with pytest.raises(InvalidInputError) as err:
        limited.model_copy(update={"constraints": [block]}).action_model()
    assert err.value.field == "arms.available"
    data = json.loads(limited.model_dump_json())
    data["constraints"] = [json.loads(block.model_dump_json())]
    with pytest.raises(InvalidInputError):
        load_instance("pull_limits", data)


def test_restless_indices_refuse_restricted_arms(limited) -> None:
    from bandits.restless.whittle import whittle_indices

    with pytest.raises(InvalidInputError) as err:
        whittle_indices(limited.arms, discount=1.0, horizon=5)
    assert err.value.field == "arms.available"


@pytest.mark.parametrize("domain", ["capacity", "scheduling"])
def test_restricted_worker_domains_keep_the_dominance_reduction(domain, monkeypatch) -> None:
    """Capped arms (gain -inf) are never kept by the reduction, so restricted states still decide through it, with
    the full MILP's optimal value and no unavailable pull."""
    from engine.planners.reduction import ArmReduction

    inst = make(domain, n_arms=20, budget=5, seed=2).instance
    data = json.loads(inst.model_dump_json())
    data["arms"] = json.loads(with_pull_limits(inst.arms, 2).model_dump_json())
    limited = load_instance(domain, data)
    planner = make_planner("whittle", limited)
    reduced = PlannerPolicy(domain, limited, planner, reduce=True)
    full = PlannerPolicy(domain, limited, planner, reduce=False)
    calls = []
    original = ArmReduction.solve
    monkeypatch.setattr(ArmReduction, "solve", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    rng = np.random.default_rng(4)
    closed_states = 0
    for _ in range(6):
        states = rng.integers(0, limited.arms.state_counts)
        closed = limited.unavailable_entries(states)
        closed_states += bool(closed.any())
        row = [*states.tolist(), int(rng.integers(1, limited.horizon + 1))]
        a, b = reduced.decide(row), full.decide(row)
        assert a.status == b.status == "optimal"
        assert a.value == pytest.approx(b.value, rel=1e-6, abs=1e-6)
        assert not np.any(a.action[closed]) and limited.action_model().is_feasible(a.action)
    assert closed_states >= 5 and len(calls) == 6
