"""The coupled restless bandit (coRMAB) base arm model as plain data, and the base of its domains.

Arm state s_j in {0,1,2,3}; with probability p_j(a) the arm moves up one level, otherwise down one,
clipped to [0, 3]. The reward of a step is sum_j r_j(s'_j). See ../shared/REFERENCE.md section 1.1.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.action_model import ActionModel
from solvers.milp import MatrixMILP

N_STATES = 4


class ArmModel(BaseModel):
    """Per-arm up-probabilities when passive/active, reward table, initial distribution and horizon."""

    model_config = ConfigDict(extra="forbid")

    p_passive: list[float] = Field(description="P(up) when the arm is not pulled, one entry per arm")
    p_active: list[float] = Field(description="P(up) when the arm is pulled, one entry per arm")
    rewards: list[list[float]] = Field(description="reward of each of the 4 states, one row per arm")
    init_prob: float = Field(0.2, ge=0.0, le=1.0, description="P(initial state 1) per arm (else 0), evaluation")
    train_init_prob: float = Field(0.5, ge=0.0, le=1.0, description="the same during training")
    horizon: int = Field(20, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check(self) -> ArmModel:
        n = len(self.p_passive)
        if n < 1:
            raise ValueError("p_passive: at least one arm is required")
        for name in ("p_active", "rewards"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries (one per arm), got {len(getattr(self, name))}")
        for name in ("p_passive", "p_active"):
            values = np.asarray(getattr(self, name), dtype=float)
            if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
                raise ValueError(f"{name}: probabilities must lie in [0, 1]")
        table = np.asarray(self.rewards, dtype=float)
        if table.shape != (n, N_STATES):
            raise ValueError(f"rewards: expected shape ({n}, {N_STATES}), got {table.shape}")
        if not np.all(np.isfinite(table)):
            raise ValueError("rewards: NaN or infinity")
        return self

    @property
    def n_arms(self) -> int:
        return len(self.p_passive)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_passive, p_active, rewards) as numpy arrays."""
        return np.asarray(self.p_passive), np.asarray(self.p_active), np.asarray(self.rewards)


def generate_arms(n_arms: int, n_good: int, seed: int, horizon: int = 20) -> ArmModel:
    """The reference distributions: good arms 0..n_good-1 pay R in {4,5,6} at the top state."""
    if n_arms < 1:
        raise ValueError("n_arms: must be at least 1")
    rng = np.random.default_rng(seed)
    p_passive = rng.uniform(0.0, 0.2, n_arms)
    p_active = rng.uniform(0.7, 0.9, n_arms)
    rewards = np.empty((n_arms, N_STATES))
    good = np.arange(n_arms) < n_good
    rewards[good, :3] = [0.2, 0.15, 0.1]
    rewards[~good, :3] = [0.1, 0.15, 0.2]
    rewards[good, 3] = rng.integers(4, 7, good.sum())
    rewards[~good, 3] = rng.integers(1, 4, (~good).sum())
    return ArmModel(p_passive=p_passive.tolist(), p_active=p_active.tolist(), rewards=rewards.tolist(), horizon=horizon)


class CoRMABInstance(BaseModel):
    """Base of every coRMAB domain: arms plus a feasible set over the domain's actions."""

    model_config = ConfigDict(extra="forbid")

    arms: ArmModel

    @property
    def n_arms(self) -> int:
        return self.arms.n_arms

    @property
    def n_actions(self) -> int:
        """Length of the binary action vector (the arms, unless the domain acts through interventions)."""
        return self.arms.n_arms

    @property
    def horizon(self) -> int:
        return self.arms.horizon

    def action_model(self) -> ActionModel:
        raise NotImplementedError

    def action_arm_links(self) -> np.ndarray:
        """(n_actions, n_arms) 0/1 matrix: which arms each action entry reaches (identity for arm pulls)."""
        return np.eye(self.n_actions, self.n_arms)

    def action_costs(self) -> np.ndarray:
        """Resource use of each action entry, for greedy gain-per-cost baselines (1 unless the domain says)."""
        return np.ones(self.n_actions)

    def myopic_milp(self, states: np.ndarray) -> MatrixMILP:
        """Maximise the expected next-step reward over the feasible set.

        For arm-pull domains the expected reward is separable and linear in ``a``; domains whose
        up-probabilities couple the actions (multiple interventions) override this.
        """
        zero = np.zeros(self.n_actions, dtype=np.int64)
        base = float(self.expected_reward(states, zero))
        gains = self.expected_reward(states, np.eye(self.n_actions, dtype=np.int64)) - base
        return self.action_model().milp(gains, offset=base)

    def make_env(self, training: bool = False):
        from scenarios.cormab.env import CoRMABEnv

        return CoRMABEnv(self, training=training)

    def up_probability(self, action: np.ndarray) -> np.ndarray:
        """P(up) per arm under ``action``; works on a single action (n,) or a batch (k, n)."""
        p0, p1, _ = self.arms.arrays()
        return np.where(np.asarray(action) > 0, p1, p0)

    def expected_reward(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Expected next-step reward E[sum_j r_j(s'_j)]; broadcasts over leading batch dimensions."""
        _, _, table = self.arms.arrays()
        p = self.up_probability(action)
        states = np.asarray(states)
        up = np.minimum(states + 1, N_STATES - 1)
        down = np.maximum(states - 1, 0)
        arm = np.arange(self.n_arms)
        return np.sum(p * table[arm, up] + (1.0 - p) * table[arm, down], axis=-1)

    def transition(self, states: np.ndarray, action: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Next states given one uniform draw per arm (common random numbers across policies)."""
        up = uniforms < self.up_probability(action)
        return np.clip(np.asarray(states) + np.where(up, 1, -1), 0, N_STATES - 1)

    def realised_reward(self, next_states: np.ndarray) -> float:
        _, _, table = self.arms.arrays()
        return float(table[np.arange(self.n_arms), np.asarray(next_states)].sum())

    def initial_states(self, rng: np.random.Generator, training: bool = False) -> np.ndarray:
        prob = self.arms.train_init_prob if training else self.arms.init_prob
        return (rng.uniform(size=self.n_arms) < prob).astype(np.int64)
