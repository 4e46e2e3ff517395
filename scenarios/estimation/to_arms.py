"""From estimated dynamics to :class:`scenarios.arms.Arms`: plan and train on the estimate or on posterior draws.

A :class:`DynamicsPosterior` holds only transitions; the rest of an arm model (rewards, action costs, initial
distributions, horizon) is known to the programme and given once here:

    bridge = PosteriorArms(posterior, arrival_rewards=[0.0, 0.5, 1.0], horizon=20)
    arms = bridge.mean_arms()                     # the posterior mean as Arms
    draw = bridge.sample_arms(rng)                # one posterior draw as Arms (Thompson-style planning)
    env = make("budgeted", instance={"arms": arms.model_dump(), "budget": 5})

Rewards are either paid on arrival (``arrival_rewards``: (states,) for every arm or (arms, states)) or per
state and action (``rewards``: (arms, states, actions)), as in :class:`Arms`. Hard limits known to the programme
(an action unavailable in a state, e.g. no call to a beneficiary who has opted out) go in ``available``:
(states, actions) for every arm or (arms, states, actions) booleans, as ``Arms.available``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios.arms import Arms
from scenarios.errors import InvalidInputError
from scenarios.estimation.dirichlet import DynamicsPosterior


@dataclass(frozen=True, eq=False)
class PosteriorArms:
    """A posterior over transitions plus the known parts of the arms; builds :class:`Arms` from transitions."""

    posterior: DynamicsPosterior
    arrival_rewards: np.ndarray | list | None = None
    rewards: np.ndarray | list | None = None
    costs: np.ndarray | list | None = None
    initial: np.ndarray | list | None = None
    train_initial: np.ndarray | list | None = None
    horizon: int = 20
    available: np.ndarray | list | None = None

    def __post_init__(self) -> None:
        N, A, S = self.posterior.shape
        if (self.arrival_rewards is None) == (self.rewards is None):
            raise InvalidInputError("rewards", "give exactly one of arrival_rewards (r(s')) and rewards (r(s, a))")
        if self.arrival_rewards is not None:
            object.__setattr__(self, "arrival_rewards", _per_arm(self.arrival_rewards, "arrival_rewards", N, (S,)))
        else:
            object.__setattr__(self, "rewards", _per_arm(self.rewards, "rewards", N, (S, A)))
        if self.costs is not None:
            object.__setattr__(self, "costs", _per_arm(self.costs, "costs", N, (A,)))
        for name in ("initial", "train_initial"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _per_arm(getattr(self, name), name, N, (S,)))
        if self.available is not None:
            object.__setattr__(self, "available", _per_arm_flags(self.available, N, (S, A)))
        if int(self.horizon) < 1:
            raise InvalidInputError("horizon", f"expected a positive integer, got {self.horizon}")

    def arms(self, transitions: np.ndarray) -> Arms:
        """The arms with these transitions (arms, actions, states, states) and the known rewards, costs, ..."""
        P = np.asarray(transitions, dtype=float)
        if P.shape != self.posterior.counts.shape:
            raise InvalidInputError("transitions", f"expected shape {self.posterior.counts.shape}, got {P.shape}")
        fields: dict[str, Any] = {"transitions": P.tolist(), "horizon": int(self.horizon)}
        for name in ("arrival_rewards", "rewards", "costs", "initial", "train_initial", "available"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value.tolist()
        return Arms.parse(fields)

    def mean_arms(self) -> Arms:
        """The arms of the posterior mean transitions."""
        return self.arms(self.posterior.mean())

    def sample_arms(self, rng: np.random.Generator) -> Arms:
        """The arms of one posterior draw of the transitions."""
        return self.arms(self.posterior.sample(rng))

    def updated(self, more: Any) -> PosteriorArms:
        """The same arms on the posterior updated with ``more`` records (a log or counts)."""
        return PosteriorArms(
            self.posterior.update(more),
            self.arrival_rewards,
            self.rewards,
            self.costs,
            self.initial,
            self.train_initial,
            self.horizon,
            self.available,
        )


def mean_arms(posterior: DynamicsPosterior, **known: Any) -> Arms:
    """``PosteriorArms(posterior, **known).mean_arms()``."""
    return PosteriorArms(posterior, **known).mean_arms()


def sample_arms(posterior: DynamicsPosterior, rng: np.random.Generator, **known: Any) -> Arms:
    """``PosteriorArms(posterior, **known).sample_arms(rng)``."""
    return PosteriorArms(posterior, **known).sample_arms(rng)


def _per_arm(value: Any, name: str, n_arms: int, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a finite (n_arms, *shape) array; one row of ``shape`` is repeated for every arm."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(name, f"expected numbers: {exc}") from exc
    if arr.shape == shape:
        arr = np.broadcast_to(arr, (n_arms, *shape))
    if arr.shape != (n_arms, *shape):
        raise InvalidInputError(name, f"expected shape {shape} or {(n_arms, *shape)}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInputError(name, "NaN or infinity")
    return np.array(arr)


def _per_arm_flags(value: Any, n_arms: int, shape: tuple[int, ...]) -> np.ndarray:
    """``available`` as a boolean (n_arms, *shape) array; one (states, actions) table is repeated for every arm."""
    arr = np.asarray(value, dtype=object)
    if arr.shape == shape:
        arr = np.broadcast_to(arr, (n_arms, *shape))
    if arr.shape != (n_arms, *shape):
        raise InvalidInputError("available", f"expected shape {shape} or {(n_arms, *shape)}, got {arr.shape}")
    if not all(isinstance(v, bool | np.bool_) for v in arr.ravel()):
        raise InvalidInputError("available", "expected true/false entries")
    flags = np.array(arr, dtype=bool)
    if not flags[..., 0].all():  # the passive action is what an arm does when it cannot be acted on
        j, state = (int(v) for v in np.argwhere(~flags[..., 0])[0])
        raise InvalidInputError(f"available[{j}][{state}][0]", "the passive action (0) must be available")
    return flags
