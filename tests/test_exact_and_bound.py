"""Exact DP on tiny instances of every domain and the certified occupancy-LP upper bound."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from engine.analysis.exact_dp import exact_optimum, initial_distribution, joint_states, policy_value
from engine.analysis.occupancy_bound import occupancy_upper_bound
from scenarios.cormab.capacity import CapacityInstance
from scenarios.cormab.multi_intervention import MultiInterventionInstance
from scenarios.cormab.routing import RoutingInstance
from scenarios.cormab.scheduling import SchedulingInstance

CLASSES = {
    "capacity": CapacityInstance,
    "scheduling": SchedulingInstance,
    "routing": RoutingInstance,
    "multi_intervention": MultiInterventionInstance,
}


def tiny(name: str, seed: int, n_arms: int = 5, budget: int = 2, **kw):
    if name == "multi_intervention":
        kw.setdefault("n_actions", 4)
    return CLASSES[name].generate(n_arms=n_arms, budget=budget, seed=seed, **kw)


# ------------------------------------------------------------------------------------ exact DP
def test_dp_matches_brute_force_recursion() -> None:
    """Against a direct recursion over joint outcomes on 3 arms, 3 steps."""
    inst = CapacityInstance.generate(n_arms=3, budget=2, seed=4, horizon=3)
    res = exact_optimum(inst)
    states = [tuple(s) for s in joint_states(3)]
    value = dict.fromkeys(states, 0.0)
    for _ in range(3):
        new = {}
        for s in states:
            best = -np.inf
            for a in res.actions:
                p = inst.up_probability(a)
                q = float(inst.expected_reward(np.array(s), a))
                for ups in itertools.product([0, 1], repeat=3):
                    prob = np.prod([p[j] if u else 1 - p[j] for j, u in enumerate(ups)])
                    nxt = tuple(min(s[j] + 1, 3) if u else max(s[j] - 1, 0) for j, u in enumerate(ups))
                    q += prob * value[nxt]
                best = max(best, q)
            new[s] = best
        value = new
    assert np.allclose([value[s] for s in states], res.values[3])
    assert res.value == pytest.approx(initial_distribution(inst) @ res.values[3])


@pytest.mark.parametrize("name", list(CLASSES))
def test_dp_beats_simple_policies(name: str) -> None:
    inst = tiny(name, seed=1)
    res = exact_optimum(inst)
    acts = res.actions
    assert policy_value(inst, res.policy, acts) == pytest.approx(res.value, rel=1e-12)
    # every constant feasible action
    for a in acts:
        v = policy_value(inst, lambda s, h, a=a: np.broadcast_to(a, (len(s), len(a))), acts)
        assert v <= res.value + 1e-9
    # myopic: best expected next-step reward in each state
    states = joint_states(inst.n_arms)
    greedy = acts[np.argmax(inst.expected_reward(states[:, None, :], acts), axis=1)]
    assert policy_value(inst, lambda s, h: greedy, acts) <= res.value + 1e-9
    # a random deterministic Markov policy
    rng = np.random.default_rng(0)
    table = rng.integers(0, len(acts), (inst.horizon + 1, len(states)))
    assert policy_value(inst, lambda s, h: acts[table[h]], acts) <= res.value + 1e-9


def test_dp_policy_matches_simulation() -> None:
    """The DP value is the expected realised return of its policy in the environment (Monte Carlo)."""
    inst = tiny("scheduling", seed=2)
    res = exact_optimum(inst)
    env = inst.make_env()
    returns = []
    for ep in range(400):
        obs, _ = env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            obs, r, done, _, _ = env.step(res.policy(obs[:-1], obs[-1]))
            total += r
        returns.append(total)
    se = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - res.value) < 4 * se


def test_dp_batched_policy_and_time() -> None:
    inst = tiny("capacity", seed=0, n_arms=6, budget=3)
    start = time.perf_counter()
    res = exact_optimum(inst)
    assert time.perf_counter() - start < 30
    states = np.random.default_rng(0).integers(0, 4, (7, 6))
    batch = res.policy(states, 5)
    assert batch.shape == (7, 6)
    assert all(np.array_equal(batch[k], res.policy(states[k], 5)) for k in range(7))
    with pytest.raises(ValueError, match="time_to_go"):
        res.policy(states, 0)


# ------------------------------------------------------------------------------- occupancy bound
@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_is_valid(name: str, seed: int) -> None:
    inst = tiny(name, seed=seed, n_arms=5 if seed < 2 else 6)
    opt = exact_optimum(inst).value
    res = occupancy_upper_bound(inst)
    assert res.converged
    assert res.bound >= opt - 1e-6
    assert res.bound == pytest.approx(res.lp_value, rel=1e-6)
    assert res.action_marginals.shape == (inst.horizon, inst.n_actions)


def test_cutting_planes_reach_the_full_lp() -> None:
    inst = RoutingInstance.generate(n_arms=12, budget=3, seed=5)
    full = occupancy_upper_bound(inst, method="full")
    cuts = occupancy_upper_bound(inst, method="cuts")
    assert cuts.converged and cuts.method.startswith("cuts")
    assert cuts.bound == pytest.approx(full.bound, rel=1e-6)
    small = tiny("routing", seed=3, n_arms=6)
    assert occupancy_upper_bound(small, method="cuts").bound >= exact_optimum(small).value - 1e-6


@pytest.mark.parametrize("name", list(CLASSES))
def test_bound_at_reference_size_is_fast(name: str) -> None:
    inst = CLASSES[name].generate(n_arms=20, budget=5, seed=0)
    res = occupancy_upper_bound(inst)
    assert res.seconds < 10
    assert res.converged and np.isfinite(res.bound)
    # the bound dominates any simulated policy's return: compare with a random feasible policy
    model = inst.action_model()
    rng = np.random.default_rng(0)
    env = inst.make_env()
    total = 0.0
    for ep in range(5):
        env.reset(seed=ep)
        done = False
        while not done:
            _, _, done, _, info = env.step(model.sample(rng))
            total += info["expected_reward"]
    assert total / 5 < res.bound
