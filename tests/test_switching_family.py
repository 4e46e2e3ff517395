"""The switching family (issue 16, item 3): arms whose state carries the previous action, with a cost to start
or stop pulling. Augmented arms against their base arms (validity, episodes under common random numbers), the
exact DP against a brute-force DP over joint (x, b) states, planners below the optimum and feasible, JSON and
checkpoint round trips, errors naming the field."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.analysis.exact_dp import exact_optimum, policy_value
from engine.analysis.exact_policy import planner_policy_value
from engine.planners import make_planner
from scenarios import list_scenarios, load_instance, make
from scenarios.arms import Arms, random_arms
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.cormab.switching import SwitchingInstance
from scenarios.errors import InvalidInputError
from scenarios.switching_arms import base_arms, check_switching, with_switching_cost


def _random_base(seed: int, n_arms: int, on_arrival: bool, horizon: int = 6) -> Arms:
    """Random K = 1 arms with 2-3 states each (ragged), either reward form, random initial distributions."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 4, n_arms)
    P = [rng.dirichlet(np.ones(n) * 0.7, size=(2, n)) for n in counts]
    for Pj in P:  # sparse rows: the inverse CDF must skip zero-probability states
        Pj[rng.uniform(size=Pj.shape) < 0.3] = 0.0
        Pj[..., 0] += 1e-3
        Pj /= Pj.sum(-1, keepdims=True)
    fields: dict = {"transitions": [p.tolist() for p in P], "horizon": horizon}
    if on_arrival:
        fields["arrival_rewards"] = [rng.normal(0, 2, n).tolist() for n in counts]
    else:
        fields["rewards"] = [rng.normal(0, 2, (n, 2)).tolist() for n in counts]
    if rng.uniform() < 0.7:
        fields["initial"] = [rng.dirichlet(np.ones(n)).tolist() for n in counts]
    return Arms(**fields)


costs = st.floats(0.0, 3.0, allow_nan=False)


# ------------------------------------------------------------------------------------------ augmentation
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_arms=st.integers(1, 3), on_arrival=st.booleans(), on=costs, off=costs)
def test_augmented_arms_are_valid_and_recover_the_base(seed, n_arms, on_arrival, on, off):
    base = _random_base(seed, n_arms, on_arrival)
    aug = with_switching_cost(base, on, off)
    assert np.array_equal(aug.state_counts, 2 * base.state_counts)
    check_switching(aug, on, off)
    starts = aug.initial
    assert starts is not None
    for j, Pj in enumerate(aug.transitions):
        assert np.allclose(np.asarray(Pj).sum(-1), 1.0, atol=1e-12), j
        assert np.allclose(np.asarray(starts[j])[1::2], 0.0)  # episodes start with b = 0
    back = base_arms(aug)
    _, R, _, init = base.arrays()
    P0, R0, _, init0 = back.arrays()
    assert np.allclose(P0, base.arrays()[0]) and np.allclose(R0, R) and np.allclose(init0, init)
    with pytest.raises(ValueError, match=r"arms\.rewards"):  # the costs are what the check reads
        check_switching(aug, on + 0.1, off)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_arms=st.integers(1, 3), on_arrival=st.booleans(), on=costs, off=costs)
def test_episode_reward_is_base_reward_minus_switching_costs(seed, n_arms, on_arrival, on, off):
    """Under common random numbers the augmented env follows the base env's states x, carries the previous
    action as b, and pays each step the base expected reward minus the costs of the switches made."""
    base = _random_base(seed, n_arms, on_arrival)
    env_base = BudgetedInstance(arms=base, budget=n_arms).make_env()
    env_aug = SwitchingInstance(arms=with_switching_cost(base, on, off), budget=n_arms, on_cost=on, off_cost=off)
    env_aug = env_aug.make_env()
    obs_b, _ = env_base.reset(seed=seed % 1000)
    obs_a, _ = env_aug.reset(seed=seed % 1000)
    rng = np.random.default_rng(seed)
    previous = np.zeros(n_arms, dtype=np.int64)
    total_aug = total_expected = total_costs = 0.0
    for _ in range(base.horizon):
        assert np.array_equal(obs_a[:-1] // 2, obs_b[:-1]) and np.array_equal(obs_a[:-1] % 2, previous)
        action = rng.integers(0, 2, n_arms)
        obs_b, _, _, _, info_b = env_base.step(action)
        obs_a, r_aug, _, _, info_a = env_aug.step(action)
        step_costs = on * np.sum((action == 1) & (previous == 0)) + off * np.sum((action == 0) & (previous == 1))
        assert info_a["expected_reward"] == pytest.approx(info_b["expected_reward"] - step_costs, abs=1e-9)
        total_aug += r_aug
        total_expected += info_b["expected_reward"]
        total_costs += step_costs
        previous = action
    assert total_aug == pytest.approx(total_expected - total_costs, abs=1e-8)


def test_augmentation_refuses_bad_input():
    with pytest.raises(ValueError, match=r"^arms: .*K = 2"):
        with_switching_cost(random_arms(2, 3, n_levels=2), 1.0, 0.0)
    for on, off, name in ((-1.0, 0.0, "on_cost"), (0.0, float("inf"), "off_cost"), (float("nan"), 0.0, "on_cost")):
        with pytest.raises(ValueError, match=f"^{name}: "):
            with_switching_cost(random_arms(2, 3), on, off)
    with pytest.raises(ValueError, match=r"arms.transitions\[0\]: .*2 states per base state"):
        check_switching(Arms.from_arrays(np.full((1, 2, 3, 3), 1 / 3), np.zeros((1, 3))), 0.0, 0.0)
    with pytest.raises(ValueError, match=r"arms.transitions\[0\]\[0\]"):  # a base arm is not switching arms
        check_switching(random_arms(1, 4), 0.0, 0.0)


# ------------------------------------------------------------------------------------------ the scenario
def test_registered_generated_and_seeded():
    assert "switching" in list_scenarios()
    env = make("switching", n_arms=4, budget=2, seed=3, horizon=5, n_states=3, on_cost=0.7, off_cost=0.2)
    inst = env.instance
    assert type(inst) is SwitchingInstance and env.scenario == "switching"
    assert inst.arms.state_counts.tolist() == [6] * 4 and (inst.on_cost, inst.off_cost) == (0.7, 0.2)
    assert inst == make("switching", n_arms=4, budget=2, seed=3, horizon=5, on_cost=0.7, off_cost=0.2).instance
    assert inst != make("switching", n_arms=4, budget=2, seed=4, horizon=5, on_cost=0.7, off_cost=0.2).instance
    assert make("switching").instance.n_arms == 6


def test_json_round_trip_and_base_arms_input():
    inst = make("switching", n_arms=3, seed=1, horizon=4).instance
    text = inst.model_dump_json()
    again = load_instance("switching", json.loads(text))
    assert type(again) is SwitchingInstance and again == inst
    assert make("switching", instance=text).instance == inst
    data = {"base_arms": inst.base_arms().model_dump(), "budget": 2, "on_cost": inst.on_cost, "off_cost": 0.5}
    via_base = load_instance("switching", data)
    assert isinstance(via_base, SwitchingInstance)
    assert np.allclose(via_base.arms.arrays()[0], inst.arms.arrays()[0])
    assert np.allclose(via_base.arms.arrays()[1], inst.arms.arrays()[1])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"on_cost": -0.5}, "on_cost"),
        ({"off_cost": float("inf")}, "off_cost"),
        ({"n_states": 1}, "n_states"),
        ({"n_arms": 0}, "n_arms"),
        ({"budget": -1}, "budget"),
        ({"n_levels": 2}, "params"),
    ],
)
def test_generator_errors_name_the_field(params, field):
    with pytest.raises(InvalidInputError) as err:
        make("switching", **{"n_arms": 3, **params})
    assert err.value.field == field


def _with_base(base: dict):
    return lambda d: (d.pop("arms"), d.update(base_arms=base))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(on_cost=d["on_cost"] + 1.0), "instance.arms.rewards[0]"),
        (lambda d: d.update(off_cost=-1.0), "instance.off_cost"),
        (lambda d: d.pop("on_cost"), "instance.on_cost"),
        (lambda d: d.update(arms=random_arms(3, 4).model_dump()), "instance.arms.transitions[0][0]"),
        (_with_base(random_arms(3, 4, n_levels=2).model_dump()), "instance.base_arms"),
        (_with_base({"transitions": [[[[1.0]]]]}), "instance.base_arms.transitions[0]"),
        (lambda d: d.update(base_arms=random_arms(3, 4).model_dump()), "instance.base_arms"),  # and arms
    ],
)
def test_instance_errors_name_the_field(edit, field):
    data = make("switching", n_arms=3, seed=0, horizon=4).instance.model_dump(mode="json")
    edit(data)
    with pytest.raises(InvalidInputError) as err:
        load_instance("switching", data)
    assert err.value.field.startswith(field), err.value


def test_states_out_of_range_are_refused():
    env = make("switching", n_arms=3, seed=0, horizon=4)
    policy = Engine.plan(env, "whittle")
    assert env.action_model().is_feasible(policy.decide([5, 0, 3, 4]).action)
    with pytest.raises(InvalidInputError, match="outside"):
        policy.decide([6, 0, 3, 4])
    with pytest.raises(InvalidInputError):
        env.reset(options={"states": [0, 0, -1]})


# ------------------------------------------------------------------------------------------ ground truth
def _brute_force_optimum(inst: SwitchingInstance) -> float:
    """Finite-horizon DP over joint (x, b) written from the base arms and the costs alone."""
    base = inst.base_arms()
    P, R, _, init = base.arrays()
    J, counts = inst.n_arms, base.state_counts.tolist()
    xs = list(itertools.product(*[range(n) for n in counts]))
    bs = list(itertools.product((0, 1), repeat=J))
    acts = [a for a in itertools.product((0, 1), repeat=J) if sum(a) <= inst.budget]
    V = {(x, b): 0.0 for x in xs for b in bs}
    for _ in range(inst.horizon):
        new = {}
        for x, b in V:
            best = -np.inf
            for a in acts:
                r = sum(R[j, x[j], a[j]] for j in range(J))
                r -= sum(inst.on_cost * (a[j] and not b[j]) + inst.off_cost * (b[j] and not a[j]) for j in range(J))
                future = sum(np.prod([P[j, a[j], x[j], y[j]] for j in range(J)]) * V[(y, a)] for y in xs)
                best = max(best, r + future)
            new[(x, b)] = best
        V = new
    zero = (0,) * J
    return sum(np.prod([init[j, x[j]] for j in range(J)]) * V[(x, zero)] for x in xs)


@pytest.mark.parametrize(("n_arms", "budget", "n_states", "seed"), [(2, 1, 2, 0), (3, 1, 2, 1), (2, 2, 3, 2)])
def test_exact_optimum_matches_brute_force(n_arms, budget, n_states, seed):
    inst = make("switching", n_arms=n_arms, budget=budget, n_states=n_states, seed=seed, horizon=4).instance
    assert exact_optimum(inst).value == pytest.approx(_brute_force_optimum(inst), rel=1e-10, abs=1e-10)


@pytest.fixture(scope="module")
def small():
    inst = make("switching", n_arms=4, budget=2, seed=0, horizon=6).instance
    return inst, exact_optimum(inst)


def test_switching_costs_matter(small):
    """The costs lower the optimum, and the policy optimal without them is beaten by the optimum with them."""
    inst, ex = small
    free = SwitchingInstance(arms=with_switching_cost(inst.base_arms(), 0.0, 0.0), budget=2, on_cost=0, off_cost=0)
    blind = exact_optimum(free)
    assert ex.value < blind.value - 1e-6
    assert policy_value(inst, blind.policy, ex.actions) < ex.value - 1e-3


@pytest.mark.parametrize("name", ["whittle", "lagrangian"])
def test_planners_feasible_and_below_the_optimum(small, name):
    inst, ex = small
    planner = make_planner(name, inst)
    value = planner_policy_value(planner, ex)
    assert 0 < value <= ex.value + 1e-7
    plan = Engine.plan(make("switching", instance=inst), name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        state = [*rng.integers(0, 6, inst.n_arms).tolist(), int(rng.integers(1, inst.horizon + 1))]
        assert inst.action_model().is_feasible(plan.decide(state).action)


# ------------------------------------------------------------------------------------------ learning
def test_trained_engine_saves_and_reloads_the_family(tmp_path):
    from engine import DQNConfig

    env = make("switching", n_arms=3, budget=1, seed=0, horizon=4)
    cfg = DQNConfig(episodes=2, warm_start_samples=128, warm_start_epochs=5, hidden=(8,))
    engine = Engine.train(env, cfg, seed=0, progress=False)
    loaded = Engine.load(engine.save(tmp_path / "switching"))
    assert isinstance(loaded, Engine)
    assert loaded.scenario == "switching" and type(loaded.instance) is SwitchingInstance
    assert loaded.instance == env.instance
    state = [1, 4, 3, 2]
    assert np.array_equal(loaded.decide(state).action, engine.decide(state).action)
    assert env.action_model().is_feasible(loaded.decide(state).action)


def test_sweep_accepts_the_family():
    from engine.experiments.sweep import DOMAINS, SweepConfig

    assert "switching" in DOMAINS
    assert SweepConfig(domains=("switching",), n_arms=3, budget=1).domains == ("switching",)
