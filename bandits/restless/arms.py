"""Restless arms as data: one finite-state MDP per arm, two or more actions ordered by cost.

Arrays (``RestlessArms.arrays()``): ``transitions`` (arms, actions, states, states) with rows summing to
one, ``rewards`` r(s, a) (arms, states, actions), ``costs`` (arms, actions) strictly increasing in the action
(action 0 is the cheapest, "passive"), ``initial`` (arms, states) the initial state distribution.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from scenarios.errors import InvalidInputError
from scenarios.validation import parse_model


class RestlessArms(BaseModel):
    """Per-arm MDPs; round-trips through JSON (``model_dump_json`` / ``RestlessArms.parse``)."""

    model_config = ConfigDict(extra="forbid")

    transitions: list[list[list[list[float]]]] = Field(description="P[arm][action][state][next state]")
    rewards: list[list[list[float]]] = Field(description="r[arm][state][action], expected reward of the step")
    costs: list[list[float]] = Field(description="cost[arm][action], strictly increasing in the action")
    initial: list[list[float]] = Field(description="initial state distribution, one row per arm")
    _arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> RestlessArms:
        P = np.asarray(self.transitions, dtype=float)
        if P.ndim != 4 or P.shape[2] != P.shape[3] or 0 in P.shape:
            raise ValueError(f"transitions: expected shape (arms, actions, states, states), got {P.shape}")
        N, A, S, _ = P.shape
        if A < 2:
            raise ValueError("transitions: at least two actions are required")
        for name, want in (("rewards", (N, S, A)), ("costs", (N, A)), ("initial", (N, S))):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != want:
                raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: NaN or infinity")
        if not np.all(np.isfinite(P)) or np.any(P < -1e-12) or np.any(np.abs(P.sum(-1) - 1) > 1e-6):
            raise ValueError("transitions: every row must be a probability distribution")
        C = np.asarray(self.costs, dtype=float)
        if np.any(np.diff(C, axis=1) <= 0) or np.any(C < 0):
            raise ValueError("costs: must be non-negative and strictly increasing in the action")
        init = np.asarray(self.initial, dtype=float)
        if np.any(init < -1e-12) or np.any(np.abs(init.sum(-1) - 1) > 1e-6):
            raise ValueError("initial: every row must be a probability distribution")
        return self

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def parse(cls, data: object) -> RestlessArms:
        """Validate a dict, JSON text or model; errors become ``InvalidInputError`` naming the field."""
        return parse_model(cls, data, "arms")

    @classmethod
    def from_arrays(
        cls,
        transitions: np.ndarray,
        rewards: np.ndarray,
        costs: np.ndarray | None = None,
        initial: np.ndarray | None = None,
    ) -> RestlessArms:
        """Build from arrays; ``costs`` may be one row (actions,) for all arms (default 0, 1, 2, ...),
        ``initial`` defaults to uniform, ``rewards`` of shape (arms, states) means r(s) for every action."""
        P = np.asarray(transitions, dtype=float)
        if P.ndim != 4:
            raise InvalidInputError("arms.transitions", f"expected 4 dimensions, got shape {P.shape}")
        N, A, S, _ = P.shape
        R = np.asarray(rewards, dtype=float)
        if R.ndim == 2:
            R = np.repeat(R[:, :, None], A, axis=2)
        C = np.arange(A, dtype=float) if costs is None else np.asarray(costs, dtype=float)
        if C.ndim == 1:
            C = np.broadcast_to(C, (N, C.shape[0]))
        init = np.full((N, S), 1.0 / S) if initial is None else np.asarray(initial, dtype=float)
        arms = cls.parse(
            {"transitions": P.tolist(), "rewards": R.tolist(), "costs": C.tolist(), "initial": init.tolist()}
        )
        return arms

    # ----------------------------------------------------------------------------------- accessors
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(transitions, rewards, costs, initial) as float64 arrays (cached, read-only)."""
        if self._arrays is None:
            P, R, C, init = (
                np.asarray(x, dtype=np.float64) for x in (self.transitions, self.rewards, self.costs, self.initial)
            )
            for arr in (P, R, C, init):
                arr.setflags(write=False)
            self._arrays = (P, R, C, init)
        return self._arrays

    @property
    def n_arms(self) -> int:
        return len(self.transitions)

    @property
    def n_actions(self) -> int:
        return len(self.transitions[0])

    @property
    def n_states(self) -> int:
        return len(self.transitions[0][0])

    def subset(self, arms: np.ndarray | list[int]) -> RestlessArms:
        P, R, C, init = self.arrays()
        idx = np.asarray(arms, dtype=np.int64)
        return RestlessArms.from_arrays(P[idx], R[idx], C[idx], init[idx])


def from_cormab(arm_model: object) -> RestlessArms:
    """Convert ``scenarios.cormab.instance.ArmModel`` (4 states, up with prob p(a) else down, reward r(s') of the
    state reached) into RestlessArms with r(s, a) = E[r(s')] and costs (0, 1)."""
    from scenarios.cormab.instance import N_STATES, ArmModel

    if not isinstance(arm_model, ArmModel):
        raise InvalidInputError("arms", f"expected scenarios.cormab.instance.ArmModel, got {type(arm_model).__name__}")
    p0, p1, table = arm_model.arrays()
    N, S = p0.shape[0], N_STATES
    p = np.stack([p0, p1], axis=1)  # (N, A)
    s = np.arange(S)
    up, down = np.minimum(s + 1, S - 1), np.maximum(s - 1, 0)
    P = np.zeros((N, 2, S, S))
    P[:, :, s, up] += p[:, :, None]  # the (s, up) pairs are distinct, so += adds once per pair
    P[:, :, s, down] += 1 - p[:, :, None]
    R = np.einsum("nasj,nj->nsa", P, table)
    init = np.zeros((N, S))
    init[:, 0], init[:, 1] = 1 - arm_model.init_prob, arm_model.init_prob
    return RestlessArms.from_arrays(P, R, np.array([0.0, 1.0]), init)
