"""The learned Q's prior: Q(s, a) = prior(s, a) + network(s, a), the prior linear in the action at each state.

``"whittle"`` / ``"lagrangian"`` / ``"action_law"``: the planner's objective (per-arm planner action values
summed), so an untrained network (output 0) IS the planner and training can only add what the planner misses;
``"reward"``: the exact one-step expected reward (:mod:`engine.sequoia.reward_prior`, the myopic policy);
``"auto"``: the instance class's ``default_prior`` where it declares one (worker budgets: Lagrangian; overlapping
reach: action-law Lagrangian while its feasible set lists within 20,000 actions, else Lagrangian), else
Whittle where arms are pulled one by one (the best planner measured on the arm-pull domains), Lagrangian otherwise
(multiple interventions); ``"none"``: the network is the whole Q.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from engine.planners.base import Planner
from scenarios.errors import InvalidInputError

PRIORS = ("auto", "whittle", "lagrangian", "action_law", "reward", "none")


class Prior(Protocol):
    """A per-state linear part of Q: ``coefficients`` (gains (..., N), base (...)) and batched ``values``."""

    name: str

    def coefficients(self, states: np.ndarray, time_to_go: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]: ...

    def values(self, states: np.ndarray, time_to_go: np.ndarray, actions: np.ndarray) -> torch.Tensor: ...


class PlannerPrior:
    """A planner's objective, linearised in the action (exact for arm-pull domains)."""

    def __init__(self, planner: Planner) -> None:
        if not planner.can_be_prior:
            raise InvalidInputError("prior", f"planner {planner.name!r} re-solves per state; it cannot be a prior")
        self.planner = planner.fit()
        self.name = planner.name

    def coefficients(self, states: np.ndarray, time_to_go: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """The planner's gains, 0 where an entry is unavailable in the state (its -inf: the Q's selectors keep such
        entries at 0 through the state's ``closed`` mask, so the coefficient is never used)."""
        gains, base = self.planner.coefficients(states, time_to_go)
        return np.where(np.isfinite(gains), gains, 0.0), base

    def values(self, states: np.ndarray, time_to_go: np.ndarray, actions: np.ndarray) -> torch.Tensor:
        return linear_values(*self.coefficients(np.atleast_2d(states), time_to_go), actions)


def linear_values(gains: np.ndarray, base: np.ndarray, actions: np.ndarray) -> torch.Tensor:
    """base + gains . a for a batch (b, N) with one action each (b, N) or k each (b, k, N)."""
    a = np.asarray(actions, dtype=float)
    if a.ndim == 3:
        return torch.as_tensor(np.einsum("bkn,bn->bk", a, gains) + base[:, None], dtype=torch.float32)
    return torch.as_tensor(np.einsum("bn,bn->b", a, gains) + base, dtype=torch.float32)


def resolve_prior(name: str, instance, saved_before_action_law: bool = False) -> str:
    """The concrete prior of ``name`` on ``instance`` (``auto`` chooses by domain). Training stores the concrete
    name; a checkpoint that stored ``auto`` was trained before the action-law planner existed
    (``saved_before_action_law``) and keeps the prior it was trained with (Lagrangian there)."""
    if name not in PRIORS:
        raise InvalidInputError("prior", f"expected one of {PRIORS}, got {name!r}")
    if name != "auto":
        return name
    from engine.planners import PLANNERS

    # a family's measured best planner, else Whittle (which stands down where actions are not pulls)
    preferred = getattr(type(instance), "default_prior", None) or "whittle"
    if saved_before_action_law and preferred == "action_law":  # an older checkpoint keeps the prior it trained with
        preferred = "lagrangian"
    while preferred in PLANNERS and not PLANNERS[preferred].applies(instance):
        fallback = PLANNERS[preferred].fallback
        if fallback is None:
            raise InvalidInputError("prior", f"the {preferred!r} planner does not apply to this instance")
        preferred = fallback
    return preferred


def make_prior(name: str, instance) -> Prior | None:
    """The prior ``name`` on ``instance`` (None for ``none``)."""
    name = resolve_prior(name, instance)
    if name == "none":
        return None
    if name == "reward":
        from engine.sequoia.reward_prior import RewardPrior

        return RewardPrior(instance)
    from engine.planners import make_planner

    return PlannerPrior(make_planner(name, instance))
