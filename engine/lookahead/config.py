"""Every setting of the planner-plus-learned-value lookahead policy, checked in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from scenarios.errors import InvalidInputError


@dataclass
class LookaheadConfig:
    """Training and decision settings of :class:`engine.lookahead.policy.LookaheadPolicy`."""

    planner: str = "auto"  # the base planner (auto: the DQN's auto prior; training stores the concrete name)
    rollout_episodes: int = 800  # training episodes rolled out for the value's regression
    explore: float = 0.5  # share of rollouts that take random feasible actions before a random branch step
    hidden: int = 64  # width of the value network
    epochs: int = 60  # passes over the recorded returns
    sweeps: int = 20  # fitted policy-evaluation sweeps on expected one-step targets after the Monte-Carlo fit
    iterations: int = 1  # policy-improvement steps: iteration k rolls out the lookahead of iteration k - 1
    samples: int = 32  # next-state samples per candidate (common to every candidate and state)
    exact_expectation: bool = True  # small joint state spaces, every action scored: E[V(s')] exact, not sampled
    # score every feasible action when the set provably has at most this many (17,550 exactly-4-of-27 interventions
    # at J = 20 overlapping_reach: 0.6 s a decision, where the local search from the planner missed pairs)
    enumerate_limit: int = 20_000
    # where the feasible set depends on the state (a patrol starts where it stands) and its oracle lists it: score
    # every action the state leaves open when there are at most this many (0: never; local search otherwise)
    state_enumerate_limit: int = 4096
    neighbours: int = 400  # else the base action's one-move neighbourhood, subsampled to this many
    rounds: int = 2  # local-search rounds from the base action (neighbourhood mode)
    validation_episodes: int = 50  # held-out episodes on which the lookahead must beat the planner
    validation_max_episodes: int = 200  # doubled up to this while the best gain is positive but not significant
    selection_z: float = 2.0  # standard errors the paired gain must exceed, else the policy is the planner
    exact_selection_states: int = 1 << 15  # at most this many joint states: select by exact DP values (0: never)

    def __post_init__(self) -> None:
        positive = (
            "rollout_episodes", "hidden", "epochs", "samples", "enumerate_limit", "neighbours", "rounds", "iterations",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(name, f"must be a positive integer, got {value!r}")
        non_negative = (
            "sweeps", "validation_episodes", "validation_max_episodes", "exact_selection_states",
            "state_enumerate_limit",
        )  # fmt: skip
        for name in non_negative:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInputError(name, f"must be an integer >= 0, got {value!r}")
        if not isinstance(self.exact_expectation, bool):
            raise InvalidInputError("exact_expectation", f"must be true or false, got {self.exact_expectation!r}")
        for name in ("explore", "selection_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise InvalidInputError(name, f"must be a finite number, got {value!r}")
        if not 0.0 <= self.explore <= 1.0:
            raise InvalidInputError("explore", f"must lie in [0, 1], got {self.explore!r}")
        if not self.selection_z >= 0.0:
            raise InvalidInputError("selection_z", f"must be >= 0, got {self.selection_z!r}")
        from engine.planners import PLANNERS, load_plugins

        load_plugins()
        if self.planner != "auto" and self.planner not in PLANNERS:
            raise InvalidInputError(
                "planner", f"unknown planner {self.planner!r}; known: {', '.join(sorted(PLANNERS))}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LookaheadConfig:
        """A config from a dict, refusing keys it does not know (nothing configured is silently dropped)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(unknown[0], f"not a lookahead setting; known: {', '.join(sorted(known))}")
        return cls(**data)
