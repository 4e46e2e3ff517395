"""The coupled restless bandit (coRMAB) base: arms (:class:`scenarios.arms.Arms`, any finite MDPs) plus a feasible
set over the domain's actions.

Arm-pull domains act through one binary entry per (arm, level >= 1): arm j at level k is entry
``j * K + k - 1`` (with K = 1 the entries are the arm pulls), at most one level per arm. The step reward is
sum_j r_j(s'_j) for rewards on arrival, else sum_j r_j(s_j, a_j). The benchmark's arms are
:func:`generate_arms` (birth-death, 4 states; see ../shared/REFERENCE.md section 1.1).
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.arms import BIRTH_DEATH_STATES, Arms, birth_death_arms
from scenarios.constraints import Block, BlockBase
from scenarios.constraints.attach import check_instance_constraints, domain_model, parse_instance_constraints
from scenarios.errors import InfeasibleActionError, InvalidInputError
from solvers.milp import MatrixMILP

N_STATES = BIRTH_DEATH_STATES  # the benchmark's birth-death arms; general arms: ``instance.arms.n_states``
ArmModel = Arms  # the former birth-death-only name


def generate_arms(n_arms: int, n_good: int, seed: int, horizon: int = 20) -> Arms:
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
    return birth_death_arms(p_passive, p_active, rewards, horizon=horizon)


@runtime_checkable
class ReachStructure(Protocol):
    """A domain whose birth-death arms respond to a combination of action entries (interventions reaching
    several arms): ``control_structure()`` gives the weights (J, N) with x = weights @ a, each arm's control
    values and the up-probability at each value. Without it, each action entry sets one arm's level."""

    def control_structure(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]: ...


@runtime_checkable
class ArmControls(Protocol):
    """A domain whose arms respond to combinations of action entries through its own tables (a patrol's position
    moves to the chosen end node): ``arm_controls()`` gives (weights (J, N) with x = weights @ a, each arm's
    control values, its transition matrices (V_j, S, S) and expected step rewards (S, V_j) at those values),
    padded to the instance's state count. The exact DP, the occupancy LP and the planners read it."""

    def arm_controls(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]: ...


@runtime_checkable
class EntryTies(Protocol):
    """A domain whose action entries are indicators of an arm's state or control value (a patrol starts where it
    stands and moves to the end it picks): ``state_ties()`` lists (entry i, arm j, state s) with a_i = 1 exactly
    when arm j is in state s, ``value_ties()`` (entry i, arm j, value index k) with a_i = 1 exactly when arm j's
    control takes its k-th value. The occupancy LP keeps both in expectation at every step (the links
    x = weights @ a alone keep only E[x_j]); the domain enforces them through its rows and
    :meth:`CoRMABInstance.unavailable_entries`."""

    def state_ties(self) -> list[tuple[int, int, int]]: ...

    def value_ties(self) -> list[tuple[int, int, int]]: ...


class CoRMABInstance(BaseModel):
    """Base of every coRMAB domain: arms plus a feasible set over the domain's actions."""

    model_config = ConfigDict(extra="forbid")

    arms: Arms
    constraints: list[Block] = Field(
        default_factory=list, description="the user's constraint blocks, added to the domain's feasible set"
    )

    _parse_constraints = model_validator(mode="before")(parse_instance_constraints)

    #: whether :meth:`drop_unavailable` repairs a feasible set that is not downward closed (a domain's own rows);
    #: otherwise restricted arms need a downward-closed feasible set
    repairs_dropped_actions: ClassVar[bool] = False

    @model_validator(mode="after")
    def _constraints_fit(self) -> CoRMABInstance:
        check_instance_constraints(self)
        if self.arms.restricted:
            check_availability_fits(self)
        return self

    # ------------------------------------------------------------------ state-dependent availability
    @property
    def state_dependent(self) -> bool:
        """Whether some action entry is unavailable in some state (restricted arms, or the domain's own rule)."""
        return self.arms.restricted

    def unavailable_entries(self, states: np.ndarray) -> np.ndarray:
        """(..., n_actions) True where an action entry may not be 1 in ``states`` (..., J): its arm cannot take
        that level there (``arms.available``). All False for unrestricted arms."""
        s = np.asarray(states, dtype=np.int64)
        J, K = self.n_arms, self.arms.n_levels
        if not self.arms.restricted:  # (restricted arms only in arm-pull domains: n_actions = J K)
            return np.zeros((*s.shape[:-1], self.n_actions), dtype=bool)
        return ~self.arms.allowed(s)[..., 1:].reshape(*s.shape[:-1], J * K)

    def uses_unavailable(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(...) whether each action (..., n_actions) takes an entry unavailable in its states (..., J)
        (broadcast over the batch dimensions)."""
        a = np.asarray(actions)
        if not self.state_dependent:
            return np.zeros(a.shape[:-1], dtype=bool)
        return np.any(self.unavailable_entries(states) & (a > 0), axis=-1)

    def check_available(self, states: np.ndarray, action: np.ndarray) -> None:
        """Raise :class:`InfeasibleActionError` naming each entry of ``action`` whose arm cannot take it in
        ``states`` (a hard, state-dependent limit such as a cap on pulls or a cooldown)."""
        if not self.arms.restricted:
            return
        bad = np.flatnonzero(self.unavailable_entries(states) & (np.asarray(action) > 0))
        if bad.size:
            K = self.arms.n_levels
            s = np.asarray(states, dtype=np.int64)
            raise InfeasibleActionError(
                [f"available[arm {i // K}][state {int(s[i // K])}][level {i % K + 1}]" for i in bad.tolist()]
            )

    def drop_unavailable(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``action`` (..., n_actions) without the entries unavailable in ``states``; still feasible, because
        restricted arms require a downward-closed feasible set (checked when the instance is built)."""
        a = np.array(action, dtype=np.int64, copy=True)
        if self.arms.restricted:
            a[np.broadcast_to(self.unavailable_entries(states), a.shape)] = 0
        return a

    def compose_model(self, name: str, blocks: list[BlockBase]) -> ActionModel:
        """The ActionModel of the domain's ``blocks`` followed by the user's :attr:`constraints`; with restricted
        arms it must stay downward closed (checked here too, so an instance copied with other constraints, e.g.
        ``model_copy(update=...)``, which skips validation, cannot get round it)."""
        model = domain_model(name, self.n_actions, blocks, self.constraints)
        closed = model.downward_closed
        if self.repairs_dropped_actions:  # the domain's drop_unavailable repairs its own rows; the user's must close
            closed = not self.constraints or domain_model(name, self.n_actions, [], self.constraints).downward_closed
        if self.arms.restricted and not closed:
            raise InvalidInputError(
                "arms.available",
                f"{type(self).__name__}'s feasible set (with its constraints) is not downward closed: dropping an "
                "unavailable pull could make the action infeasible; state-dependent availability needs one",
            )
        return model

    @property
    def n_arms(self) -> int:
        return self.arms.n_arms

    @property
    def n_actions(self) -> int:
        """Length of the binary action vector: one entry per (arm, level >= 1), unless the domain acts through
        interventions."""
        return self.arms.n_arms * self.arms.n_levels

    @property
    def n_states(self) -> int:
        """Padded per-arm state count (``arms.state_counts`` per arm)."""
        return self.arms.n_states

    @property
    def horizon(self) -> int:
        return self.arms.horizon

    def action_model(self) -> ActionModel:
        raise NotImplementedError

    def level_blocks(self) -> list[BlockBase]:
        """With K >= 2 levels: at most one level per arm (a group cap of 1 over each arm's entries)."""
        K = self.arms.n_levels
        if K == 1:
            return []
        from scenarios.constraints.group_cap import GroupCapBlock

        return [GroupCapBlock(groups=np.repeat(np.arange(self.n_arms), K).tolist(), caps=[1] * self.n_arms)]

    def level_costs(self) -> np.ndarray:
        """(n_actions,) the cost of each (arm, level) entry above the passive action: costs[j][k] - costs[j][0]."""
        _, _, C, _ = self.arms.arrays()
        return (C[:, 1:] - C[:, :1]).ravel()

    def action_arm_links(self) -> np.ndarray:
        """(n_actions, n_arms) 0/1 matrix: which arms each action entry reaches (identity for arm pulls)."""
        return (self.level_weights() > 0).T.astype(float)

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

    def arm_levels(self, action: np.ndarray) -> np.ndarray:
        """Each arm's action level (..., J) from a binary action vector (..., n_actions)."""
        a = np.asarray(action, dtype=np.int64)
        K = self.arms.n_levels
        if K == 1:
            return a
        return (a.reshape(*a.shape[:-1], self.n_arms, K) * np.arange(1, K + 1)).sum(-1)

    def level_weights(self) -> np.ndarray:
        """(J, n_actions): arm j's level is ``level_weights() @ a`` (entry j * K + k - 1 counts k)."""
        J, K = self.n_arms, self.arms.n_levels
        W = np.zeros((J, J * K))
        W[np.repeat(np.arange(J), K), np.arange(J * K)] = np.tile(np.arange(1.0, K + 1), J)
        return W

    def up_probability(self, action: np.ndarray) -> np.ndarray:
        """P(up) per arm under ``action`` for birth-death arms; works on a single action (n,) or a batch (k, n)."""
        p0, p1, _ = self.arms.birth_death(type(self).__name__)
        return np.where(np.asarray(action) > 0, p1, p0)

    def expected_reward(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Expected step reward (E[sum_j r_j(s'_j)] or sum_j r_j(s_j, a_j)); broadcasts over batch dimensions."""
        return np.sum(self.arms.expected_reward(states, self.arm_levels(action)), axis=-1)

    def transition(self, states: np.ndarray, action: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Next states given one uniform draw per arm (common random numbers across policies)."""
        return self.arms.sample(states, self.arm_levels(action), uniforms)

    def realised_reward(
        self, next_states: np.ndarray, states: np.ndarray | None = None, action: np.ndarray | None = None
    ) -> float:
        """The step's reward; ``states`` and ``action`` are needed when rewards are not paid on arrival."""
        if self.arms.on_arrival:
            levels = np.zeros(self.n_arms, dtype=np.int64)
            return float(self.arms.realised_reward(levels, levels, next_states).sum())
        if states is None or action is None:
            raise ValueError("realised_reward: rewards r(s, a) need the states and the action")
        return float(self.arms.realised_reward(states, self.arm_levels(action), next_states).sum())

    def initial_states(self, rng: np.random.Generator, training: bool = False) -> np.ndarray:
        return self.arms.sample_initial(rng.uniform(size=self.n_arms), training=training)


def check_availability_fits(instance: CoRMABInstance) -> None:
    """Restricted arms need per-arm actions and a feasible set that stays feasible when entries are dropped."""
    name = type(instance).__name__
    if isinstance(instance, ReachStructure):
        raise InvalidInputError(
            "arms.available", f"{name} acts through interventions, not per-arm levels: availability cannot apply"
        )
    instance.action_model()  # refuses a feasible set that is not downward closed (compose_model)


def birth_death_expected(table: np.ndarray, p: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Per-arm expected arrival reward (..., J) of birth-death arms moving up with probability ``p`` (..., J)."""
    s = np.asarray(states)
    arm = np.arange(table.shape[0])
    up, down = np.minimum(s + 1, N_STATES - 1), np.maximum(s - 1, 0)
    return p * table[arm, up] + (1.0 - p) * table[arm, down]


def birth_death_step(states: np.ndarray, p: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Birth-death next states: up iff the arm's uniform is below ``p``, else down, clipped."""
    return np.clip(np.asarray(states) + np.where(uniforms < p, 1, -1), 0, N_STATES - 1)
