"""Interventions with overlapping reach: multiple interventions whose random reaches overlap (issue 16, item 3).

The same model as :mod:`scenarios.cormab.multi_intervention` (N interventions, exactly B used per step, arm j moves
up with probability phi_j(x_j), x_j = sum_i w_ji a_i, the same sigmoid response), but the weight matrix is
random instead of grouped: every intervention reaches ``arms_per_intervention`` distinct arms drawn at
random, so an arm is reached by several interventions and each intervention reaches arms that other
interventions also reach. A good arm (x0 in {9, 10}) barely responds to one intervention (x = 3) and
responds strongly to two or three (x = 6, 9), so the value of an intervention depends on which others are
chosen with it and on the states of every arm it touches: the problem does not decompose per arm (the
occupancy LP and the Lagrangian planner tie the arms only through E[x_j]) nor per intervention.

Everything that works for ``multi_intervention`` works here (the instance is a
:class:`~scenarios.cormab.multi_intervention.MultiInterventionInstance`): the exact myopic MILP, the occupancy LP
bound through ``control_structure``, the exact DP at J <= 6, the Lagrangian and LP-update planners, the DQN.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from scenarios.action_model import ActionModel
from scenarios.arms import birth_death_arms
from scenarios.cormab.instance import generate_arms
from scenarios.cormab.multi_intervention import MultiInterventionInstance, phi


class OverlappingReachInstance(MultiInterventionInstance):
    """Interventions that each reach a few random arms (reaches overlap), sigmoid response, exact budget."""

    #: the measured best planner (session 21): prices per (arm, value) from the joint action law, not per unit of x
    default_prior: ClassVar[str] = "action_law"

    @classmethod
    def generate(
        cls,
        n_arms: int = 6,
        budget: int = 4,
        seed: int = 0,
        horizon: int = 20,
        n_actions: int | None = None,
        arms_per_intervention: int = 2,
        intensity: int = 3,
    ) -> OverlappingReachInstance:
        """Random overlapping reach.

        Parameters:
            n_arms: J, the number of arms (J <= 6 for the exact DP).
            budget: B, the exact number of interventions used per step (0 <= B <= N).
            seed: the instance's random seed (arms, reaches and responses).
            horizon: steps per episode.
            n_actions: N, the number of interventions; default ``max(B + 1, (4 J + 2) // 3)`` (8 at J = 6).
            arms_per_intervention: how many distinct arms each intervention reaches, drawn uniformly at random
                per intervention (1 <= k <= J); an arm may be reached by several interventions or by none.
            intensity: w_ji for every reached (arm, intervention) pair (>= 1).

        Response parameters as in ``multi_intervention``: arms 0..B-1 are good (alpha ~ U[0.7, 1], beta ~
        U[1.4, 1.9], x0 in {9, 10}; top-state reward 4..6), the others bad (alpha ~ U[0.2, 0.5], beta = 1,
        x0 in {1, 2}; top-state reward 1..3).
        """
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        n = max(budget + 1, (4 * n_arms + 2) // 3) if n_actions is None else n_actions
        if n < 1:
            raise ValueError("n_actions: must be at least 1")
        if not 0 <= budget <= n:
            raise ValueError(f"budget: must lie in [0, {n}] (the number of interventions)")
        if not 1 <= arms_per_intervention <= n_arms:
            raise ValueError(f"arms_per_intervention: must lie in [1, {n_arms}] (the number of arms)")
        if intensity < 1:
            raise ValueError("intensity: must be at least 1")
        rng = np.random.default_rng([seed, 16, 3, 1])
        W = np.zeros((n_arms, n), dtype=np.int64)
        for i in range(n):
            W[rng.choice(n_arms, arms_per_intervention, replace=False), i] = intensity
        good = np.arange(n_arms) < budget
        alpha = np.where(good, rng.uniform(0.7, 1.0, n_arms), rng.uniform(0.2, 0.5, n_arms))
        beta = np.where(good, rng.uniform(1.4, 1.9, n_arms), 1.0)
        x0 = np.where(good, rng.integers(9, 11, n_arms), rng.integers(1, 3, n_arms)).astype(float)
        x_max = np.sort(W, axis=1)[:, ::-1][:, :budget].sum(axis=1)
        rewards = generate_arms(n_arms, min(budget, n_arms), seed, horizon).arrival_rewards
        assert rewards is not None  # generated birth-death arms pay on arrival
        arms = birth_death_arms(
            phi(np.zeros(n_arms), alpha, beta, x0),
            phi(x_max, alpha, beta, x0),
            rewards,
            horizon=horizon,
        )
        return cls(
            arms=arms, weights=W.tolist(), alpha=alpha.tolist(), beta=beta.tolist(), x0=x0.tolist(), budget=budget
        )

    def action_model(self) -> ActionModel:
        """The exact budget sum_i a_i = B, named after this scenario (so checkpoints reload this class)."""
        return dataclasses.replace(super().action_model(), name="overlapping_reach")
