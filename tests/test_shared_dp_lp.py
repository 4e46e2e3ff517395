"""The engine and the restless bandits share one exact DP (bandits.restless.joint_dp) and one occupancy LP
(bandits.restless.occupancy_model): on the same arms and budget both adapters give the same numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bandits.restless import LPBound, from_cormab, joint_optimal_value, joint_policy_value
from bandits.restless.policy import RestlessPolicy
from engine.analysis.exact_dp import exact_optimum, policy_value
from engine.analysis.occupancy_bound import occupancy_upper_bound
from scenarios.arms import Arms
from scenarios.cormab.budgeted import BudgetedInstance

CASES = [(4, 3, 1, 2.0, 0), (3, 3, 2, 2.0, 1), (5, 2, 1, 1.0, 2)]  # arms, states, levels, budget, seed


def _instance(n_arms: int, n_states: int, n_levels: int, budget: float, seed: int) -> BudgetedInstance:
    return BudgetedInstance.generate(
        n_arms=n_arms, budget=budget, seed=seed, horizon=5, n_states=n_states, n_levels=n_levels
    )


class _Table(RestlessPolicy):
    """A fixed deterministic Markov policy: one row of per-arm levels per (time to go, joint state)."""

    def __init__(self, levels: np.ndarray, counts: tuple[int, ...]) -> None:
        self.levels, self.counts = levels, counts

    def select(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        place = np.concatenate([np.cumprod(np.array(self.counts)[::-1])[::-1][1:], [1]])
        return self.levels[int(time_to_go or 1), np.asarray(states) @ place]


def _to_engine_action(levels: np.ndarray, n_levels: int) -> np.ndarray:
    """Per-arm levels (k, J) -> the budgeted instance's binary entries (k, J * K) (one per arm and level >= 1)."""
    return (levels[..., None] == np.arange(1, n_levels + 1)).reshape(len(levels), -1).astype(np.int64)


@pytest.mark.parametrize("case", CASES)
def test_exact_dp_engine_and_bandits_agree(case: tuple[int, int, int, float, int]) -> None:
    inst = _instance(*case)
    arms, budget = from_cormab(inst.arms), case[3]
    engine = exact_optimum(inst)
    bandit = joint_optimal_value(arms, budget, inst.horizon)
    assert bandit == pytest.approx(engine.value, rel=1e-12)
    assert joint_optimal_value(arms, budget + 1.0, inst.horizon) > bandit + 1e-6  # the budget binds


@pytest.mark.parametrize("case", CASES)
def test_policy_evaluation_engine_and_bandits_agree(case: tuple[int, int, int, float, int]) -> None:
    inst = _instance(*case)
    n_levels = case[2]
    counts = tuple(int(c) for c in inst.arms.state_counts)
    actions = inst.action_model().enumerate()
    levels_of = (actions.reshape(len(actions), inst.n_arms, n_levels) * np.arange(1, n_levels + 1)).sum(-1)
    rng = np.random.default_rng(case[4])
    rows = rng.integers(0, len(actions), (inst.horizon + 1, int(np.prod(counts))))
    table = levels_of[rows]  # (H + 1, S, J) a random feasible action per (time to go, joint state)
    bandit = joint_policy_value(from_cormab(inst.arms), _Table(table, counts), inst.horizon)
    engine = policy_value(inst, lambda s, h: _to_engine_action(table[h], n_levels), actions)
    assert bandit == pytest.approx(engine, rel=1e-12)
    assert bandit < exact_optimum(inst).value  # a random policy is not optimal here


@pytest.mark.parametrize("case", CASES)
def test_occupancy_lp_engine_and_bandits_agree(case: tuple[int, int, int, float, int]) -> None:
    """Costs are linear in the level here, so the engine's link rows (E[level] = the action marginals) and the
    bandits' budget rows over the occupancies describe the same relaxation."""
    inst = _instance(*case)
    arms, budget = from_cormab(inst.arms), case[3]
    engine = occupancy_upper_bound(inst, method="full")
    bandit = LPBound(arms, budget, horizon=inst.horizon).fit()
    assert engine.converged
    assert bandit.value == pytest.approx(engine.lp_value, rel=1e-7)
    assert engine.bound >= bandit.value - 1e-6 * abs(bandit.value)  # the certified bound is the LP's, from above
    assert bandit.value >= exact_optimum(inst).value - 1e-9
    assert bandit.multipliers is not None and bandit.multipliers.max() > 1e-6  # the budget binds


def test_discounted_dp_matches_dense_joint_matrices() -> None:
    """The arm-by-arm contraction with a discount against backward induction over dense joint matrices (Kronecker
    products of the arms' matrices), on arms with different numbers of states."""
    rng = np.random.default_rng(3)
    counts, A, H, gamma, budget = (2, 3, 2), 3, 4, 0.8, 2.0
    S = max(counts)
    P = np.zeros((3, A, S, S))
    R = np.zeros((3, S, A))
    for j, n in enumerate(counts):
        P[j, :, :n, :n] = rng.dirichlet(np.ones(n), size=(A, n))
        R[j, :n] = rng.uniform(0.0, 1.0, (n, A))
    init = [rng.dirichlet(np.ones(n)).tolist() for n in counts]
    arms = from_cormab(
        Arms(
            transitions=[P[j, :, :n, :n].tolist() for j, n in enumerate(counts)],
            rewards=[R[j, :n].tolist() for j, n in enumerate(counts)],
            initial=init,
            horizon=H,
        )
    )
    P, R, _, _ = arms.arrays()  # the model as the library reads it (padded)
    joint = list(itertools.product(*(range(n) for n in counts)))
    actions = [a for a in itertools.product(range(A), repeat=3) if sum(a) <= budget]
    V = np.zeros(len(joint))
    for _ in range(H):
        q = []
        for a in actions:
            T = np.ones((1, 1))
            for j, n in enumerate(counts):
                T = np.kron(T, P[j, a[j], :n, :n])
            q.append(np.array([sum(R[j, s[j], a[j]] for j in range(3)) for s in joint]) + gamma * T @ V)
        V = np.max(q, axis=0)
    start = np.ones(1)
    for row in init:
        start = np.kron(start, row)
    assert joint_optimal_value(arms, budget, H, discount=gamma) == pytest.approx(float(start @ V), rel=1e-12)
    assert joint_optimal_value(arms, budget, H, discount=gamma) < joint_optimal_value(arms, budget, H) - 1e-6
